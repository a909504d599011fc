"""LogReport: means of the observations over each interval, kept and written to JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gankit.training.checkpoint import write_atomic
from gankit.training.extension import PRIORITY_LOG, Extension
from gankit.training.reporter import DictSummary
from gankit.training.triggers import TriggerLike, get_trigger

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class LogReport(Extension):
    """Averages every reported value over ``trigger`` intervals into ``self.log``.

    It runs every iteration to add the observation to a device-side summary (no host sync)
    and turns the sums into floats only when its own trigger fires. Each entry also holds
    ``epoch``, ``iteration`` and ``elapsed_time``. The log is rewritten atomically to
    ``out/filename`` (``None``: keep it in memory only).
    """

    trigger = (1, "iteration")
    priority = PRIORITY_LOG
    name = "LogReport"

    def __init__(
        self,
        keys: list[str] | None = None,
        trigger: TriggerLike = (1, "epoch"),
        filename: str | None = "log.json",
    ) -> None:
        self.keys = keys
        self._log_trigger = get_trigger(trigger)
        self.filename = filename
        self.log: list[dict[str, float]] = []
        self._summary = DictSummary()

    def __call__(self, trainer: Trainer) -> None:
        obs = trainer.observation
        if self.keys is not None:
            obs = {k: v for k, v in obs.items() if k in self.keys}
        self._summary.add(obs)
        if not self._log_trigger(trainer):
            return
        u = trainer.updater
        entry: dict[str, float] = dict(self._summary.compute_mean())
        entry.update(epoch=u.epoch, iteration=u.iteration, elapsed_time=trainer.elapsed_time)
        self.log.append(entry)
        self._summary = DictSummary()
        if self.filename and trainer.is_main_process:
            # One entry per line: readable, and json's C encoder (indent= forces the slow
            # pure-Python one, which made each rewrite of a long log cost milliseconds).
            text = "[\n" + ",\n".join(json.dumps(e) for e in self.log) + "\n]\n"
            # Not fsynced: it is rewritten every interval and snapshots hold the log too.
            write_atomic(trainer.out / self.filename, text.encode(), durable=False)

    def state_dict(self) -> dict[str, Any]:
        return {"log": list(self.log), "summary": self._summary.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.log = list(state["log"])
        self._summary.load_state_dict(state["summary"])
