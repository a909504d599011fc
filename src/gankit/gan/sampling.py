"""Drawing batches from a trained generator."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from gankit.training.eval_mode import eval_mode


@torch.no_grad()
def generate(gen: nn.Module, n: int, *, seed: int | None = None, batch_size: int = 1000,
             device: torch.device | str = "cpu",
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` samples in eval mode (every submodule's mode restored), on ``device``.

    With ``seed`` the noise comes from its own generator (repeatable, the global RNG is
    untouched); conditional generators get ``labels`` or classes in turn.
    """
    rng = None if seed is None else torch.Generator().manual_seed(seed)
    n_classes = int(getattr(gen, "n_classes", 0))
    if n_classes and labels is None:
        labels = torch.arange(n) % n_classes
    sample_z = cast(Callable[..., torch.Tensor], gen.sample_z)
    with eval_mode(gen):
        out = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = sample_z(m, device="cpu" if rng else device, generator=rng).to(device)
            y = None if labels is None else labels[start:start + m].to(device)
            out.append(gen(z, y).float())
        return torch.cat(out)
