"""LogReport: means of the observations over each interval, appended to a JSON-lines log."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.training.checkpoint import append_line, write_atomic
from gankit.training.extension import PRIORITY_LOG, Extension
from gankit.training.reporter import DictSummary
from gankit.training.triggers import TriggerLike, get_trigger

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


def read_log(path: str | Path) -> list[dict[str, float]]:
    """The entries of a LogReport file, oldest first.

    The file holds one JSON object per line, so pandas reads it directly:
    ``pandas.read_json("log.json", lines=True)``. A line that is not a whole JSON object (the
    torn last line a killed writer leaves, or bytes a crash left unwritten) is skipped with a
    warning naming it. A file in the older format (one JSON array) is read too.
    """
    text = Path(path).read_bytes().decode("utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            return list(json.loads(text))
        except json.JSONDecodeError:
            warnings.warn(f"{path} is a JSON array cut short (a killed writer); reading none "
                          "of it.", stacklevel=2)
            return []
    entries = []
    skipped = []
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if isinstance(entry, dict):
            entries.append(entry)
        else:
            skipped.append(number)
    if skipped:
        torn = skipped == [len(lines)]  # the last line, without its newline: a cut write
        what = ("its last line, cut short by a killed writer" if torn
                else f"{len(skipped)} unreadable line(s), the first line {skipped[0]}")
        warnings.warn(f"{path}: skipped {what}; the {len(entries)} whole entries are read.",
                      stacklevel=2)
    return entries


class LogReport(Extension):
    """Averages every reported value over ``trigger`` intervals into ``self.log``.

    It runs every iteration to add the observation to a device-side summary (no host sync)
    and turns the sums into floats only when its own trigger fires. Each entry also holds
    ``epoch``, ``iteration`` and ``elapsed_time``. Each entry is appended as one JSON line to
    ``out/filename`` (``None``: keep the log in memory only), so writing one costs the same at
    the 10th entry as at the 100,000th. A snapshot holds the number of entries, not the
    entries: on resume the log is read back from the file and trimmed to the snapshot (a
    kill after the snapshot may have appended entries that the resumed run writes again).
    With ``filename=None`` the entries themselves are in the snapshot.
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
        self._restored: int | None = None  # entries a loaded snapshot had written

    def initialize(self, trainer: Trainer) -> None:
        restored, self._restored = self._restored, None
        if not self.filename or not trainer.is_main_process:
            return
        # The file must hold exactly this log: trim what a kill after the snapshot appended,
        # and empty a fresh run's file (a run killed before its first snapshot).
        keep = restored if restored is not None else len(self.log)
        path = trainer.out / self.filename
        on_disk = read_log(path) if path.is_file() else []
        if restored is not None:
            if len(on_disk) < keep:
                warnings.warn(f"{path} holds {len(on_disk)} entries, the snapshot had written "
                              f"{keep}; the log continues from what is there.", stacklevel=2)
            self.log = on_disk[:keep]
        if path.is_file() and (len(on_disk) > keep or not _ends_cleanly(path)):
            write_atomic(path, "".join(json.dumps(e) + "\n" for e in on_disk[:keep]).encode(),
                         durable=False)

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
            # Appended, not rewritten: O(1) per entry. A kill mid-line leaves a torn last
            # line, which read_log skips and a resume trims.
            append_line(trainer.out / self.filename, json.dumps(entry) + "\n")

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"entries": len(self.log), "summary": self._summary.state_dict()}
        if not self.filename:
            state["log"] = list(self.log)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "log" in state:
            self.log = list(state["log"])
        self._restored = int(state.get("entries", len(state.get("log", []))))
        self._summary.load_state_dict(state["summary"])


def _ends_cleanly(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) == b"\n"
