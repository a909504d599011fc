import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.modes import class_coverage, mode_coverage


def _ring(k: int = 8, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    return radius * torch.stack([angles.cos(), angles.sin()], 1)


def _grid(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(axis, axis)


def _sample(modes: torch.Tensor, sigma: float, n: int, seed: int, only=None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    choices = torch.tensor(only) if only is not None else torch.arange(len(modes))
    which = choices[torch.randint(len(choices), (n,), generator=g)]
    return modes[which] + sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)


# In 2-D, P(|N(0, sigma^2 I)| <= 3 sigma) = 1 - exp(-9/2) ~ 0.989 is the ideal HQ fraction.
IDEAL_HQ = 1 - math.exp(-4.5)


@pytest.mark.parametrize(
    "modes, sigma, max_kl",
    [(_ring(), 0.02, 0.01), (_grid(), 0.05, 0.03)],
    ids=["ring8", "grid25"],
)
def test_perfect_sampler_captures_every_mode(
    modes: torch.Tensor, sigma: float, max_kl: float
) -> None:
    result = mode_coverage(_sample(modes, sigma, 2500, seed=0), modes, sigma)
    assert result["modes"] == len(modes)
    assert result["high_quality"] == pytest.approx(IDEAL_HQ, abs=0.007)
    assert 0 <= result["reverse_kl"] < max_kl


@pytest.mark.parametrize(
    "modes, sigma", [(_ring(), 0.02), (_grid(), 0.05)], ids=["ring8", "grid25"]
)
def test_collapsed_sampler_captures_one_mode(modes: torch.Tensor, sigma: float) -> None:
    result = mode_coverage(_sample(modes, sigma, 2500, seed=1, only=[3]), modes, sigma)
    assert result["modes"] == 1
    assert result["reverse_kl"] == pytest.approx(math.log(len(modes)), abs=1e-12)


def test_half_the_modes_gives_ln2() -> None:
    samples = torch.cat([_ring()[[0, 2, 4, 6]]] * 100)  # exactly balanced, exactly on centres
    result = mode_coverage(samples, _ring(), 0.02)
    assert result == {"modes": 4, "high_quality": 1.0, "reverse_kl": pytest.approx(math.log(2))}


def test_far_samples_are_low_quality() -> None:
    result = mode_coverage(torch.full((50, 2), 10.0), _ring(), 0.02)
    assert result["modes"] == 0 and result["high_quality"] == 0.0
    assert math.isnan(result["reverse_kl"])


@pytest.mark.parametrize("threshold, expected_hq", [(3.0, 1.0), (1.0, 0.5)])
def test_threshold_is_in_units_of_sigma(threshold: float, expected_hq: float) -> None:
    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    samples = torch.tensor([[0.0, 0.05], [10.0, 0.2]])  # 0.5 sigma and 2 sigma away
    result = mode_coverage(samples, modes, 0.1, threshold=threshold, batch_size=1)
    assert result["high_quality"] == expected_hq
    assert result["modes"] == int(2 * expected_hq)


@pytest.mark.parametrize(
    "samples, modes, sigma, match",
    [
        (torch.zeros(5, 2), torch.zeros(3, 3), 0.1, "same D"),
        (torch.zeros(5), torch.zeros(3, 2), 0.1, "non-empty"),
        (torch.zeros(5, 2), torch.zeros(3, 2), 0.0, "sigma=0.0"),
    ],
)
def test_mode_coverage_bad_input(samples, modes, sigma, match: str) -> None:
    with pytest.raises(GankitError, match=match):
        mode_coverage(samples, modes, sigma)


@pytest.mark.parametrize(
    "labels, n_classes, classes, kl",
    [
        (torch.arange(10).repeat(7), 10, 10, 0.0),
        (torch.full((30,), 4), 10, 1, math.log(10)),
        (torch.tensor([0, 0, 1, 1]), 4, 2, math.log(2)),
        (torch.tensor([0, 0, 0, 1]), 2, 2, 0.75 * math.log(1.5) + 0.25 * math.log(0.5)),
    ],
)
def test_class_coverage(labels: torch.Tensor, n_classes: int, classes: int, kl: float) -> None:
    result = class_coverage(labels, n_classes)
    assert result["classes"] == classes
    assert result["class_kl"] == pytest.approx(kl, abs=1e-12)


@pytest.mark.parametrize(
    "labels, match",
    [
        (torch.tensor([0, 10]), r"\[0, 10\], outside \[0, 9\]"),
        (torch.tensor([0.0, 1.0]), "integer"),
        (torch.tensor([], dtype=torch.long), "non-empty"),
    ],
)
def test_class_coverage_bad_labels(labels: torch.Tensor, match: str) -> None:
    with pytest.raises(GankitError, match=match):
        class_coverage(labels, 10)
