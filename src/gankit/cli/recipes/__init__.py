"""Recipes: what ``gankit train --recipe NAME`` builds (networks, updater, extensions).

A recipe turns a ``TrainConfig`` and the data into an Updater plus the extensions that show
its progress; the CLI adds the common ones (logs, prints, plots, snapshots). A new method
needs a Recipe only to be reachable from the command line: in Python, an Updater is enough.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gankit.cli.config import parse_interval
from gankit.errors import GankitError
from gankit.training.triggers import Trigger, get_stop_trigger, get_trigger

if TYPE_CHECKING:
    import torch

    from gankit.cli.config import TrainConfig
    from gankit.data import ArrayDataset
    from gankit.training import Extension, Trainer, Updater


class Recipe:
    """Base class of the recipes; subclasses fill in the four methods."""

    name: str = ""
    #: log keys shown by PrintReport and plotted by PlotReport
    print_keys: tuple[str, ...] = ()
    plot_keys: tuple[str, ...] = ()

    def defaults(self, train: ArrayDataset, cfg: TrainConfig | None = None) -> dict[str, Any]:
        """Defaults for this data set (and ``cfg``'s choices such as ``--arch``), applied
        where the user gave no value."""
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


# Options of ``gankit train`` that only some recipes read, with the values that mean "unset".
UNSET: dict[str, tuple[Any, ...]] = {
    "loss": (None,), "penalty": (None, "none"), "penalty_weight": (None,), "n_dis": (None, 1),
    "penalty_every": (None, 1), "conditional": (False,), "ema": (None, 0), "z_dim": (None,),
    "arch": ("dcgan",),
}


def check_options(cfg: TrainConfig, recipe: str, unused: Iterable[str],
                  weights: dict[str, float]) -> None:
    """Refuse options ``recipe`` would silently ignore, and weights it does not know."""
    for name in unused:
        if getattr(cfg, name) not in UNSET[name]:
            raise GankitError(f"--{name.replace('_', '-')} does not apply to the {recipe} "
                              "recipe; leave it out.")
    unknown = sorted(set(cfg.weights) - set(weights))
    if unknown:
        raise GankitError(f"the {recipe} recipe has no weight {unknown[0]!r}; its weights are "
                          f"{', '.join(f'{k}={v:g}' for k, v in weights.items())}.")


def check_images(train: ArrayDataset, recipe: str) -> None:
    if train.kind != "image":
        raise GankitError(f"the {recipe} recipe needs image data, but {train.name!r} holds "
                          "2-D points; use --data digits or an image folder.")


def interval_trigger(cfg: TrainConfig, interval: str | None) -> Trigger:
    """Every ``interval`` (``"5e"``, ``"200"``) and at the run's last iteration, so a run
    always ends with a log line, a sample grid, an evaluation and a snapshot."""
    periodic = get_trigger(parse_interval(interval or "1e"))
    stop = get_stop_trigger(cfg.stop_trigger())
    return get_trigger(lambda trainer: periodic(trainer) or stop(trainer))


def get_recipe(name: str) -> Recipe:
    from gankit.cli.recipes.cyclegan import CycleGANRecipe
    from gankit.cli.recipes.dcgan import DCGANRecipe
    from gankit.cli.recipes.vaegan import VAEGANRecipe

    recipes: dict[str, type[Recipe]] = {
        "dcgan": DCGANRecipe, "vaegan": VAEGANRecipe, "cyclegan": CycleGANRecipe}
    if name not in recipes:
        raise GankitError(f"unknown recipe {name!r}; choose one of: {', '.join(recipes)}.")
    return recipes[name]()
