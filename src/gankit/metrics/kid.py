"""Kernel Inception Distance: unbiased MMD² with a cubic polynomial kernel, over random subsets."""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.fid import check_features
from gankit.training.stop import check_stop

__all__ = ["kernel_inception_distance", "polynomial_mmd2"]


def _poly_kernel(x: Tensor, y: Tensor) -> Tensor:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def polynomial_mmd2(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased MMD² between samples x (m, D) and y (n, D) with k(a, b) = (a·b / D + 1)^3.

    The within-set sums leave out the diagonal k(x_i, x_i), which is what makes the estimate
    unbiased (and able to go below 0 when the two distributions are equal).
    """
    m, n = x.shape[0], y.shape[0]
    k_xx = _poly_kernel(x, x)
    k_yy = _poly_kernel(y, y)
    k_xy = _poly_kernel(x, y)
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return term_xx + term_yy - 2 * k_xy.mean()


def kernel_inception_distance(
    feat_a: Tensor,
    feat_b: Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of the unbiased polynomial-kernel MMD² over random subsets of both sets.

    Each subset draws ``min(subset_size, N_a, N_b)`` rows without replacement from each set,
    using a private ``torch.Generator(seed)`` so the global RNG is untouched and the same seed
    gives the same score. The std is the population std over subsets, as torchmetrics reports.
    Kernels are computed in float64 on the features' device; memory is three
    ``subset_size²`` matrices at a time.
    """
    feat_a = check_features(feat_a, "feat_a")
    feat_b = check_features(feat_b, "feat_b")
    if feat_a.shape[1] != feat_b.shape[1]:
        raise GankitError(
            f"feat_a has {feat_a.shape[1]} features per row but feat_b has {feat_b.shape[1]}; "
            "extract both with the same network."
        )
    if subsets < 1:
        raise GankitError(f"subsets={subsets} is not positive; use at least 1 subset.")
    if subset_size < 2:
        raise GankitError(f"subset_size={subset_size} is too small; use at least 2.")
    feat_b = feat_b.to(feat_a.device)
    m = min(subset_size, feat_a.shape[0], feat_b.shape[0])
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        check_stop()
        idx_a = torch.randperm(feat_a.shape[0], generator=gen)[:m].to(feat_a.device)
        idx_b = torch.randperm(feat_b.shape[0], generator=gen)[:m].to(feat_a.device)
        x = feat_a[idx_a].to(torch.float64)
        y = feat_b[idx_b].to(torch.float64)
        scores.append(polynomial_mmd2(x, y))
    # One stack, one host transfer at the end rather than a sync per subset.
    all_scores = torch.stack(scores)
    return float(all_scores.mean()), float(all_scores.std(unbiased=False))
