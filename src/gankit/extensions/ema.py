"""EMA: an exponential moving average of a model's weights (the generator, usually)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gankit.training.extension import PRIORITY_EDITOR, Extension

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class EMA(Extension):
    """Keeps ``average = decay·average + (1-decay)·weights`` of ``model``.

    The decay ramps up as ``min(decay, (1+t)/(10+t))`` for ``t`` updates, so early
    averages are not dominated by the random initialisation. Buffers (batch-norm
    statistics) are copied, not averaged. Samples and evaluations use ``average`` when an
    EMA is present; its weights travel in snapshots.
    """

    trigger = (1, "iteration")
    priority = PRIORITY_EDITOR
    name = "EMA"

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be between 0 and 1, got {decay}.")
        self.model = model
        self.average = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0

    @torch.no_grad()
    def __call__(self, trainer: Trainer) -> None:
        t = self.num_updates
        decay = min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay
        model = self.model
        avg_params: list[torch.Tensor] = list(self.average.parameters())
        torch._foreach_lerp_(avg_params, [p.detach() for p in model.parameters()], 1.0 - decay)
        for a, b in zip(self.average.buffers(), model.buffers(), strict=True):
            a.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_updates = state["num_updates"]
        self.average.load_state_dict(state["average"])


def sampling_model(trainer: Trainer, source: str = "gen") -> nn.Module:
    """The EMA average of model ``source`` if an EMA extension tracks it, else the model."""
    model = trainer.updater.raw_models[source]
    for ext in trainer.extensions.values():
        if isinstance(ext, EMA) and ext.model is model:
            return ext.average
    return model
