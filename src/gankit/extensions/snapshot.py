"""Snapshot: the whole trainer state, written atomically, the last K kept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.data.loader import worker_died
from gankit.errors import GankitError
from gankit.extensions.fail_on_non_finite import FailOnNonFinite, check_finite_parameters
from gankit.training.checkpoint import SNAPSHOT_RE, fault_point, list_snapshots, save_state
from gankit.training.distributed import any_rank, is_distributed
from gankit.training.extension import PRIORITY_SNAPSHOT, Extension
from gankit.training.triggers import Trigger, TriggerLike, get_trigger

DURATION_RE = re.compile(r"^([1-9][0-9]*)\s*(s|m|h)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float | None:
    """``"30m"`` -> 1800.0, ``"90s"``, ``"2h"``; None when ``text`` is not a duration."""
    m = DURATION_RE.match(str(text).strip())
    return float(int(m.group(1)) * _SECONDS[m.group(2)]) if m else None


class WallClockTrigger(Trigger):
    """Fires once ``seconds`` of training time have passed since it last fired.

    Training time is ``trainer.elapsed_time``, which a resumed run continues, so a run
    restarted every few hours still snapshots every ``seconds``. Under torch.distributed the
    ranks' clocks differ, so every ``sync_every`` iterations they agree (one small
    all-reduce) and fire together: the snapshot is a collective. ``also`` (a trigger) fires
    it too, e.g. at the run's last iteration.
    """

    def __init__(self, seconds: float, also: TriggerLike | None = None,
                 sync_every: int = 16) -> None:
        if seconds <= 0:
            raise GankitError(f"seconds must be positive, got {seconds!r}.")
        self.seconds = float(seconds)
        self.also = get_trigger(also) if also is not None else None
        self.sync_every = sync_every
        self._last = 0.0

    def __call__(self, trainer: Trainer) -> bool:
        now = trainer.elapsed_time
        due = now - self._last >= self.seconds
        if is_distributed():
            due = trainer.updater.iteration % self.sync_every == 0 and any_rank(due)
        fired = due or bool(self.also is not None and self.also(trainer))
        if fired:
            self._last = now
        return fired

    def state_dict(self) -> dict[str, Any]:
        return {"last": self._last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._last = float(state["last"])

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class Snapshot(Extension):
    """Saves ``trainer.state_dict()`` to ``out/filename``.

    The default name, ``snapshot_iter_{iteration}.pt``, is what ``Trainer.resume`` looks
    for; of those, the newest ``n_retains`` are kept (``None`` keeps all). A snapshot is
    never written from non-finite parameters, so the last one on disk is always usable.
    When SIGINT/SIGTERM stops the run, a final snapshot is written on the way out; so is one
    when the run fails before an update changed anything (a data loader worker killed, say:
    ``Trainer.failed_before_update``), unless the last completed iteration has one already.
    Under torch.distributed that one is not written (the ranks would have to meet for it);
    the last periodic snapshot stays.
    """

    trigger: TriggerLike = (1, "epoch")
    priority = PRIORITY_SNAPSHOT
    name = "Snapshot"

    def __init__(
        self,
        filename: str = "snapshot_iter_{iteration}.pt",
        n_retains: int | None = 3,
        trigger: TriggerLike | None = None,
        on_signal: bool = True,
        name: str | None = None,
    ) -> None:
        if n_retains is not None and n_retains < 1:
            raise GankitError(f"n_retains must be at least 1 or None, got {n_retains}.")
        self.filename = filename
        self.n_retains = n_retains
        self.on_signal = on_signal
        if trigger is not None:
            self.trigger = trigger
        if name is not None:
            self.name = name
        self.last_path: Path | None = None

    def __call__(self, trainer: Trainer) -> None:
        # A diverged run must stop here, naming the loss that went bad first if it can
        # (FailOnNonFinite's check scans the parameters too: once is enough).
        guards = [e for e in trainer.extensions.values() if isinstance(e, FailOnNonFinite)]
        for guard in guards:
            guard.check(trainer)
        if not guards:
            check_finite_parameters(trainer)
        state = trainer.state_dict()
        if not trainer.is_main_process:
            return
        path = trainer.out / self.filename.format(iteration=trainer.updater.iteration)
        try:
            save_state(state, path)
        except OSError as exc:
            earlier = list_snapshots(trainer.out)
            kept = f"{earlier[-1]} is kept" if earlier else "no earlier snapshot exists"
            raise GankitError(
                f"cannot write snapshot {path} ({exc.strerror or exc}); {kept}: free disk "
                "space or fix permissions, then resume the run."
            ) from None
        self.last_path = path
        if self.n_retains is not None and SNAPSHOT_RE.match(path.name):
            for old in list_snapshots(trainer.out)[: -self.n_retains]:
                fault_point("unlink", old)  # a kill here leaves one more, pruned next time
                old.with_name(old.name + ".sha256").unlink(missing_ok=True)
                old.unlink(missing_ok=True)

    def on_error(self, trainer: Trainer, exc: BaseException) -> None:
        # A data loader worker that died (the out-of-memory killer) ends a run whose state is
        # whole; other errors (a corrupt file, a bad option) keep the snapshots as they were.
        if not (self.on_signal and trainer.failed_before_update and isinstance(exc, Exception)
                and worker_died(exc) is not None):
            return
        if is_distributed() or not trainer.is_main_process:
            return
        path = trainer.out / self.filename.format(iteration=trainer.updater.iteration)
        if path != self.last_path and not path.exists() and trainer.updater.iteration > 0:
            self(trainer)

    def finalize(self, trainer: Trainer) -> None:
        if not (self.on_signal and trainer.stop_reason == "signal"):
            return
        path = trainer.out / self.filename.format(iteration=trainer.updater.iteration)
        if path != self.last_path:
            self(trainer)
