import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.image.kid import KernelInceptionDistance

from gankit.errors import GankitError
from gankit.metrics.kid import kernel_inception_distance, polynomial_mmd2


def _numpy_mmd2(x: np.ndarray, y: np.ndarray, biased: bool = False) -> float:
    """Textbook estimator with explicit i != j masks (biased=True keeps the diagonals)."""
    d = x.shape[1]
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    if biased:
        return float(k_xx.mean() + k_yy.mean() - 2 * k_xy.mean())
    off_x, off_y = ~np.eye(len(x), dtype=bool), ~np.eye(len(y), dtype=bool)
    return float(k_xx[off_x].mean() + k_yy[off_y].mean() - 2 * k_xy.mean())


def _gauss(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize("m, n, d", [(30, 30, 4), (50, 20, 16)])
def test_mmd2_matches_numpy_reference(m: int, n: int, d: int) -> None:
    x, y = _gauss(m, d, seed=0), _gauss(n, d, seed=1, shift=0.3)
    assert float(polynomial_mmd2(x, y)) == pytest.approx(
        _numpy_mmd2(x.numpy(), y.numpy()), rel=1e-10
    )


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_matches_torchmetrics_when_subsets_cover_the_sets() -> None:
    # With subset_size == N every subset is the whole set (MMD² ignores order), so
    # torchmetrics' global-RNG permutations and ours must give the same numbers.
    a, b = _gauss(100, 8, seed=2), _gauss(100, 8, seed=3, shift=0.5)
    metric = KernelInceptionDistance(feature=_Identity(), subsets=4, subset_size=100)
    metric.update(a, real=True)
    metric.update(b, real=False)
    tm_mean, tm_std = metric.compute()
    mean, std = kernel_inception_distance(a, b, subsets=4, subset_size=100)
    assert mean == pytest.approx(float(tm_mean), rel=1e-10)
    assert std == pytest.approx(float(tm_std), abs=1e-12)
    assert mean == pytest.approx(_numpy_mmd2(a.numpy(), b.numpy()), rel=1e-10)


def test_subset_size_is_capped_by_the_smaller_set() -> None:
    a, b = _gauss(120, 8, seed=2), _gauss(100, 8, seed=3, shift=0.5)
    mean, std = kernel_inception_distance(a, b, subsets=4, subset_size=1000)
    # Every subset takes all of b but a different 100 of a's 120 rows.
    assert std > 0 and mean > 0


def test_random_subsets_match_numpy_on_the_same_indices() -> None:
    a, b = _gauss(80, 6, seed=4), _gauss(70, 6, seed=5, shift=0.2)
    mean, std = kernel_inception_distance(a, b, subsets=5, subset_size=30, seed=7)
    gen = torch.Generator().manual_seed(7)
    ref = []
    for _ in range(5):
        ia = torch.randperm(80, generator=gen)[:30].numpy()
        ib = torch.randperm(70, generator=gen)[:30].numpy()
        ref.append(_numpy_mmd2(a.numpy()[ia], b.numpy()[ib]))
    assert mean == pytest.approx(np.mean(ref), rel=1e-10)
    assert std == pytest.approx(np.std(ref), rel=1e-8)


def test_same_distribution_scores_near_zero() -> None:
    mean, std = kernel_inception_distance(
        _gauss(600, 16, seed=6), _gauss(600, 16, seed=7), subsets=20, subset_size=300
    )
    assert abs(mean) < 3 * std


@pytest.mark.parametrize("unbiased", [True, False])
def test_estimator_is_unbiased(unbiased: bool) -> None:
    # 300 independent pairs from one distribution: the unbiased estimate averages to 0 within
    # a few standard errors; the biased (V-statistic) version fails the same check.
    g = torch.Generator().manual_seed(8)
    values = []
    for _ in range(300):
        x = torch.randn(12, 4, generator=g, dtype=torch.float64)
        y = torch.randn(12, 4, generator=g, dtype=torch.float64)
        if unbiased:
            values.append(float(polynomial_mmd2(x, y)))
        else:
            values.append(_numpy_mmd2(x.numpy(), y.numpy(), biased=True))
    values = np.array(values)
    stderr = values.std() / np.sqrt(len(values))
    assert (abs(values.mean()) < 4 * stderr) == unbiased
    if unbiased:
        assert (values < 0).any()


def test_different_distributions_score_high() -> None:
    mean, std = kernel_inception_distance(
        _gauss(400, 16, seed=9), _gauss(400, 16, seed=10, shift=1), subsets=10, subset_size=200
    )
    assert mean > 1.0 and mean > 20 * std


def test_seeded_and_leaves_global_rng_alone() -> None:
    a, b = _gauss(100, 4, seed=11), _gauss(100, 4, seed=12)
    state = torch.get_rng_state()
    first = kernel_inception_distance(a, b, subsets=5, subset_size=40, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    assert kernel_inception_distance(a, b, subsets=5, subset_size=40, seed=3) == first
    assert kernel_inception_distance(a, b, subsets=5, subset_size=40, seed=4) != first


def test_float32_input_matches_float64() -> None:
    a, b = _gauss(90, 8, seed=13), _gauss(90, 8, seed=14, shift=0.1)
    r64 = kernel_inception_distance(a, b, subsets=3, subset_size=50)
    r32 = kernel_inception_distance(a.float(), b.float(), subsets=3, subset_size=50)
    assert r32[0] == pytest.approx(r64[0], rel=1e-4, abs=1e-7)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"subsets": 0}, "subsets=0"),
        ({"subset_size": 1}, "subset_size=1"),
    ],
)
def test_bad_options_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(GankitError, match=match):
        kernel_inception_distance(_gauss(10, 2, 0), _gauss(10, 2, 1), **kwargs)


def test_mismatched_dims_raise() -> None:
    with pytest.raises(GankitError, match="same network"):
        kernel_inception_distance(_gauss(10, 2, 0), _gauss(10, 3, 1))
