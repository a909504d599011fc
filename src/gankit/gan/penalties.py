"""Gradient penalties for discriminators (critics).

The penalties are returned unweighted and are built with ``create_graph=True``, so adding
``weight * penalty`` to the discriminator loss back-propagates into the critic's parameters.
Callers choose the weight: WGAN-GP uses ``10 * gradient_penalty(...)``, R1 is usually
``gamma / 2 * r1_penalty(...)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["PENALTIES", "gradient_penalty", "r1_penalty", "r2_penalty"]

#: the penalties GANUpdater and ``--penalty`` know
PENALTIES = ("none", "r1", "r2", "gp")


def _per_sample_sq_norm(grad: Tensor) -> Tensor:
    return grad.flatten(start_dim=1).pow(2).sum(dim=1)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, target: float = 1.0
) -> Tensor:
    """WGAN-GP penalty: mean over the batch of ``(||grad critic(x_hat)||_2 - target)^2``.

    ``x_hat`` mixes each real sample with its fake counterpart by a weight drawn uniformly
    per sample from torch's global RNG (on ``real``'s device). The norm runs over all
    non-batch dimensions. ``real`` and ``fake`` are detached, so only the critic receives
    gradient from the penalty. For a conditional critic pass e.g. ``lambda x: dis(x, y)``.
    """
    real, fake = real.detach(), fake.detach()
    alpha = torch.rand(
        (real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype
    )
    x_hat = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    # vector_norm rather than sum-of-squares.sqrt(): its backward is defined (zero) where the
    # gradient vanishes, whereas sqrt's derivative at 0 is infinite and would give NaN.
    norm = torch.linalg.vector_norm(grad.flatten(start_dim=1), dim=1)
    return (norm - target).pow(2).mean()


def _squared_grad_penalty(out: Tensor, x: Tensor, which: str) -> Tensor:
    if not x.requires_grad:
        raise ValueError(
            f"{which}_penalty needs the discriminator input to require grad; call "
            "x.requires_grad_(True) before computing the discriminator's output on it"
        )
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return _per_sample_sq_norm(grad).mean()


def r1_penalty(real_out: Tensor, real_x: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): mean over the batch of ``||d real_out / d real_x||^2``.

    ``real_x`` must require grad before ``real_out`` is computed from it. Unweighted: the
    usual term in the discriminator loss is ``gamma / 2 * r1_penalty(real_out, real_x)``.
    """
    return _squared_grad_penalty(real_out, real_x, "r1")


def r2_penalty(fake_out: Tensor, fake_x: Tensor) -> Tensor:
    """R2: the same as :func:`r1_penalty`, on fake samples (``fake_x`` must require grad)."""
    return _squared_grad_penalty(fake_out, fake_x, "r2")
