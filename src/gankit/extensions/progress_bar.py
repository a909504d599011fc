"""ProgressBar: a tqdm bar with rate and ETA, silent when the output is not a terminal."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

from gankit.training.extension import PRIORITY_READER, Extension
from gankit.training.triggers import StopTrigger

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class ProgressBar(Extension):
    """Advances a tqdm bar every ``update_interval`` iterations (a log file gets no bars)."""

    trigger = (1, "iteration")
    priority = PRIORITY_READER
    name = "ProgressBar"

    def __init__(self, update_interval: int = 10, out: TextIO | None = None,
                 force: bool = False) -> None:
        self.update_interval = update_interval
        self.out = out
        self.force = force
        self._bar: tqdm | None = None
        self._shown = 0

    def initialize(self, trainer: Trainer) -> None:
        out = self.out or sys.stderr
        if not trainer.is_main_process or not (self.force or out.isatty()):
            return
        stop, u = trainer.stop_trigger, trainer.updater
        total = None
        if isinstance(stop, StopTrigger):
            total = stop.period * (u.epoch_length if stop.unit == "epoch" else 1)
        self._bar = tqdm(total=total, initial=u.iteration, file=out, unit="it",
                         dynamic_ncols=True, leave=True)
        self._shown = u.iteration

    def __call__(self, trainer: Trainer) -> None:
        if self._bar is None:
            return
        it = trainer.updater.iteration
        if it - self._shown >= self.update_interval:
            self._bar.update(it - self._shown)
            self._bar.set_postfix_str(f"epoch {trainer.updater.epoch_detail:.2f}", refresh=False)
            self._shown = it

    def finalize(self, trainer: Trainer) -> None:
        if self._bar is not None:
            self._bar.update(trainer.updater.iteration - self._shown)
            self._bar.close()
            self._bar = None
