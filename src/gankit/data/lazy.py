"""Images read per batch, in the loader's worker processes, instead of all up front.

A ``LazyImages`` holds only file names (or archive offsets) and labels; its ``__getitems__``
reads a batch of items and returns them stacked as uint8 ``(N, C, H, W)``, the same tensor an
in-memory ``ArrayDataset`` would give for those indices. So memory is bounded by what the loader
holds in flight, not by the data set, and the epoch order (the sampler's) is untouched.

A file that turns out to be corrupt is not raised from inside a worker (torch would wrap the
error in a traceback); the batch comes back as a ``CorruptBatch`` naming the files, and the
loader in the main process decides: stop with that name (exit 2), or skip and count them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from gankit.data.datasets import ArrayDataset, denormalize, to_unit
from gankit.data.images import read_image
from gankit.errors import GankitError

__all__ = ["CorruptBatch", "FolderReader", "ImageReader", "LazyImages"]


class ImageReader(Protocol):
    """Reads item ``i`` of a source as uint8 ``(C, H, W)``; raises GankitError naming it."""

    def read(self, i: int) -> np.ndarray: ...


@dataclass
class CorruptBatch:
    """A batch in which some items could not be read: the good ones and why the others not."""

    batch: Any
    errors: list[str] = field(default_factory=list)

    def name_skipped(self, seen: set[str]) -> None:
        """Print ``skipping: ...`` on stderr for each error not in ``seen``, and add it there
        (each unreadable file is named once, however often it is read)."""
        for msg in self.errors:
            if msg not in seen:
                seen.add(msg)
                print(f"skipping: {msg}", file=sys.stderr)


def _chw(a: np.ndarray, channels: int) -> np.ndarray:
    return cast(np.ndarray, a.reshape(a.shape[0], a.shape[1], channels).transpose(2, 0, 1))


class FolderReader:
    """Decodes image files with Pillow: convert to ``mode``, center-crop and resize."""

    def __init__(self, files: Sequence[Path], mode: str, image_size: int | None) -> None:
        self.files = [str(f) for f in files]  # plain strings pickle small for spawned workers
        self.mode = mode
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> np.ndarray:
        a = read_image(Path(self.files[i]), self.mode, self.image_size)
        return _chw(a, 1 if self.mode == "L" else 3)


class LazyImages(Dataset[Any]):
    """An image data set whose pixels are read per batch by ``reader``.

    It looks like an ``ArrayDataset`` to the rest of gankit (``kind``, ``shape``, ``y``,
    ``n_classes``, ``low``/``high``, ``denormalize``, ``unit``) but has no ``x``: use
    ``load(indices)`` for an in-memory subset (what evaluators score against).
    """

    kind = "image"
    modes = None
    sigma = None

    def __init__(self, reader: ImageReader, shape: tuple[int, int, int], *,
                 labels: np.ndarray | None = None, name: str = "", n_classes: int = 0,
                 split: str = "all", low: float = 0.0, high: float = 255.0) -> None:
        self.reader = reader
        self._shape = tuple(shape)
        self._n = len(reader)  # type: ignore[arg-type]
        self.y = None if labels is None else torch.as_tensor(labels, dtype=torch.int64)
        if self.y is not None and len(self.y) != self._n:
            raise GankitError(f"{len(self.y)} labels for {self._n} images")
        self.name, self.n_classes, self.split = name, n_classes, split
        self.low, self.high = low, high
        #: ``load`` leaves out unreadable items (each named once on stderr) instead of raising;
        #: what ``--skip-corrupt`` sets, so the evaluator reads its real images as training does
        self.skip_corrupt = False
        self._skipped: set[str] = set()

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one image, e.g. ``(3, 64, 64)``."""
        return self._shape

    def __len__(self) -> int:
        return self._n

    def __getitems__(self, indices: Sequence[int]) -> Any:
        """The images at ``indices`` stacked as uint8 (and their labels), or a CorruptBatch."""
        idx = [int(i) for i in indices]
        x = np.empty((len(idx), *self._shape), dtype=np.uint8)
        keep: list[int] = []
        errors: list[str] = []
        for k, i in enumerate(idx):
            try:
                x[k] = self.reader.read(i)
                keep.append(k)
            except GankitError as exc:
                errors.append(str(exc))
        batch = self._batch(torch.from_numpy(x), idx)
        if not errors:
            return batch
        good = torch.as_tensor(keep, dtype=torch.int64)
        part = batch[good] if isinstance(batch, Tensor) else (batch[0][good], batch[1][good])
        return CorruptBatch(part if keep else None, errors)

    def _batch(self, x: Tensor, idx: list[int]) -> Tensor | tuple[Tensor, Tensor]:
        if self.y is None:
            return x
        return x, self.y[torch.as_tensor(idx, dtype=torch.int64)]

    def __getitem__(self, i: int) -> Tensor | tuple[Tensor, Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(self.reader.read(int(i))))
        return x if self.y is None else (x, self.y[int(i)])

    def load(self, indices: Sequence[int] | Tensor | None = None) -> ArrayDataset:
        """The items at ``indices`` (all when None) read now into an in-memory ArrayDataset;
        an unreadable one raises GankitError naming it, or with ``skip_corrupt`` is left out."""
        idx = list(range(self._n)) if indices is None else [int(i) for i in indices]
        x = torch.empty((len(idx), *self._shape), dtype=torch.uint8)
        y = None if self.y is None else torch.empty(len(idx), dtype=torch.int64)
        filled = 0
        for start in range(0, len(idx), 256):
            part = self.__getitems__(idx[start:start + 256])
            if isinstance(part, CorruptBatch):
                if not self.skip_corrupt:
                    raise GankitError(part.errors[0])
                part.name_skipped(self._skipped)
                if part.batch is None:
                    continue
                part = part.batch
            images = part if y is None else part[0]
            x[filled:filled + len(images)] = images
            if y is not None:
                y[filled:filled + len(images)] = part[1]
            filled += len(images)
        return ArrayDataset(x=x[:filled], y=None if y is None else y[:filled], kind="image",
                            name=self.name, n_classes=self.n_classes, low=self.low,
                            high=self.high, split=self.split)

    def unit(self, index: Any = slice(None)) -> Tensor:
        """Items ``index`` (a slice or indices) as float32 in [-1, 1]."""
        positions = range(self._n)[index] if isinstance(index, slice) else index
        return to_unit(self.load(positions).x)

    def denormalize(self, t: Tensor | np.ndarray) -> np.ndarray:
        """Map [-1, 1] back to 0..255 (clipped), as float32 numpy."""
        return denormalize(t, "image", self.low, self.high)

    def __repr__(self) -> str:
        labels = f", {self.n_classes} classes" if self.y is not None else ""
        return (f"LazyImages({self.name!r}, split={self.split!r}, {len(self)} x {self.shape}, "
                f"read by {type(self.reader).__name__}{labels})")


def process_local(obj: Any, attr: str, opener: Any) -> Any:
    """``obj.<attr>`` opened once per process: handles must not be shared by forked workers."""
    pid = os.getpid()
    cached = obj.__dict__.get(attr)
    if cached is None or cached[0] != pid:
        cached = (pid, opener())
        obj.__dict__[attr] = cached
    return cached[1]
