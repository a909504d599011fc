"""Learning-rate schedules and their observation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
