"""Snapshot: the whole trainer state, written atomically, the last K kept."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gankit.errors import GankitError
from gankit.extensions.fail_on_non_finite import FailOnNonFinite, check_finite_parameters
from gankit.training.checkpoint import SNAPSHOT_RE, list_snapshots, save_state
from gankit.training.extension import PRIORITY_SNAPSHOT, Extension
from gankit.training.triggers import TriggerLike

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class Snapshot(Extension):
    """Saves ``trainer.state_dict()`` to ``out/filename``.

    The default name, ``snapshot_iter_{iteration}.pt``, is what ``Trainer.resume`` looks
    for; of those, the newest ``n_retains`` are kept (``None`` keeps all). A snapshot is
    never written from non-finite parameters, so the last one on disk is always usable.
    When SIGINT/SIGTERM stops the run, a final snapshot is written on the way out.
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
            raise ValueError(f"n_retains must be at least 1 or None, got {n_retains}.")
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
                old.with_name(old.name + ".sha256").unlink(missing_ok=True)
                old.unlink(missing_ok=True)

    def finalize(self, trainer: Trainer) -> None:
        if not (self.on_signal and trainer.stop_reason == "signal"):
            return
        path = trainer.out / self.filename.format(iteration=trainer.updater.iteration)
        if path != self.last_path:
            self(trainer)
