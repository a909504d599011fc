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
from gankit.extensions.lr_scheduler import LRSchedule, ObserveLR
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


# Options of ``gankit train`` that only some recipes read, with the values that mean "unset".
UNSET: dict[str, tuple[Any, ...]] = {
    "loss": (None,), "penalty": (None, "none"), "penalty_weight": (None,), "n_dis": (1,),
    "penalty_every": (1,), "conditional": (False,), "ema": (None, 0), "z_dim": (None,),
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


def lr_schedule(cfg: TrainConfig, updater: Updater) -> list[Extension]:
    """The run's learning-rate schedule over all of the updater's optimizers and the
    observers that log each optimizer's rate (``gen/lr``, ...); none without a schedule."""
    decay = cfg.lr_decay or "none"
    if decay == "none" and not cfg.lr_warmup:
        if cfg.lr_decay_start is not None:
            raise GankitError(f"--lr-decay-start {cfg.lr_decay_start!r} has no effect without "
                              "a decay; add --lr-decay linear or leave the start out.")
        return []
    n, unit = cfg.stop_trigger()
    total = n if unit == "iteration" else n * updater.epoch_length
    if cfg.lr_warmup > total:
        raise GankitError(f"--lr-warmup {cfg.lr_warmup} is longer than the run ({total} "
                          "iterations); shorten the warm-up or train longer.")
    schedule = LRSchedule(total, warmup=cfg.lr_warmup, decay=decay,
                          decay_start=cfg.lr_decay_start or 0.0)
    return [schedule, *(ObserveLR(name) for name in updater.optimizers)]


def get_recipe(name: str) -> Recipe:
    from gankit.cli.recipes.cyclegan import CycleGANRecipe
    from gankit.cli.recipes.dcgan import DCGANRecipe
    from gankit.cli.recipes.vaegan import VAEGANRecipe

    recipes: dict[str, type[Recipe]] = {
        "dcgan": DCGANRecipe, "vaegan": VAEGANRecipe, "cyclegan": CycleGANRecipe}
    if name not in recipes:
        raise GankitError(f"unknown recipe {name!r}; choose one of: {', '.join(recipes)}.")
    return recipes[name]()
