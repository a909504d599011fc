import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance, _compute_fid

from gankit.errors import GankitError
from gankit.metrics.fid import feature_statistics, frechet_distance, frechet_distance_from_stats


def _features(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5 + torch.eye(d)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + shift) * scale


def _with_exact_moments(n: int, mu: torch.Tensor, cov: torch.Tensor, seed: int) -> torch.Tensor:
    """Samples whose sample mean and (unbiased) covariance are exactly mu and cov."""
    z = torch.randn(
        n, mu.numel(), generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    z = z - z.mean(0)
    z_cov = z.T @ z / (n - 1)
    whiten = torch.linalg.cholesky(torch.linalg.inv(z_cov))
    return z @ whiten @ torch.linalg.cholesky(cov).T + mu


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


class _Identity(nn.Module):
    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("n, d", [(500, 8), (300, 64), (40, 64)])  # last: singular covariance
def test_distance_of_a_set_to_itself_is_zero(scale: float, n: int, d: int) -> None:
    feat = _features(n, d, seed=1, shift=3.0, scale=scale)
    value = frechet_distance(feat, feat)
    assert 0.0 <= value < 1e-6 * scale**2 * d


@pytest.mark.parametrize(
    "mu1, var1, mu2, var2",
    [
        ([0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [4.0, 9.0]),
        ([1.0, -2.0, 0.5], [0.5, 2.0, 3.0], [0.0, 1.0, 0.5], [2.0, 0.1, 3.0]),
        ([5.0], [1e-4], [5.0], [1e4]),
    ],
)
def test_diagonal_gaussians_match_closed_form(mu1, var1, mu2, var2) -> None:
    mu1, var1, mu2, var2 = (torch.tensor(v, dtype=torch.float64) for v in (mu1, var1, mu2, var2))
    expected = float(((mu1 - mu2) ** 2).sum() + ((var1.sqrt() - var2.sqrt()) ** 2).sum())
    value = frechet_distance_from_stats(mu1, torch.diag(var1), mu2, torch.diag(var2))
    assert value == pytest.approx(expected, rel=1e-3, abs=1e-9)


@pytest.mark.parametrize("d, seed", [(4, 0), (32, 1)])
def test_commuting_covariances_match_closed_form(d: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    a = torch.rand(d, generator=g, dtype=torch.float64) * 3 + 0.1
    b = torch.rand(d, generator=g, dtype=torch.float64) * 3 + 0.1
    mu1, mu2 = torch.randn(2, d, generator=g, dtype=torch.float64)
    expected = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    value = frechet_distance_from_stats(mu1, q @ torch.diag(a) @ q.T, mu2, q @ torch.diag(b) @ q.T)
    assert value == pytest.approx(expected, rel=1e-3)


def test_samples_with_known_moments_match_closed_form() -> None:
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, -1.0])
    var1, var2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 2.0, 0.1])
    a = _with_exact_moments(2000, mu1.double(), torch.diag(var1).double(), seed=0)
    b = _with_exact_moments(1500, mu2.double(), torch.diag(var2).double(), seed=1)
    expected = float(((mu1 - mu2) ** 2).sum() + ((var1.sqrt() - var2.sqrt()) ** 2).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("n_a, n_b, d, shift", [(400, 300, 8, 0.5), (600, 600, 32, 0.0)])
def test_agrees_with_scipy_and_torchmetrics(n_a: int, n_b: int, d: int, shift: float) -> None:
    a = _features(n_a, d, seed=2)
    b = _features(n_b, d, seed=3, shift=shift, scale=1.3)
    ours = frechet_distance(a, b)
    assert ours == pytest.approx(_scipy_fid(a.numpy(), b.numpy()), rel=1e-6)

    mu_a, s_a = feature_statistics(a)
    mu_b, s_b = feature_statistics(b)
    assert ours == pytest.approx(float(_compute_fid(mu_a, s_a, mu_b, s_b)), rel=1e-6)

    metric = FrechetInceptionDistance(feature=_Identity(d))
    metric.update(a, real=True)
    metric.update(b, real=False)
    assert ours == pytest.approx(float(metric.compute()), rel=1e-6)


def test_statistics_match_numpy_for_float32_with_large_mean() -> None:
    feat = _features(3000, 6, seed=4, shift=1e3).float()
    mu, cov = feature_statistics(feat, batch_size=256)
    ref = feat.double().numpy()
    np.testing.assert_allclose(mu.numpy(), ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(ref, rowvar=False), rtol=1e-9, atol=1e-9)


def test_distance_is_symmetric_and_positive() -> None:
    a, b = _features(200, 5, seed=5), _features(250, 5, seed=6, shift=0.2)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, b) > 0.01


@pytest.mark.parametrize(
    "a, b, match",
    [
        (torch.zeros(10, 3), torch.zeros(10, 4), "same network"),
        (torch.zeros(1, 3), torch.zeros(10, 3), "at least 2"),
        (torch.zeros(10), torch.zeros(10, 3), "2-D"),
        (torch.full((10, 3), float("nan")), torch.zeros(10, 3), "NaN"),
    ],
)
def test_bad_features_raise(a: torch.Tensor, b: torch.Tensor, match: str) -> None:
    with pytest.raises(GankitError, match=match):
        frechet_distance(a, b)


def test_mismatched_statistics_raise() -> None:
    with pytest.raises(GankitError, match="mismatched shapes"):
        frechet_distance_from_stats(torch.zeros(3), torch.eye(3), torch.zeros(2), torch.eye(2))


def test_fewer_samples_than_features_take_the_small_problem_with_the_same_value() -> None:
    """b = c * a has s_b = c^2 s_a, so FID = (1 - c)^2 (|mu_a|^2 + Tr s_a) exactly; the
    D x D eigen route adds the square roots of rounding-noise eigenvalues of the singular
    covariances (~1e-8 relative), the n x n route does not."""
    from gankit.metrics.fid import _frechet_distance_low_rank

    g = torch.Generator().manual_seed(7)
    a = torch.randn(30, 200, generator=g, dtype=torch.float64) * 1.5 + 0.2
    c = 1.7
    mu, sigma = feature_statistics(a)
    exact = (1 - c) ** 2 * float(mu @ mu + torch.trace(sigma))
    assert frechet_distance(a, c * a) == pytest.approx(exact, rel=1e-10)  # takes the n x n route
    assert _frechet_distance_low_rank(a, c * a) == pytest.approx(exact, rel=1e-10)
    eigen = frechet_distance_from_stats(mu, sigma, *feature_statistics(c * a))
    assert eigen == pytest.approx(exact, rel=1e-6)
    # unequal sizes, independent sets: both routes agree to rounding
    b = torch.randn(12, 200, generator=g, dtype=torch.float64) + 0.3
    stats = frechet_distance_from_stats(mu, sigma, *feature_statistics(b))
    assert frechet_distance(a, b) == pytest.approx(stats, rel=1e-6) and stats > 10
