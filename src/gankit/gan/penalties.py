"""Gradient penalties for discriminators (critics).

The penalties are returned unweighted and are built with ``create_graph=True``, so adding
``weight * penalty`` to the discriminator loss back-propagates into the critic's parameters.
Callers choose the weight: WGAN-GP uses ``10 * gradient_penalty(...)``, R1 is usually
``gamma / 2 * r1_penalty(...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import Tensor

from gankit.errors import GankitError

__all__ = [
    "gradient_penalty",
    "lazy_adam_hparams",
    "lazy_regularization",
    "path_length_penalty",
    "r1_penalty",
    "r2_penalty",
]



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
    return cast(Tensor, (norm - target).pow(2).mean())


def _squared_grad_penalty(out: Tensor, x: Tensor, which: str) -> Tensor:
    if not x.requires_grad:
        raise GankitError(
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


def lazy_adam_hparams(lr: float, betas: Sequence[float],
                      every: int) -> tuple[float, tuple[float, float]]:
    """Adam's ``(lr, betas)`` rescaled for a regulariser applied every ``every`` steps.

    Karras et al. 2020, appendix B: a lazily regularised network takes ``k + 1`` optimizer
    steps' worth of updates in ``k`` minibatches' time, so with ``c = k / (k + 1)`` the
    learning rate becomes ``lr * c`` and each beta ``beta ** c``, which keeps the momentum's
    time constants in minibatches the same. ``every=1`` is not lazy and leaves them as they
    are. (GANUpdater adds the lazy term to the k-th minibatch's loss rather than taking a
    separate step, so there the rescaling follows the paper's recipe, not its step count.)
    """
    if every < 1:
        raise GankitError(f"every={every} must be a positive interval in minibatches.")
    b1, b2 = betas
    if every == 1:
        return lr, (b1, b2)
    c = every / (every + 1)
    return lr * c, (b1**c, b2**c)


def lazy_regularization(optimizer: torch.optim.Optimizer, every: int) -> torch.optim.Optimizer:
    """Rescale, in place, every param group's ``lr`` and ``betas`` with :func:`lazy_adam_hparams`.

    Call it once, right after building the optimizer (not after a resume: the snapshot's
    optimizer state already holds the rescaled values). Returns ``optimizer``.
    """
    for group in optimizer.param_groups:
        if "betas" not in group:
            raise GankitError(
                f"{type(optimizer).__name__} has no betas; lazy regularisation rescales an "
                "Adam-style optimizer (Adam, AdamW)"
            )
        group["lr"], group["betas"] = lazy_adam_hparams(group["lr"], group["betas"], every)
        if "initial_lr" in group:  # an LR scheduler built before this call
            group["initial_lr"] = group["lr"]
    return optimizer


def path_length_penalty(images: Tensor, ws: Tensor, pl_mean: Tensor,
                        decay: float = 0.01) -> Tensor:
    """StyleGAN2's path-length penalty (Karras et al. 2020, section 3.2).

    ``images`` (B, C, H, W) must have been computed from the styles ``ws`` (B, L, w_dim)
    with a graph. For a random image-space direction ``u`` (normal, scaled by
    1/sqrt(H*W)) the length ``a = ||J_w^T u||`` (the squared Jacobian-vector product summed
    over w_dim, averaged over the L styles, square-rooted) should stay near its running
    mean; the penalty is ``mean((a - pl_mean)^2)``. ``pl_mean`` (a 0-dim float tensor) is
    updated in place, ``pl_mean += decay * (mean(a) - pl_mean)``, without a host sync.
    """
    h, w = images.shape[2], images.shape[3]
    noise = torch.randn_like(images) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    if grad.dtype in (torch.float16, torch.bfloat16):  # lengths and their mean in fp32
        grad = grad.float()
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    with torch.no_grad():
        pl_mean.lerp_(lengths.mean().nan_to_num().to(pl_mean.dtype), decay)
    return (lengths - pl_mean).square().mean()
