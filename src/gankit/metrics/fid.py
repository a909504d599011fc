"""Fréchet distance between two feature sets (FID when the features come from Inception).

gankit never downloads Inception: the features come from whatever network the caller picks
(see :mod:`gankit.metrics.features`), so scores are comparable only under the same network.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from gankit.errors import GankitError

__all__ = ["check_features", "feature_statistics", "frechet_distance",
           "frechet_distance_from_stats"]


def check_features(feat: Tensor, name: str, min_rows: int = 2) -> Tensor:
    """``feat`` as a tensor, checked to be (N, D) with at least ``min_rows`` rows; ``name``
    is how the error calls it."""
    feat = torch.as_tensor(feat)
    if feat.dim() != 2:
        raise GankitError(
            f"{name} has shape {tuple(feat.shape)}; pass features as a 2-D (N, D) tensor."
        )
    if feat.shape[0] < min_rows:
        raise GankitError(
            f"{name} has {feat.shape[0]} rows; pass at least {min_rows} feature vectors."
        )
    if feat.is_floating_point() and not bool(torch.isfinite(feat).all()):
        raise GankitError(f"{name} contains NaN or inf; check the network that produced it.")
    return feat


def feature_statistics(feat: Tensor, *, batch_size: int = 8192) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64.

    Two passes over row blocks: the centred second pass avoids the cancellation of the
    ``E[xx^T] - mu mu^T`` shortcut when features have a large mean, and only one block is
    ever copied to float64.
    """
    feat = check_features(feat, "features")
    n, d = feat.shape
    total = torch.zeros(d, dtype=torch.float64, device=feat.device)
    for start in range(0, n, batch_size):
        total += feat[start : start + batch_size].to(torch.float64).sum(dim=0)
    mu = total / n
    cov = torch.zeros(d, d, dtype=torch.float64, device=feat.device)
    for start in range(0, n, batch_size):
        block = feat[start : start + batch_size].to(torch.float64) - mu
        cov += block.T @ block
    return mu, cov / (n - 1)


def _sqrtm_psd(mat: Tensor) -> Tensor:
    """Square root of a symmetric PSD matrix; tiny negative eigenvalues (rounding) become 0."""
    eigval, eigvec = torch.linalg.eigh(mat)
    return cast(Tensor, (eigvec * eigval.clamp(min=0).sqrt()) @ eigvec.T)


def frechet_distance_from_stats(mu1: Tensor, s1: Tensor, mu2: Tensor, s2: Tensor) -> float:
    """Fréchet distance between N(mu1, s1) and N(mu2, s2).

    ``||mu1 - mu2||^2 + Tr(s1) + Tr(s2) - 2 Tr(sqrtm(s1 s2))``. The last trace is computed as
    the sum of square roots of the eigenvalues of ``sqrt(s1) s2 sqrt(s1)``: that matrix is
    symmetric PSD and similar to ``s1 s2``, so ``eigvalsh`` is stable where a general ``sqrtm``
    of the non-symmetric product can return complex noise. Everything runs in float64 on the
    inputs' device; the result is clamped at 0 (it is a squared distance).
    """
    mu1, mu2 = (torch.as_tensor(m).to(torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s).to(torch.float64) for s in (s1, s2))
    d = mu1.shape[-1]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise GankitError(
            f"statistics have mismatched shapes mu1 {tuple(mu1.shape)}, s1 {tuple(s1.shape)}, "
            f"mu2 {tuple(mu2.shape)}, s2 {tuple(s2.shape)}; pass (D,) means and (D, D) covariances."
        )
    mu2, s2 = mu2.to(mu1.device), s2.to(mu1.device)
    # Symmetrise: accumulated covariances are symmetric only up to rounding.
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    root1 = _sqrtm_psd(s1)
    middle = root1 @ s2 @ root1
    middle = (middle + middle.T) / 2
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    value = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * trace_sqrt
    return max(float(value), 0.0)


def frechet_distance(feat_a: Tensor, feat_b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N_a, D) and (N_b, D).

    Both sets need at least 2 rows; N_a and N_b may differ. Computed in float64.
    """
    feat_a = check_features(feat_a, "feat_a")
    feat_b = check_features(feat_b, "feat_b")
    if feat_a.shape[1] != feat_b.shape[1]:
        raise GankitError(
            f"feat_a has {feat_a.shape[1]} features per row but feat_b has {feat_b.shape[1]}; "
            "extract both with the same network."
        )
    feat_b = feat_b.to(feat_a.device)
    n_min, d = min(feat_a.shape[0], feat_b.shape[0]), feat_a.shape[1]
    if n_min < d // 2:
        return _frechet_distance_low_rank(feat_a, feat_b)
    mu_a, s_a = feature_statistics(feat_a)
    mu_b, s_b = feature_statistics(feat_b)
    return frechet_distance_from_stats(mu_a, s_a, mu_b, s_b)


def _frechet_distance_low_rank(feat_a: Tensor, feat_b: Tensor) -> float:
    """The same distance from the samples, for fewer samples than features (2048-d
    Inception features of a few hundred images).

    With ``s_a = A^T A`` and ``s_b = B^T B`` (A, B the centred samples over sqrt(n - 1)),
    the eigenvalues of ``s_a s_b`` are the squared singular values of ``A B^T`` (n_a x n_b),
    so ``Tr sqrtm(s_a s_b)`` is its nuclear norm: an n x n problem instead of a D x D one.
    """
    a = feat_a.to(torch.float64)
    b = feat_b.to(torch.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    a = (a - mu_a) / (a.shape[0] - 1) ** 0.5
    b = (b - mu_b) / (b.shape[0] - 1) ** 0.5
    trace_sqrt = torch.linalg.svdvals(a @ b.T).sum()
    diff = mu_a - mu_b
    value = diff @ diff + (a * a).sum() + (b * b).sum() - 2 * trace_sqrt
    return max(float(value), 0.0)
