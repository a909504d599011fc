"""Mode coverage for toy mixtures (PacGAN protocol) and class coverage for labelled images.

PacGAN protocol (Lin et al., 2018), as used by gankit's 2-D benchmarks: draw 2,500 samples
from the generator; assign each to its nearest mode centre; a sample is *high quality* when
it lies within ``threshold * sigma`` (3 standard deviations) of that centre; a mode is
*captured* when at least one high-quality sample is assigned to it. The reverse KL compares
the histogram of high-quality samples over modes with the uniform distribution, so it is 0
for a perfectly balanced generator and ln K when every good sample sits on one mode.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gankit.errors import GankitError

__all__ = ["class_coverage", "mode_coverage"]


def _kl_to_uniform(counts: Tensor) -> float:
    """KL(q || uniform) for q = counts / counts.sum(); empty bins contribute 0."""
    q = counts.to(torch.float64) / counts.sum()
    q = q[q > 0]
    return float((q * torch.log(q * counts.numel())).sum())


def mode_coverage(
    samples: Tensor, modes: Tensor, sigma: float, *, threshold: float = 3.0, batch_size: int = 65536
) -> dict[str, float | int]:
    """Score samples (N, D) against mixture centres (K, D) of per-mode std ``sigma``.

    Returns ``{"modes": captured modes, "high_quality": fraction of high-quality samples,
    "reverse_kl": KL(q || uniform) over modes}``; ``reverse_kl`` is NaN when no sample is
    high quality (q is then undefined). See the module docstring for the protocol.
    """
    samples = torch.as_tensor(samples)
    modes = torch.as_tensor(modes)
    if samples.dim() != 2 or samples.shape[0] == 0:
        raise GankitError(
            f"samples has shape {tuple(samples.shape)}; pass a non-empty (N, D) tensor."
        )
    if modes.dim() != 2 or modes.shape[0] == 0 or modes.shape[1] != samples.shape[1]:
        raise GankitError(
            f"modes has shape {tuple(modes.shape)} for samples of shape "
            f"{tuple(samples.shape)}; pass a (K, D) tensor of mode centres with the same D."
        )
    if not sigma > 0 or not threshold > 0:
        raise GankitError(
            f"sigma={sigma} and threshold={threshold} must both be positive; pass the "
            "mixture's per-mode standard deviation."
        )
    modes = modes.to(device=samples.device, dtype=torch.float64)
    n_modes = modes.shape[0]
    nearest = torch.empty(samples.shape[0], dtype=torch.long, device=samples.device)
    good = torch.empty(samples.shape[0], dtype=torch.bool, device=samples.device)
    for start in range(0, samples.shape[0], batch_size):
        block = samples[start : start + batch_size].to(torch.float64)
        dist, idx = torch.cdist(block, modes).min(dim=1)
        nearest[start : start + batch_size] = idx
        good[start : start + batch_size] = dist <= threshold * sigma
    counts = torch.bincount(nearest[good], minlength=n_modes)
    n_good = int(counts.sum())
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": n_good / samples.shape[0],
        "reverse_kl": _kl_to_uniform(counts) if n_good else math.nan,
    }


def class_coverage(pred_labels: Tensor, n_classes: int) -> dict[str, float | int]:
    """Coverage of classes predicted by a classifier on generated images.

    Returns ``{"classes": classes predicted at least once, "class_kl": KL(histogram ||
    uniform)}``; ``class_kl`` is 0 for a perfectly balanced generator and ln(n_classes) when
    every sample falls in one class.
    """
    pred_labels = torch.as_tensor(pred_labels)
    if n_classes < 1:
        raise GankitError(f"n_classes={n_classes} is not positive; pass the number of classes.")
    if pred_labels.numel() == 0 or pred_labels.is_floating_point() or pred_labels.is_complex():
        raise GankitError(
            f"pred_labels has {pred_labels.numel()} values of dtype {pred_labels.dtype}; pass a "
            "non-empty integer tensor of predicted classes (e.g. logits.argmax(1))."
        )
    labels = pred_labels.reshape(-1).long()
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n_classes:
        raise GankitError(
            f"pred_labels range over [{low}, {high}], outside [0, {n_classes - 1}]; "
            "check n_classes."
        )
    counts = torch.bincount(labels, minlength=n_classes)
    return {"classes": int((counts > 0).sum()), "class_kl": _kl_to_uniform(counts)}
