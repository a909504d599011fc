"""Recipes: what ``gankit train --recipe NAME`` builds (networks, updater, extensions).

The base class and its shared pieces are in :mod:`gankit.cli.recipes.base`; each recipe is a
module here, registered in ``RECIPES``.
"""

from __future__ import annotations

from gankit.cli.recipes.base import Recipe, image_shape, interval_trigger, lr_schedule
from gankit.cli.recipes.cyclegan import CycleGANRecipe
from gankit.cli.recipes.dcgan import DCGANRecipe
from gankit.cli.recipes.vaegan import VAEGANRecipe
from gankit.errors import GankitError

__all__ = ["RECIPES", "Recipe", "get_recipe", "image_shape", "interval_trigger", "lr_schedule"]

#: every recipe by its ``--recipe`` name
RECIPES: dict[str, type[Recipe]] = {
    "dcgan": DCGANRecipe, "vaegan": VAEGANRecipe, "cyclegan": CycleGANRecipe}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise GankitError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}.")
    return RECIPES[name]()
