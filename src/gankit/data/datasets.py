"""The data types every source shares: ``DataSource`` (what a source gives), the in-memory
``ArrayDataset``, and the helpers the sources use (splits, value ranges, resizing).

Small data (digits, 2-D mixtures, MNIST, image folders up to ``LAZY_THRESHOLD_BYTES``) is two
tensors in memory: a loader fetches a batch with one indexing op instead of one Python call per
sample. 8-bit images stay uint8 there (a quarter of float32) and become float in [-1, 1] per
batch, on the training device (``to_unit``); larger folders and prepared archives are read per
batch by ``gankit.data.lazy``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from gankit.errors import GankitError
from gankit.training.updater import map_tensors

__all__ = ["DATA_MODES", "LAZY_THRESHOLD_BYTES", "SPLITS", "ArrayDataset", "DataSource",
           "take_fraction", "to_unit"]

SPLITS = ("train", "val", "all")

# The held-out split of folder / npz data must not move when the run seed changes, or two runs
# would be scored on different validation images; so it has its own constant seed.
HOLDOUT_SEED = 20240607
HOLDOUT_FRACTION = 0.1
# Past 100k items 10% is more than any metric needs, and costs memory and evaluation time.
HOLDOUT_MAX = 10_000

DATA_MODES = ("auto", "memory", "lazy")
# ``folder:`` data whose decoded uint8 pixels would take more than this is read lazily (per
# batch, in the loader's workers) unless ``mode="memory"`` asks otherwise: 1 GiB is e.g. 87k
# RGB images of 64x64, or 5.4k of 256x256.
LAZY_THRESHOLD_BYTES = 1 << 30

class DataSource(Protocol):
    """What every data source gives: an ``ArrayDataset`` in memory or a ``LazyImages`` read
    per batch look the same to the loaders, the evaluators and the recipes.

    ``kind`` is "image" or "points"; ``shape`` that of one sample; ``y`` the int64 labels or
    None; ``low``/``high`` the data's own value range (``denormalize`` maps back to it);
    ``modes``/``sigma`` describe a generated Gaussian mixture (else None). ``__getitems__``
    returns a whole batch already stacked (see ``collate_batched``); ``unit(index)`` gives
    samples as float32 in [-1, 1] (images) or raw coordinates (points); ``load(indices)``
    the samples at ``indices`` (all when None) as an in-memory ``ArrayDataset``.
    """

    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def split(self) -> str: ...
    @property
    def n_classes(self) -> int: ...
    @property
    def low(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def y(self) -> Tensor | None: ...
    @property
    def modes(self) -> Tensor | None: ...
    @property
    def sigma(self) -> float | None: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> Any: ...
    def __getitems__(self, indices: Sequence[int]) -> Any: ...
    def unit(self, index: Any = ...) -> Tensor: ...
    def denormalize(self, t: Tensor | np.ndarray) -> np.ndarray: ...
    def load(self, indices: Sequence[int] | Tensor | None = None) -> ArrayDataset: ...


@dataclass(eq=False, repr=False)
class ArrayDataset(Dataset[Any]):
    """A whole dataset held as tensors.

    ``x`` is images ``(N, C, H, W)``, either uint8 0..255 (8-bit sources: a quarter of the
    memory; ``to_unit`` turns a batch into float in [-1, 1]) or float32 already in [-1, 1], or
    2-D float32 points ``(N, 2)`` in raw coordinates. ``y`` holds int64 labels or is None.
    ``low``/``high`` are the original value range of images (0..16 for digits, 0..255 for
    8-bit images) that ``denormalize`` maps back to. ``modes``/``sigma`` describe generated
    Gaussian mixtures.

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
            raise GankitError(f"kind must be 'image' or 'points', not {self.kind!r}")
        want_dim = 4 if self.kind == "image" else 2
        if self.x.dim() != want_dim:
            raise GankitError(f"{self.kind} data needs {want_dim} dims, got {tuple(self.x.shape)}")
        keep_uint8 = self.kind == "image" and self.x.dtype == torch.uint8
        self.x = (self.x if keep_uint8 else self.x.to(torch.float32)).contiguous()
        if self.y is not None:
            if self.y.shape != (len(self.x),):
                raise GankitError(f"y has shape {tuple(self.y.shape)}, expected ({len(self.x)},)")
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

    def unit(self, index: Any = slice(None)) -> Tensor:
        """``x[index]`` as float32 in [-1, 1] (images) or raw coordinates (points)."""
        return to_unit(self.x[index])

    def load(self, indices: Sequence[int] | Tensor | None = None) -> ArrayDataset:
        """The samples at ``indices`` as an ArrayDataset (``self`` itself when None)."""
        if indices is None:
            return self
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return dataclasses.replace(self, x=self.x[idx], y=None if self.y is None else self.y[idx])

    def denormalize(self, t: Tensor | np.ndarray) -> np.ndarray:
        """Map model-space values back to the data's own range, as a float32 numpy array.

        Images go from [-1, 1] to ``[low, high]`` (clipped, since generators overshoot);
        points are returned unchanged.
        """
        return denormalize(t, self.kind, self.low, self.high)

    def __repr__(self) -> str:
        labels = f", {self.n_classes} classes" if self.y is not None else ""
        return (
            f"ArrayDataset({self.name!r}, split={self.split!r}, {len(self)} x "
            f"{self.shape}, kind={self.kind!r}{labels})"
        )


