"""Snapshot: the whole trainer state, written atomically, the last K kept."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gankit.errors import GankitError
from gankit.training.checkpoint import SNAPSHOT_RE, list_snapshots, save_state
from gankit.training.extension import PRIORITY_SNAPSHOT, Extension
from gankit.training.triggers import TriggerLike

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class NonFiniteError(RuntimeError):
    """Training produced NaN or Inf; the message names where and when."""


def check_finite_parameters(trainer: Trainer) -> None:
    """Raise NonFiniteError naming the first model and tensor holding NaN or Inf."""
    for model_name, model in trainer.updater.raw_models.items():
        tensors = [(n, t) for n, t in model.state_dict().items() if t.is_floating_point()]
        if not tensors:
            continue
        finite = torch.stack([torch.isfinite(t).all() for _, t in tensors])
        if not bool(finite.all()):  # one host sync per check, not per tensor
            bad = tensors[int((~finite).nonzero()[0])][0]
            raise NonFiniteError(
                f"model '{model_name}' has NaN/Inf in '{bad}' at iteration "
                f"{trainer.updater.iteration}; lower the learning rate or add gradient clipping."
            )


class Snapshot(Extension):
    """Saves ``trainer.state_dict()`` to ``out/filename``.

    The default name, ``snapshot_iter_{iteration}.pt``, is what ``Trainer.resume`` looks
    for; of those, the newest ``n_retains`` are kept (``None`` keeps all). A snapshot is
    never written from non-finite parameters, so the last one on disk is always usable.
    When SIGINT/SIGTERM stops the run, a final snapshot is written on the way out.
    """

    trigger = (1, "epoch")
    priority = PRIORITY_SNAPSHOT
    name = "Snapshot"

    def __init__(
        self,
        filename: str = "snapshot_iter_{iteration}.pt",
        n_retains: int | None = 3,
        trigger: TriggerLike | None = None,
        on_signal: bool = True,
    ) -> None:
        if n_retains is not None and n_retains < 1:
            raise ValueError(f"n_retains must be at least 1 or None, got {n_retains}.")
        self.filename = filename
        self.n_retains = n_retains
        self.on_signal = on_signal
        if trigger is not None:
            self.trigger = trigger
        self.last_path: Path | None = None

    def __call__(self, trainer: Trainer) -> None:
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
                "space or fix permissions, then continue with gankit train --resume."
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
