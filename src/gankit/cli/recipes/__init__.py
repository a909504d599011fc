"""Recipes: what ``gankit train --recipe NAME`` builds (networks, updater, extensions).

A recipe turns a ``TrainConfig`` and the data into an Updater plus the extensions that show
its progress; the CLI adds the common ones (logs, prints, plots, snapshots). A new method
needs a Recipe only to be reachable from the command line: in Python, an Updater is enough.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from gankit.cli.config import METHOD_OPTIONS, TrainConfig, filled, parse_interval
from gankit.data import make_loader
from gankit.errors import GankitError
from gankit.extensions.lr_scheduler import LRSchedule, ObserveLR
from gankit.training.distributed import rank_and_world_size
from gankit.training.triggers import Trigger, get_stop_trigger, get_trigger

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from gankit.data import ArrayDataset, EpochLoader
    from gankit.data.domains import UnpairedDomains
    from gankit.training import Extension, Trainer, Updater


class Recipe:
    """Base class of the recipes.

    A subclass declares the method options it ``reads`` (of ``METHOD_OPTIONS``; the rest of
    ``TrainConfig`` every recipe reads through the shared pieces below), the loss ``weights``
    it knows with their defaults, and the data ``kinds`` it trains on; ``build`` refuses
    anything else before a network is made. It fills in ``defaults``, ``make_updater``,
    ``extensions`` and ``sample``.
    """

    name: str = ""
    #: log keys shown by PrintReport and plotted by PlotReport
    print_keys: tuple[str, ...] = ()
    plot_keys: tuple[str, ...] = ()
    #: the method options (of METHOD_OPTIONS) this recipe reads
    reads: frozenset[str] = frozenset()
    #: its loss weights (``--weight NAME=VALUE``) and their defaults
    weights: Mapping[str, float] = {}
    #: the data kinds it trains on
    kinds: tuple[str, ...] = ("image", "points")

    def defaults(self, train: ArrayDataset, cfg: TrainConfig | None = None) -> dict[str, Any]:
        """Defaults for this data set (and ``cfg``'s choices such as ``--arch``), applied
        where the user gave no value."""
        raise NotImplementedError

    def build(self, cfg: TrainConfig, train: ArrayDataset) -> Updater:
        """Check what the run asks of this recipe, then make its networks and updater."""
        self.check(cfg, train)
        return self.make_updater(cfg, train)

    def make_updater(self, cfg: TrainConfig, train: ArrayDataset) -> Updater:
        """Networks, optimizers, loader and updater."""
        raise NotImplementedError

    def extensions(self, cfg: TrainConfig, updater: Updater, train: ArrayDataset,
                   val: ArrayDataset) -> list[Extension]:
        """Recipe-specific extensions (sample grids, evaluators, EMA), triggers set."""
        raise NotImplementedError

    def sample(self, trainer: Trainer, n: int, seed: int) -> torch.Tensor:
        """``n`` outputs of the trained model in [-1, 1] (images) or data units (points)."""
        raise NotImplementedError

    # -------------------------------------------------------- checks and the shared pieces
    def check(self, cfg: TrainConfig, train: ArrayDataset) -> None:
        """Refuse data of another kind, method options this recipe would ignore (set to
        anything but their default) and weights it does not know."""
        if train.kind not in self.kinds:
            raise GankitError(f"the {self.name} recipe needs image data, but {train.name!r} "
                              "holds 2-D points; use --data digits or an image folder.")
        defaults = TrainConfig()
        for name in METHOD_OPTIONS:
            if name not in self.reads and cfg.get(name) != defaults.get(name):
                raise GankitError(f"--{name.replace('_', '-')} does not apply to the "
                                  f"{self.name} recipe; leave it out.")
        unknown = sorted(set(cfg.objective.weights) - set(self.weights))
        if unknown:
            known = (f"its weights are {', '.join(f'{k}={v:g}' for k, v in self.weights.items())}"
                     if self.weights else "it takes no --weight")
            raise GankitError(f"the {self.name} recipe has no weight {unknown[0]!r}; {known}.")

    def weight_values(self, cfg: TrainConfig) -> dict[str, float]:
        """This recipe's weights, the user's ``--weight`` values over the defaults."""
        return {**self.weights, **cfg.objective.weights}

    @staticmethod
    def loader(cfg: TrainConfig, dataset: Dataset[Any]) -> EpochLoader:
        """The training loader: each process reads its share of every epoch."""
        rank, world_size = rank_and_world_size()
        return make_loader(dataset, filled(cfg.optim.batch_size, "batch_size"),
                           seed=cfg.run.seed, num_workers=cfg.dataset.workers,
                           device=cfg.run.device, skip_corrupt=cfg.dataset.skip_corrupt,
                           rank=rank, world_size=world_size)

    @staticmethod
    def adam(cfg: TrainConfig, params: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
        betas = (filled(cfg.optim.beta1, "beta1"), filled(cfg.optim.beta2, "beta2"))
        return torch.optim.Adam(params, lr, betas=betas)

    @staticmethod
    def engine(cfg: TrainConfig) -> dict[str, Any]:
        """The Updater's engine options: device, precision, non-finite steps."""
        return {"device": cfg.run.device, "precision": cfg.run.precision,
                "skip_nonfinite": cfg.run.skip_nonfinite}


def image_shape(data: ArrayDataset | UnpairedDomains) -> tuple[int, int, int]:
    """``(C, H, W)`` of image data (``Recipe.check`` has refused other kinds)."""
    c, h, w = data.shape
    return c, h, w


def interval_trigger(cfg: TrainConfig, interval: str | None) -> Trigger:
    """Every ``interval`` (``"5e"``, ``"200"``) and at the run's last iteration, so a run
    always ends with a log line, a sample grid, an evaluation and a snapshot."""
    periodic = get_trigger(parse_interval(interval or "1e"))
    stop = get_stop_trigger(cfg.stop_trigger())
    return get_trigger(lambda trainer: periodic(trainer) or stop(trainer))


def lr_schedule(cfg: TrainConfig, updater: Updater) -> list[Extension]:
    """The run's learning-rate schedule over all of the updater's optimizers and the
    observers that log each optimizer's rate (``gen/lr``, ...); none without a schedule."""
    decay = cfg.optim.lr_decay or "none"
    if decay == "none" and not cfg.optim.lr_warmup:
        if cfg.optim.lr_decay_start is not None:
            raise GankitError(f"--lr-decay-start {cfg.optim.lr_decay_start!r} has no effect "
                              "without a decay; add --lr-decay linear or leave the start out.")
        return []
    n, unit = cfg.stop_trigger()
    total = n if unit == "iteration" else n * updater.epoch_length
    if cfg.optim.lr_warmup > total:
        raise GankitError(f"--lr-warmup {cfg.optim.lr_warmup} is longer than the run ({total} "
                          "iterations); shorten the warm-up or train longer.")
    schedule = LRSchedule(total, warmup=cfg.optim.lr_warmup, decay=decay,
                          decay_start=cfg.optim.lr_decay_start or 0.0)
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
