"""The in-memory dataset every gankit data source returns, and ``load_dataset`` to pick one.

Everything gankit trains on fits in memory (digits, 2-D mixtures, image folders of a few
thousand files, MNIST), so a dataset is two tensors. Holding them whole lets a loader fetch a
batch with one indexing op instead of one Python call per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from gankit.errors import GankitError

__all__ = ["SPLITS", "ArrayDataset", "load_dataset"]

SPLITS = ("train", "val", "all")

# The held-out split of folder / npz data must not move when the run seed changes, or two runs
# would be scored on different validation images; so it has its own constant seed.
HOLDOUT_SEED = 20240607
HOLDOUT_FRACTION = 0.1

_VALID_SPECS = ("'digits', 'shapes32', 'ring8', 'grid25', 'folder:PATH', 'npz:PATH' or "
                "'mnist-idx:DIR'")


@dataclass(eq=False, repr=False)
class ArrayDataset(Dataset):
    """A whole dataset held as tensors.

    ``x`` is float32: images ``(N, C, H, W)`` scaled to [-1, 1], or 2-D points ``(N, 2)`` in raw
    coordinates. ``y`` holds int64 labels or is None. ``low``/``high`` are the original value
    range of images (0..16 for digits, 0..255 for 8-bit images) that ``denormalize`` maps back
    to. ``modes``/``sigma`` describe generated Gaussian mixtures.

    Indexing one sample gives ``x[i]`` or ``(x[i], y[i])``. ``__getitems__`` (what the torch
    DataLoader calls with a whole batch of indices when the dataset has it) returns the batch
    *already stacked*, so pair it with ``collate_fn=gankit.data.collate_batched``, as
    ``make_loader`` does; torch's default collate expects a list of samples instead.
    """

    x: Tensor
    y: Tensor | None = None
    kind: Literal["image", "points"] = "image"
    name: str = ""
    n_classes: int = 0
    low: float = -1.0
    high: float = 1.0
    modes: Tensor | None = None
    sigma: float | None = None
    split: str = "all"

    def __post_init__(self) -> None:
        if self.kind not in ("image", "points"):
            raise ValueError(f"kind must be 'image' or 'points', not {self.kind!r}")
        want_dim = 4 if self.kind == "image" else 2
        if self.x.dim() != want_dim:
            raise ValueError(f"{self.kind} data needs {want_dim} dims, got {tuple(self.x.shape)}")
        self.x = self.x.to(torch.float32).contiguous()
        if self.y is not None:
            if self.y.shape != (len(self.x),):
                raise ValueError(f"y has shape {tuple(self.y.shape)}, expected ({len(self.x)},)")
            self.y = self.y.to(torch.int64).contiguous()

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(1, 8, 8)`` or ``(2,)``."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> Tensor | tuple[Tensor, Tensor]:
        if self.y is None:
            return self.x[i]
        return self.x[i], self.y[i]

    def __getitems__(self, indices: Sequence[int]) -> Tensor | tuple[Tensor, Tensor]:
        """The samples at ``indices`` as one batched tensor (or ``(x, y)`` pair of them)."""
        # One advanced-indexing op per tensor; a LongTensor index is ~3x cheaper than a list.
        idx = torch.as_tensor(indices, dtype=torch.int64)
        if self.y is None:
            return self.x[idx]
        return self.x[idx], self.y[idx]

    def denormalize(self, t: Tensor | np.ndarray) -> np.ndarray:
        """Map model-space values back to the data's own range, as a float32 numpy array.

        Images go from [-1, 1] to ``[low, high]`` (clipped, since generators overshoot);
        points are returned unchanged.
        """
        a = t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)
        a = a.astype(np.float32, copy=True)
        if self.kind == "points":
            return a
        a = (a + 1.0) * 0.5 * (self.high - self.low) + self.low
        return np.clip(a, self.low, self.high, out=a)

    def __repr__(self) -> str:
        labels = f", {self.n_classes} classes" if self.y is not None else ""
        return (
            f"ArrayDataset({self.name!r}, split={self.split!r}, {len(self)} x "
            f"{self.shape}, kind={self.kind!r}{labels})"
        )


def load_dataset(
    spec: str, split: str = "train", *, image_size: int | None = None, seed: int = 0
) -> ArrayDataset:
    """Load the dataset named by ``spec``.

    Specs: ``"digits"`` (sklearn's embedded 8x8 digits), ``"shapes32"`` (generated 32x32 RGB
    shapes, 16 classes), ``"ring8"`` / ``"grid25"`` (generated
    2-D Gaussian mixtures; ``seed`` picks the sample), ``"folder:PATH"`` (image files),
    ``"npz:PATH"`` and ``"mnist-idx:DIR"``. ``split`` is ``"train"``, ``"val"`` (a fixed
    held-out part that does not depend on ``seed``) or ``"all"``. ``image_size=S`` makes
    images S x S (center crop, then resize); it does not apply to point data.
    """
    # The source modules import ArrayDataset from here, so they are imported lazily.
    from gankit.data.digits import load_digits
    from gankit.data.files import load_folder, load_mnist_idx, load_npz
    from gankit.data.shapes import load_shapes32
    from gankit.data.toy2d import TOY2D, make_toy2d

    if not isinstance(spec, str):
        raise GankitError(f"data spec must be a string such as {_VALID_SPECS}, not {spec!r}")
    check_split(split)
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size < 1):
        raise GankitError(f"image size {image_size!r} is not a positive integer; pass e.g. 32")

    kind, sep, path = spec.partition(":")
    if sep and kind in ("folder", "npz", "mnist-idx"):
        if not path:
            raise GankitError(f"data spec {spec!r} has no path after '{kind}:'; "
                              f"write it as '{kind}:PATH'")
        if kind == "folder":
            return load_folder(path, split, image_size=image_size)
        if kind == "npz":
            return load_npz(path, split, image_size=image_size)
        return load_mnist_idx(path, split, image_size=image_size)
    if spec == "digits":
        return load_digits(split, image_size=image_size)
    if spec == "shapes32":
        return load_shapes32(split, image_size=image_size)
    if spec in TOY2D:
        if image_size is not None:
            raise GankitError(f"image size {image_size} does not apply to the 2-D point data "
                              f"{spec!r}; leave the image size unset")
        return make_toy2d(spec, split, seed=seed)
    raise GankitError(f"unknown data spec {spec!r}; use one of {_VALID_SPECS}")


def check_split(split: str) -> None:
    """Raise GankitError unless ``split`` is one of ``SPLITS``."""
    if split not in SPLITS:
        raise GankitError(f"unknown split {split!r}; use 'train', 'val' or 'all'")


def holdout_indices(n: int, split: str, what: str) -> np.ndarray:
    """Indices of ``split`` for ``n`` items: the last 10% (at least 1) of a fixed permutation.

    The permutation uses ``HOLDOUT_SEED``, never the run seed, so "val" is always the same
    items. Indices come back sorted so the data keeps its file order.
    """
    check_split(split)
    if split == "all":
        return np.arange(n)
    if n < 2:
        raise GankitError(f"{what} has only {n} item(s), too few to hold out a validation "
                          f"split; add more data or use split 'all'")
    n_val = max(1, int(n * HOLDOUT_FRACTION))
    perm = np.random.default_rng(HOLDOUT_SEED).permutation(n)
    part = perm[n - n_val:] if split == "val" else perm[: n - n_val]
    return np.sort(part)


def uint8_to_unit(a: np.ndarray) -> Tensor:
    """uint8 array -> float32 tensor in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(a)).to(torch.float32).div_(127.5).sub_(1.0)


def range_to_unit(a: np.ndarray, low: float, high: float) -> Tensor:
    """Numeric array with values in [low, high] -> float32 tensor in [-1, 1]."""
    t = torch.from_numpy(np.asarray(a, dtype=np.float32).copy())
    if high == low:  # constant data: nothing to scale, call it the middle of the range
        return torch.zeros_like(t)
    return t.sub_(low).mul_(2.0 / (high - low)).sub_(1.0)


def resize_images(x: Tensor, size: int | None) -> Tensor:
    """Center-crop ``(N, C, H, W)`` images to a square and resize them to ``size``.

    Antialiased bilinear: a convex combination of pixels, so values stay inside [-1, 1].
    Returns ``x`` itself when nothing changes.
    """
    if size is None:
        return x
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = x[..., top:top + s, left:left + s]
    if s == size:
        return x.contiguous()
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).clamp_(-1.0, 1.0)