def to_unit(x: Tensor) -> Tensor:
    """uint8 images 0..255 -> float32 in [-1, 1]; float tensors are returned as they are.

    Called per batch where the batch is used (on the training device, after a 4x smaller
    copy), so no float copy of a whole data set is ever made.
    """
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(127.5).sub_(1.0)
    return x


def batch_to_unit(batch: Any) -> Any:
    """``to_unit`` on every uint8 tensor of a (nested) batch; labels and the rest untouched."""
    return map_tensors(to_unit, batch)


def denormalize(t: Tensor | np.ndarray, kind: str, low: float, high: float) -> np.ndarray:
    """``ArrayDataset.denormalize`` for any data set with that ``kind`` and value range."""
    a = t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)
    a = a.astype(np.float32, copy=True)
    if kind == "points":
        return a
    a = (a + 1.0) * 0.5 * (high - low) + low
    return np.clip(a, low, high, out=a)


def take_fraction(ds: ArrayDataset, fraction: float | None) -> ArrayDataset:
    """A fixed ``fraction`` of ``ds`` (at least one sample), stratified by label when labelled.

    For data-efficiency runs (``--train-fraction``). The subset comes from a constant seed, not
    the run seed, so runs that differ in method or seed train on the same images; it keeps the
    data's order. ``None`` or 1 returns ``ds`` itself.
    """
    if fraction is None or fraction >= 1:
        return ds
    if not 0 < fraction < 1:
        raise GankitError(f"train fraction {fraction!r} is not in (0, 1]; pass e.g. 0.1")
    perm = np.random.default_rng(HOLDOUT_SEED + 1).permutation(len(ds))
    labels = ds.y.numpy() if ds.y is not None else np.zeros(len(ds), dtype=np.int64)
    keep = []
    for c in np.unique(labels):
        in_class = perm[labels[perm] == c]
        keep.append(in_class[: max(1, math.ceil(fraction * len(in_class)))])
    idx = torch.from_numpy(np.sort(np.concatenate(keep)))
    return dataclasses.replace(ds, x=ds.x[idx], y=None if ds.y is None else ds.y[idx])


def check_split(split: str) -> None:
    """Raise GankitError unless ``split`` is one of ``SPLITS``."""
    if split not in SPLITS:
        raise GankitError(f"unknown split {split!r}; use 'train', 'val' or 'all'")


def holdout_indices(n: int, split: str, what: str) -> np.ndarray:
    """Indices of ``split`` for ``n`` items: the last 10% (at least 1, at most ``HOLDOUT_MAX``)
    of a fixed permutation.

    The permutation uses ``HOLDOUT_SEED``, never the run seed, so "val" is always the same
    items. Indices come back sorted so the data keeps its file order.
    """
    check_split(split)
    if split == "all":
        return np.arange(n)
    if n < 2:
        raise GankitError(f"{what} has only {n} item(s), too few to hold out a validation "
                          f"split; add more data or use split 'all'")
    n_val = min(HOLDOUT_MAX, max(1, int(n * HOLDOUT_FRACTION)))
    perm = np.random.default_rng(HOLDOUT_SEED).permutation(n)
    part = perm[n - n_val:] if split == "val" else perm[: n - n_val]
    return np.sort(part)


def uint8_to_unit(a: np.ndarray) -> Tensor:
    """uint8 array -> float32 tensor in [-1, 1]."""
    return to_unit(torch.from_numpy(np.ascontiguousarray(a)))


def range_to_unit(a: np.ndarray, low: float, high: float) -> Tensor:
    """Numeric array with values in [low, high] -> float32 tensor in [-1, 1]."""
    t = torch.from_numpy(np.asarray(a, dtype=np.float32).copy())
    if high == low:  # constant data: nothing to scale, call it the middle of the range
        return torch.zeros_like(t)
    return t.sub_(low).mul_(2.0 / (high - low)).sub_(1.0)


def resize_images(x: Tensor, size: int | None) -> Tensor:
    """Center-crop ``(N, C, H, W)`` images to a square and resize them to ``size``.

    Antialiased bilinear: a convex combination of pixels, so values stay inside [-1, 1]
    (0..255 for uint8 images, which are resized in float and rounded back to uint8).
    Returns ``x`` itself when nothing changes.
    """
    if size is None:
        return x
    if x.dtype == torch.uint8:
        h, w = x.shape[-2:]
        if min(h, w) == size and h == w:
            return x
        out = torch.empty((*x.shape[:-2], size, size), dtype=torch.uint8)
        for start in range(0, len(x), 4096):  # bounded float scratch for large sets
            part = resize_images(x[start:start + 4096].float().div_(127.5).sub_(1.0), size)
            out[start:start + 4096] = part.add_(1.0).mul_(127.5).round_().to(torch.uint8)
        return out
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = x[..., top:top + s, left:left + s]
    if s == size:
        return x.contiguous()
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).clamp_(-1.0, 1.0)
