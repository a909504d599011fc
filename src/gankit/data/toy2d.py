"""Generated 2-D Gaussian mixtures, the standard test of mode collapse.

``ring8``: 8 modes on the unit circle at angles ``linspace(0, 2π, 9)[:-1]``, σ = 0.01.
``grid25``: modes at {-4, -2, 0, 2, 4}², σ = 0.05. Each sample picks a mode uniformly at
random; its label is the mode index, so conditional models can train on it. 50,000 train and
10,000 val points, drawn from ``(seed, split)`` so the two splits are different samples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from gankit.data.datasets import ArrayDataset, check_split

__all__ = ["TOY2D", "grid25_modes", "make_toy2d", "ring8_modes"]

N_TRAIN = 50_000
N_VAL = 10_000
_SPLIT_CODE = {"train": 0, "val": 1}


def ring8_modes() -> np.ndarray:
    """The 8 ring means, shape (8, 2)."""
    angles = np.linspace(0.0, 2.0 * np.pi, 9)[:-1]
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid25_modes() -> np.ndarray:
    """The 25 grid means, shape (25, 2), row by row."""
    ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


# name -> (modes, sigma)
TOY2D: dict[str, tuple[Callable[[], np.ndarray], float]] = {
    "ring8": (ring8_modes, 0.01),
    "grid25": (grid25_modes, 0.05),
}


def _sample(modes: np.ndarray, sigma: float, n: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(len(modes), size=n)
    points = modes[labels] + sigma * rng.standard_normal((n, 2))
    return points, labels


def make_toy2d(name: str, split: str = "train", *, seed: int = 0) -> ArrayDataset:
    """Sample the mixture ``name`` ("ring8" or "grid25") for ``split``; labels = mode index."""
    check_split(split)
    make_modes, sigma = TOY2D[name]
    modes = make_modes()
    parts = []
    for s in ("train", "val") if split == "all" else (split,):
        # SeedSequence needs non-negative entries; fold any int seed into 64 bits.
        rng = np.random.default_rng([seed % 2**64, _SPLIT_CODE[s]])
        parts.append(_sample(modes, sigma, N_TRAIN if s == "train" else N_VAL, rng))
    points = np.concatenate([p for p, _ in parts])
    labels = np.concatenate([lab for _, lab in parts])
    return ArrayDataset(
        x=torch.from_numpy(points.astype(np.float32)),
        y=torch.from_numpy(labels.astype(np.int64)),
        kind="points",
        name=name,
        n_classes=len(modes),
        low=float(points.min()),
        high=float(points.max()),
        modes=torch.from_numpy(modes.astype(np.float32)),
        sigma=sigma,
        split=split,
    )
