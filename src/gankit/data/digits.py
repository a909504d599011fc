"""scikit-learn's 8x8 handwritten digits: embedded in the wheel, so gankit never downloads.

1,797 grayscale images, values 0..16, labels 0..9. The held-out split is fixed: a permutation
seeded with ``DIGITS_SPLIT_SEED`` (never the run seed) and, in its order, the first 30 images
of every digit form "val" (300 images, exactly balanced); the other 1,497 are "train".
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from gankit.data.datasets import ArrayDataset, check_split, range_to_unit, resize_images

__all__ = ["DIGITS_SPLIT_SEED", "DIGITS_VAL_PER_CLASS", "load_digits"]

DIGITS_SPLIT_SEED = 1797
DIGITS_VAL_PER_CLASS = 30


@cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits  # sklearn is slow to import

    bunch = sk_load_digits()
    images = bunch.images.astype(np.float32)  # (1797, 8, 8), 0..16
    labels = bunch.target.astype(np.int64)
    images.flags.writeable = False  # shared by every call through the cache
    labels.flags.writeable = False
    return images, labels


def digits_split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Sorted indices of ``split`` ("train", "val" or "all") for the digits labels."""
    check_split(split)
    if split == "all":
        return np.arange(len(labels))
    perm = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    is_val = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        in_class = perm[labels[perm] == c]  # this class, in permutation order
        is_val[in_class[:DIGITS_VAL_PER_CLASS]] = True
    return np.flatnonzero(is_val if split == "val" else ~is_val)


def load_digits(split: str = "train", *, image_size: int | None = None) -> ArrayDataset:
    """The digits as ``(N, 1, 8, 8)`` images in [-1, 1] (or ``image_size`` square), labelled."""
    images, labels = _digits_arrays()
    idx = digits_split_indices(labels, split)
    x = range_to_unit(images[idx][:, None], 0.0, 16.0)
    return ArrayDataset(
        x=resize_images(x, image_size),
        y=torch.from_numpy(labels[idx].copy()),
        kind="image",
        name="digits",
        n_classes=10,
        low=0.0,
        high=16.0,
        split=split,
    )
