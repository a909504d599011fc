"""Drawing batches from a trained generator."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from gankit.training.eval_mode import eval_mode


@torch.no_grad()
def generate(gen: nn.Module, n: int, *, seed: int | None = None, batch_size: int = 1000,
             device: torch.device | str = "cpu", labels: torch.Tensor | None = None,
             part: tuple[int, int] | None = None) -> torch.Tensor:
    """``n`` samples in eval mode (every submodule's mode restored), on ``device``.

    With ``seed`` the noise comes from its own generator (repeatable, the global RNG is
    untouched); conditional generators get ``labels`` or classes in turn. ``part=(lo, hi)``
    computes samples ``lo:hi`` only (one process's share of the ``n``): the noise is drawn in
    the same batches as for all ``n``, so sample ``i`` is the same whatever the share.
    """
    rng = None if seed is None else torch.Generator().manual_seed(seed)
    n_classes = int(getattr(gen, "n_classes", 0))
    if n_classes and labels is None:
        labels = torch.arange(n) % n_classes
    lo, hi = (0, n) if part is None else part
    sample_z = cast(Callable[..., torch.Tensor], gen.sample_z)
    with eval_mode(gen):
        out = []
        for start in range(0, min(n, hi), batch_size):
            m = min(batch_size, n - start)
            z = sample_z(m, device="cpu" if rng else device, generator=rng)
            a, b = max(lo, start), min(hi, start + m)
            if a >= b:
                continue
            y = None if labels is None else labels[a:b].to(device)
            out.append(gen(z[a - start:b - start].to(device), y).float())
        if not out:  # an empty share (more processes than samples), of the right shape
            return generate(gen, 1, seed=seed, device=device)[:0]
        return torch.cat(out)
