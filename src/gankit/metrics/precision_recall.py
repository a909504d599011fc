"""Improved precision and recall (Kynkäänniemi et al., 2019) on feature vectors.

Each set's manifold is the union of balls around its points, the radius of a point being the
distance to its k-th nearest neighbour in the same set (itself excluded). Precision is the
fraction of fake points inside the real manifold (quality); recall is the fraction of real
points inside the fake manifold (coverage). A point on a ball's boundary counts as inside.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.fid import check_features
from gankit.training.stop import check_stop

__all__ = ["precision_recall"]


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    # The matmul form is BLAS-fast; float64 keeps its cancellation error ~1e-15 relative,
    # far below any gap that decides "inside a ball".
    # addmm + in-place ops: one (|a|, |b|) temporary instead of four.
    d2 = torch.addmm((b * b).sum(1)[None, :], a, b.T, alpha=-2)
    return d2.add_((a * a).sum(1, keepdim=True)).clamp_(min=0)


def _kth_sq_radii(x: Tensor, k: int, batch_size: int) -> Tensor:
    """Squared distance from each row of x to its k-th nearest other row, block by block."""
    n = x.shape[0]
    radii = torch.empty(n, dtype=x.dtype, device=x.device)
    for r0 in range(0, n, batch_size):
        rows = x[r0 : r0 + batch_size]
        best: Tensor | None = None
        for c0 in range(0, n, batch_size):
            check_stop()  # quadratic in n: a pending SIGTERM abandons it within a block
            d2 = _sq_dists(rows, x[c0 : c0 + batch_size])
            # k+1 smallest: the smallest is the point itself (distance 0).
            small = d2.topk(min(k + 1, d2.shape[1]), dim=1, largest=False).values
            if best is not None:
                small = torch.cat([best, small], dim=1).topk(k + 1, dim=1, largest=False).values
            best = small
        assert best is not None  # n >= 1: the loop ran
        radii[r0 : r0 + batch_size] = best[:, k]
    return radii


def precision_recall(
    real: Tensor, fake: Tensor, *, k: int = 3, batch_size: int = 4096
) -> tuple[float, float]:
    """(precision, recall) of fake features (M, D) against real features (N, D).

    Distances are computed in float64, in ``batch_size x batch_size`` blocks (so peak memory
    is about ``2 * 8 * batch_size**2`` bytes whatever N and M are), on the device of ``real``.
    Both sets need more than k points.
    """
    real = check_features(real, "real")
    fake = check_features(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise GankitError(
            f"real has {real.shape[1]} features per row but fake has {fake.shape[1]}; "
            "extract both with the same network."
        )
    if k < 1:
        raise GankitError(f"k={k} is not positive; use k >= 1 (3 is the usual choice).")
    for name, feat in (("real", real), ("fake", fake)):
        if feat.shape[0] <= k:
            raise GankitError(
                f"{name} has {feat.shape[0]} points but k={k} needs at least {k + 1}; "
                "pass more samples or lower k."
            )
    if batch_size < 1:
        raise GankitError(f"batch_size={batch_size} is not positive; use e.g. 4096.")
    real = real.to(torch.float64)
    fake = fake.to(device=real.device, dtype=torch.float64)
    # Centring both sets on one point shrinks the norms in the matmul distance form.
    centre = real.mean(0)
    real = real - centre
    fake = fake - centre

    r_real = _kth_sq_radii(real, k, batch_size)
    r_fake = _kth_sq_radii(fake, k, batch_size)
    fake_inside = torch.zeros(fake.shape[0], dtype=torch.bool, device=real.device)
    real_inside = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    # One pass over the fake x real distance blocks serves both directions.
    for f0 in range(0, fake.shape[0], batch_size):
        f_rows = fake[f0 : f0 + batch_size]
        f_rad = r_fake[f0 : f0 + batch_size]
        for r0 in range(0, real.shape[0], batch_size):
            check_stop()
            d2 = _sq_dists(f_rows, real[r0 : r0 + batch_size])
            fake_inside[f0 : f0 + batch_size] |= (d2 <= r_real[r0 : r0 + batch_size]).any(1)
            real_inside[r0 : r0 + batch_size] |= (d2 <= f_rad[:, None]).any(0)
    precision = fake_inside.to(torch.float64).mean()
    recall = real_inside.to(torch.float64).mean()
    return float(precision), float(recall)
