"""Recipes: what ``gankit train --recipe NAME`` builds (networks, updater, extensions).

A recipe turns a ``TrainConfig`` and the data into an Updater plus the extensions that show
its progress; the CLI adds the common ones (logs, prints, plots, snapshots). A new method
needs a Recipe only to be reachable from the command line: in Python, an Updater is enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError

if TYPE_CHECKING:
    import torch

    from gankit.config import TrainConfig
    from gankit.data import ArrayDataset
    from gankit.training import Extension, Trainer, Updater


class Recipe:
    """Base class of the recipes; subclasses fill in the four methods."""

    name: str = ""
    #: log keys shown by PrintReport and plotted by PlotReport
    print_keys: tuple[str, ...] = ()
    plot_keys: tuple[str, ...] = ()

    def defaults(self, train: ArrayDataset) -> dict[str, Any]:
        """Defaults for this data set, applied where the user gave no value."""
        raise NotImplementedError

    def build(self, cfg: TrainConfig, train: ArrayDataset) -> Updater:
        """Networks, optimizers, loader and updater."""
        raise NotImplementedError

    def extensions(self, cfg: TrainConfig, updater: Updater, train: ArrayDataset,
                   val: ArrayDataset) -> list[Extension]:
        """Recipe-specific extensions (sample grids, evaluators, EMA), triggers set."""
        raise NotImplementedError

    def sample(self, trainer: Trainer, n: int, seed: int) -> torch.Tensor:
        """``n`` outputs of the trained model in [-1, 1] (images) or data units (points)."""
        raise NotImplementedError


def get_recipe(name: str) -> Recipe:
    from gankit.recipes.cyclegan import CycleGANRecipe
    from gankit.recipes.dcgan import DCGANRecipe
    from gankit.recipes.vaegan import VAEGANRecipe

    recipes: dict[str, type[Recipe]] = {
        "dcgan": DCGANRecipe, "vaegan": VAEGANRecipe, "cyclegan": CycleGANRecipe}
    if name not in recipes:
        raise GankitError(f"unknown recipe {name!r}; choose one of: {', '.join(recipes)}.")
    return recipes[name]()
