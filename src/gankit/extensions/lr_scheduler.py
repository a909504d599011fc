"""Learning-rate schedules and their observation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError
from gankit.training.extension import PRIORITY_EDITOR, PRIORITY_WRITER, Extension
from gankit.training.reporter import report

if TYPE_CHECKING:
    import torch

    from gankit.training.trainer import Trainer


class LRScheduler(Extension):
    """Steps a ``torch.optim.lr_scheduler`` at its trigger; its state goes in snapshots."""

    trigger = (1, "epoch")
    priority = PRIORITY_EDITOR
    name = "LRScheduler"

    def __init__(self, scheduler: torch.optim.lr_scheduler.LRScheduler,
                 trigger: Any = None) -> None:
        self.scheduler = scheduler
        if trigger is not None:
            self.trigger = trigger

    def __call__(self, trainer: Trainer) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


LR_DECAYS = ("none", "linear")


def lr_factor(iteration: int, total: int, *, warmup: int = 0, decay: str = "none",
              decay_start: float = 0.0) -> float:
    """The factor on the base learning rate of update number ``iteration`` (1 to ``total``).

    Warm-up ramps it linearly from ``1/warmup`` (update 1) to 1 (update ``warmup``); linear
    decay holds it at 1 until ``decay_start * total`` updates are done and then takes it down
    linearly to exactly 0 at update ``total``. The two multiply. A pure function of the
    iteration, so a resumed run has the same rates as an uninterrupted one, bit for bit.
    """
    if total < 1 or not 1 <= iteration <= total:
        raise GankitError(f"iteration {iteration} is outside the run's 1..{total}.")
    if decay not in LR_DECAYS:
        raise GankitError(f"unknown lr decay {decay!r}; choose one of: {', '.join(LR_DECAYS)}.")
    if not 0.0 <= decay_start < 1.0:
        raise GankitError(f"decay_start={decay_start!r} must be a fraction of the run in [0, 1).")
    factor = min(1.0, iteration / warmup) if warmup > 0 else 1.0
    if decay == "linear":
        start = int(decay_start * total)  # updates at the full rate before the decay
        if iteration > start:
            factor *= (total - iteration) / (total - start)
    return factor


class LRSchedule(Extension):
    """Sets every param group's rate to its base rate times ``lr_factor`` before each update.

    The base rate is the group's ``lr`` when training starts, kept in its ``initial_lr`` entry
    (torch's convention), which the optimizer's state carries through snapshots; the rate
    itself is recomputed from the iteration, so there is no schedule state to lose.

    Args:
        total: the run's number of updates (the decay reaches 0 at the last one).
        optimizers: names of the updater's optimizers to schedule (default: all).
    """

    trigger = (1, "iteration")
    priority = PRIORITY_EDITOR
    name = "LRSchedule"

    def __init__(self, total: int, *, warmup: int = 0, decay: str = "none",
                 decay_start: float = 0.0, optimizers: Sequence[str] | None = None) -> None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise GankitError(f"total={total!r} must be a positive number of updates.")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise GankitError(f"warmup={warmup!r} must be a non-negative number of updates.")
        lr_factor(1, total, warmup=warmup, decay=decay, decay_start=decay_start)  # checks
        self.total, self.warmup, self.decay, self.decay_start = total, warmup, decay, decay_start
        self.optimizers = None if optimizers is None else tuple(optimizers)

    def factor(self, iteration: int) -> float:
        """The factor of update ``iteration``; past the run's end it stays at the last one."""
        it = min(max(iteration, 1), self.total)
        return lr_factor(it, self.total, warmup=self.warmup, decay=self.decay,
                         decay_start=self.decay_start)

    def _apply(self, trainer: Trainer, iteration: int) -> None:
        optimizers = trainer.updater.optimizers
        names = self.optimizers if self.optimizers is not None else tuple(optimizers)
        factor = self.factor(iteration)
        for name in names:
            for group in optimizers[name].param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor

    def initialize(self, trainer: Trainer) -> None:
        self._apply(trainer, trainer.updater.iteration + 1)

    def __call__(self, trainer: Trainer) -> None:
        # After update i: the rate of update i + 1.
        self._apply(trainer, trainer.updater.iteration + 1)


class ObserveLR(Extension):
    """Reports the learning rate of the first param group of optimizer ``name``."""

    trigger = (1, "iteration")
    priority = PRIORITY_WRITER
    name = "ObserveLR"

    def __init__(self, optimizer: str, key: str | None = None) -> None:
        self.optimizer = optimizer
        self.key = key or f"{optimizer}/lr"

    def __call__(self, trainer: Trainer) -> None:
        lr = trainer.updater.optimizers[self.optimizer].param_groups[0]["lr"]
        report({self.key: float(lr)})
