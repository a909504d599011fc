"""FailOnNonFinite: stop a diverged run, naming the key and the iteration."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from gankit.errors import GankitError
from gankit.training.extension import PRIORITY_WRITER, Extension

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class NonFiniteError(RuntimeError):
    """Training produced NaN or Inf; the message names where and when."""


def check_finite_parameters(trainer: Trainer) -> None:
    """Raise NonFiniteError naming the first model and tensor holding NaN or Inf."""
    named = [(model_name, n, t) for model_name, model in trainer.updater.raw_models.items()
             for n, t in (*model.named_parameters(), *model.named_buffers())
             if t.is_floating_point() and t.numel()]
    if not named:
        return
    # The max-norm of each tensor, fused: NaN and Inf survive it, finite values stay finite.
    norms = torch._foreach_norm([t.detach() for _, _, t in named], float("inf"))
    finite = torch.isfinite(torch.stack([n.to(norms[0].device) for n in norms]))
    if not bool(finite.all()):  # one host sync per check, not per tensor
        model_name, bad, _ = named[int((~finite).nonzero()[0])]
        raise NonFiniteError(
            f"model '{model_name}' has NaN/Inf in '{bad}' at iteration "
            f"{trainer.updater.iteration}; lower the learning rate or add gradient clipping."
        )


class FailOnNonFinite(Extension):
    """Raises NonFiniteError when a reported value or a parameter becomes NaN or Inf.

    A step costs no kernel and no sync: the iteration's reported tensors are only held (they
    are fresh scalars). Every ``check_interval`` iterations, and at the last one, the held
    values go through one ``isfinite`` per device and one host read, which names the first
    key that went bad and its iteration. Python floats are checked at once. Snapshots check
    parameters themselves, so a late check never lets a bad snapshot through.
    """

    trigger = (1, "iteration")
    priority = PRIORITY_WRITER - 1  # after evaluators, before everything that reads
    name = "FailOnNonFinite"

    def __init__(self, check_interval: int = 20) -> None:
        if isinstance(check_interval, bool) or not isinstance(check_interval, int) or (
                check_interval < 1):
            raise GankitError(f"check_interval must be a positive integer, got {check_interval!r}.")
        self.check_interval = check_interval
        self._pending: list[tuple[int, str, torch.Tensor]] = []

    def __call__(self, trainer: Trainer) -> None:
        it = trainer.updater.iteration
        pending = self._pending
        for key, value in trainer.observation.items():
            if isinstance(value, torch.Tensor):
                pending.append((it, key, value))
            elif isinstance(value, float) and not math.isfinite(value):
                self.check(trainer)  # a tensor that went bad earlier is named first
                self._raise(key, it)
        # Also at the last iteration, so a NaN near the end is not missed.
        if it % self.check_interval == 0 or trainer.stop_trigger(trainer):
            self.check(trainer)

    def check(self, trainer: Trainer) -> None:
        """Read the held values (one transfer per device), then the parameters."""
        pending, self._pending = self._pending, []
        by_device: dict[torch.device, list[int]] = {}
        for i, (_, _, value) in enumerate(pending):
            by_device.setdefault(value.device, []).append(i)
        bad: list[tuple[int, str]] = []
        for idx in by_device.values():
            values = torch.stack([pending[i][2].reshape(()).float() for i in idx])
            finite = torch.isfinite(values).tolist()
            bad += [pending[i][:2] for i, ok in zip(idx, finite, strict=True) if not ok]
        if bad:
            self._raise(*min(bad)[::-1])
        check_finite_parameters(trainer)

    def _raise(self, key: str, iteration: int) -> None:
        raise NonFiniteError(
            f"'{key}' became NaN/Inf at iteration {iteration}; the last snapshot before it is "
            "kept: resume from it with a lower learning rate or gradient clipping."
        )

    def finalize(self, trainer: Trainer) -> None:
        self._pending.clear()
