"""EMA: an exponential moving average of a model's weights (the generator, usually)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.training.extension import PRIORITY_EDITOR, Extension
from gankit.training.schedules import Scheduled, check_scheduled, value_at

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class EMA(Extension):
    """Keeps ``average = decay·average + (1-decay)·weights`` of ``model``.

    The decay ramps up as ``min(decay, (1+t)/(10+t))`` for ``t`` updates, so early
    averages are not dominated by the random initialisation. Buffers (batch-norm
    statistics) are copied, not averaged. Samples and evaluations use ``average`` when an
    EMA is present; its weights travel in snapshots.

    ``half_life`` (thousands of real images; a number or a Schedule, as StyleGAN2 and R3GAN
    give it) replaces the decay: an update that showed ``n`` images decays by
    ``0.5 ** (n / (1000 * half_life))``, so the average forgets half of itself every
    ``half_life`` kimg whatever the batch size; a half-life of 0 copies the weights.
    """

    trigger = (1, "iteration")
    priority = PRIORITY_EDITOR
    name = "EMA"

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True, *,
                 half_life: Scheduled | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise GankitError(f"EMA decay must be between 0 and 1, got {decay}.")
        self.model = model
        self.average = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.half_life = None if half_life is None else check_scheduled(half_life,
                                                                         "the EMA half-life")
        self.num_updates = 0
        self.images_seen = 0  # the updater's count at the last update (for half_life)

    def _decay(self, trainer: Trainer) -> float:
        """This update's decay: from the half-life and the images it showed, or the ramp
        ``min(decay, (1+t)/(10+t))`` at update ``t``."""
        if self.half_life is None:
            t = self.num_updates
            return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay
        updater = trainer.updater
        shown, self.images_seen = updater.images_seen - self.images_seen, updater.images_seen
        half_life = value_at(self.half_life, updater)
        return 0.5 ** (shown / (1000.0 * half_life)) if half_life > 0 else 0.0

    @torch.no_grad()
    def __call__(self, trainer: Trainer) -> None:
        decay = self._decay(trainer)
        model = self.model
        avg_params: list[torch.Tensor] = list(self.average.parameters())
        torch._foreach_lerp_(avg_params, [p.detach() for p in model.parameters()], 1.0 - decay)
        for a, b in zip(self.average.buffers(), model.buffers(), strict=True):
            a.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average.state_dict(), "num_updates": self.num_updates,
                "images_seen": self.images_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_updates = state["num_updates"]
        self.images_seen = int(state.get("images_seen", 0))
        self.average.load_state_dict(state["average"])


def sampling_model(trainer: Trainer, source: str = "gen") -> nn.Module:
    """The EMA average of model ``source`` if an EMA extension tracks it, else the model."""
    model = trainer.updater.raw_models[source]
    for ext in trainer.extensions.values():
        if isinstance(ext, EMA) and ext.model is model:
            return ext.average
    return model
