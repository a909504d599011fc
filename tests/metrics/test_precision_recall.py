import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.precision_recall import precision_recall


def _numpy_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Brute force straight from the paper's definitions."""

    def dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    r_real = np.sort(dists(real, real), axis=1)[:, k]  # column 0 is the point itself
    r_fake = np.sort(dists(fake, fake), axis=1)[:, k]
    cross = dists(fake, real)
    precision = (cross <= r_real[None, :]).any(1).mean()
    recall = (cross <= r_fake[:, None]).any(0).mean()
    return float(precision), float(recall)


def _cloud(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * scale + shift


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("batch_size", [7, 64, 4096])
@pytest.mark.parametrize("n_real, n_fake, d", [(60, 80, 3), (150, 40, 10)])
def test_matches_brute_force(k: int, batch_size: int, n_real: int, n_fake: int, d: int) -> None:
    real = _cloud(n_real, d, seed=0)
    fake = _cloud(n_fake, d, seed=1, shift=1.0)
    got = precision_recall(real, fake, k=k, batch_size=batch_size)
    expected = _numpy_precision_recall(real.double().numpy(), fake.double().numpy(), k)
    assert got == expected
    assert 0 < got[0] < 1 and 0 < got[1] < 1  # the data exercise both sides of the balls


def test_fake_subset_of_real_has_full_precision() -> None:
    real = _cloud(500, 4, seed=2)
    precision, recall = precision_recall(real, real[:50], batch_size=128)
    assert precision == 1.0
    assert recall < 1.0


def test_identical_sets_score_one() -> None:
    real = _cloud(300, 8, seed=3)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)


def test_far_apart_clouds_score_zero() -> None:
    assert precision_recall(_cloud(200, 5, seed=4), _cloud(200, 5, seed=5, shift=100.0)) == (
        0.0,
        0.0,
    )


def test_mode_dropping_lowers_recall_not_precision() -> None:
    real = torch.cat([_cloud(300, 2, seed=6), _cloud(300, 2, seed=7, shift=20.0)])
    fake = _cloud(300, 2, seed=8)  # covers only the first cluster
    precision, recall = precision_recall(real, fake)
    assert precision > 0.9
    assert recall < 0.55


@pytest.mark.parametrize(
    "real, fake, k, match",
    [
        (torch.zeros(10, 3), torch.zeros(10, 4), 3, "same network"),
        (torch.zeros(3, 2), torch.zeros(10, 2), 3, "at least 4"),
        (torch.zeros(10, 2), torch.zeros(10, 2), 0, "k=0"),
    ],
)
def test_bad_input_raises(real: torch.Tensor, fake: torch.Tensor, k: int, match: str) -> None:
    with pytest.raises(GankitError, match=match):
        precision_recall(real, fake, k=k)
