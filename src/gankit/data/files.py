"""Datasets read from the user's files: image folders, ``.npz`` arrays and MNIST idx files.

Folder and npz data get a fixed held-out split (see ``holdout_indices``): the last 10% (at
least one item, at most 10,000) of a permutation with a constant seed is "val", the rest
"train". MNIST idx data has its own: the ``train-*`` files are "train", the ``t10k-*`` files
"val".
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image

from gankit.data.datasets import (
    LAZY_THRESHOLD_BYTES,
    ArrayDataset,
    check_split,
    holdout_indices,
    range_to_unit,
    resize_images,
)
from gankit.data.images import GRAY_MODES, IMAGE_SUFFIXES, PIL_ERRORS, read_image
from gankit.data.lazy import FolderReader, LazyImages
from gankit.errors import GankitError

__all__ = ["load_folder", "load_mnist_idx", "load_npz", "scan_folder"]



# ---------------------------------------------------------------------------------- folder


def _find_images(root: Path) -> list[Path]:
    # Hidden files and folders (.ipynb_checkpoints, macOS "._x.png" forks) are never data.
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def load_folder(path: str | Path, split: str = "train", *,
                image_size: int | None = None, mode: str = "auto") -> Any:
    """Load every image under ``path`` (recursively: png, jpg, jpeg, bmp, gif, webp).

    Channels: all images become grayscale ("L") if every one is grayscale, else RGB (alpha is
    dropped). Size: without ``image_size`` all images must already have one size; with
    ``image_size=S`` each is center-cropped to a square and resized to S x S with Lanczos.
    Labels: if the images sit in subfolders, the sorted subfolder names are the classes.
    Pixels are kept as uint8 0..255. ``mode`` "memory" decodes every file now into an
    ``ArrayDataset``; "lazy" returns a ``LazyImages`` that decodes per batch (in the loader's
    workers); "auto" is lazy when the decoded pixels would exceed ``LAZY_THRESHOLD_BYTES``.
    """
    scan = scan_folder(path, split, image_size=image_size)
    files, labels, classes, idx, color, (h, w) = scan
    channels = 1 if color == "L" else 3
    name = Path(path).expanduser().name or str(path)
    n_bytes = len(idx) * channels * h * w
    if mode == "lazy" or (mode == "auto" and n_bytes > LAZY_THRESHOLD_BYTES):
        return LazyImages(
            FolderReader([files[i] for i in idx], color, image_size), (channels, h, w),
            labels=None if labels is None else labels[idx], name=name,
            n_classes=len(classes), split=split)
    # Decoded straight into (N, C, H, W): no second copy of the set for a layout change.
    pixels = np.empty((len(idx), channels, h, w), dtype=np.uint8)
    for out, i in enumerate(idx):
        pixels[out] = read_image(files[i], color, image_size).reshape(h, w, channels).transpose(
            2, 0, 1)
    x = torch.from_numpy(pixels)
    return ArrayDataset(
        x=x,
        y=None if labels is None else torch.from_numpy(labels[idx]),
        kind="image",
        name=name,
        n_classes=len(classes),
        low=0.0,
        high=255.0,
        split=split,
    )


def scan_folder(path: str | Path, split: str = "all", *, image_size: int | None = None,
                ) -> tuple[list[Path], np.ndarray | None, list[str], np.ndarray, str,
                           tuple[int, int]]:
    """Check a folder from the image headers alone, decoding no pixels.

    Returns ``(files, labels, classes, split_indices, mode, (height, width))`` where files
    are every image in sorted order, labels index ``classes`` (or are None), ``mode`` is
    "L" or "RGB" and the size is that of the images as they will be loaded.
    """
    check_split(split)
    root = Path(path).expanduser()
    if not root.exists():
        raise GankitError(f"image folder '{root}' does not exist; check the path in folder:PATH")
    if not root.is_dir():
        raise GankitError(f"'{root}' is not a folder; folder:PATH needs a directory of images "
                          f"(use npz:PATH for a .npz file)")
    files = _find_images(root)
    if not files:
        raise GankitError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under '{root}'; "
                          f"point folder:PATH at a folder that contains image files")

    # Pass 1 reads headers only: it decides the channel mode and checks sizes before any
    # pixels are decoded, and catches files that are not images at all.
    modes, sizes = [], []
    for f in files:
        try:
            with Image.open(f) as im:
                modes.append(im.mode)
                sizes.append(im.size)
        except PIL_ERRORS as e:
            raise GankitError(f"cannot read image '{f}' ({e}); delete or replace the file") from e
    mode = "L" if all(m in GRAY_MODES for m in modes) else "RGB"
    if image_size is None:
        for f, size in zip(files, sizes, strict=True):
            if size != sizes[0]:
                raise GankitError(
                    f"images have different sizes ('{files[0]}' is {sizes[0][0]}x{sizes[0][1]}, "
                    f"'{f}' is {size[0]}x{size[1]}); pass an image size to center-crop and "
                    f"resize them all to one square size.")

    labels, classes = _folder_labels(root, files)
    idx = holdout_indices(len(files), split, f"image folder '{root}'")
    w, h = (image_size, image_size) if image_size is not None else sizes[0]
    return files, labels, classes, idx, mode, (h, w)


def _folder_labels(root: Path, files: list[Path]) -> tuple[np.ndarray | None, list[str]]:
    tops = [f.relative_to(root).parts for f in files]
    nested = [len(parts) > 1 for parts in tops]
    if not any(nested):
        return None, []
    if not all(nested):
        loose = files[nested.index(False)]
        raise GankitError(
            f"'{root}' has images both in class subfolders and at its top level (e.g. "
            f"'{loose.name}'); move top-level images into a subfolder or point at one subfolder")
    classes = sorted({parts[0] for parts in tops})
    index = {c: k for k, c in enumerate(classes)}
    return np.array([index[parts[0]] for parts in tops], dtype=np.int64), classes


# ------------------------------------------------------------------------------------- npz


def load_npz(path: str | Path, split: str = "train", *,
             image_size: int | None = None) -> ArrayDataset:
    """Load array ``x`` and optional int labels ``y`` from a ``.npz``.

    A file without ``x`` may hold one other array (besides ``y``), which is the data; with
    several, none is guessed: the error names them.

    ``x`` may be images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` with C in {1, 3}
    (channel-last when only the last axis is 1 or 3, channel-first otherwise), or points
    ``(N, 2)``. uint8 images are kept as uint8 0..255; any other numeric images are scaled from
    their own min..max to [-1, 1] (``low``/``high`` keep that range). Points stay raw.
    """
    check_split(split)
    f = Path(path).expanduser()
    if not f.is_file():
        what = "is a folder, not a file" if f.is_dir() else "does not exist"
        raise GankitError(f"npz file '{f}' {what}; check the path in npz:PATH")
    x_name, x, y = _read_npz(f)
    desc = f"array '{x_name}' in '{f}'"
    if x.dtype.kind not in "uif":
        raise GankitError(f"{desc} has dtype {x.dtype}; save numbers (uint8 images or floats)")
    if x.ndim == 0:
        raise GankitError(f"{desc} is a single number; save an array of samples")
    if len(x) == 0:
        raise GankitError(f"{desc} is empty; it needs at least one sample")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise GankitError(f"{desc} contains NaN or Inf values; remove or replace them")
    labels = _npz_labels(y, len(x), f)

    if x.ndim == 2 and x.shape[1] == 2:
        idx = holdout_indices(len(x), split, desc)
        if image_size is not None:
            raise GankitError(f"image size {image_size} does not apply to the 2-D points in "
                              f"{desc}; leave the image size unset")
        pts = x[idx].astype(np.float32)
        return ArrayDataset(
            x=torch.from_numpy(pts), y=None if labels is None else torch.from_numpy(labels[idx]),
            kind="points", name=f.stem, n_classes=_n_classes(labels),
            low=float(x.min()), high=float(x.max()), split=split)

    nchw = _to_nchw(x, desc)
    if x.dtype == np.uint8:
        low, high = 0.0, 255.0
    else:
        # The range of the whole file, not of the split, so train and val share one scale.
        low, high = float(x.min()), float(x.max())
    idx = holdout_indices(len(x), split, desc)
    part = nchw[idx]
    t = (torch.from_numpy(np.ascontiguousarray(part)) if x.dtype == np.uint8
         else range_to_unit(part, low, high))
    return ArrayDataset(
        x=resize_images(t, image_size),
        y=None if labels is None else torch.from_numpy(labels[idx]),
        kind="image", name=f.stem, n_classes=_n_classes(labels), low=low, high=high,
        split=split)


_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _read_npz(f: Path) -> tuple[str, np.ndarray, np.ndarray | None]:
    # Opened here rather than by np.load, which leaks its handle when the zip is corrupt.
    with open(f, "rb") as fh:
        try:
            npz = np.load(fh, allow_pickle=False)
        except _NPZ_ERRORS as e:
            raise GankitError(f"cannot read '{f}' as a .npz archive ({e}); save the data with "
                              f"numpy.savez") from e
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise GankitError(f"'{f}' is a single .npy array, not a .npz archive; save it with "
                              f"numpy.savez('{f.stem}.npz', x=array)")
        with npz:
            names = list(npz.files)
            if not names:
                raise GankitError(f"npz file '{f}' holds no arrays; save the data as array 'x'")
            others = [n for n in names if n != "y"]
            if not others:
                raise GankitError(f"npz file '{f}' holds only labels 'y'; save the data as "
                                  f"array 'x'")
            if "x" not in names and len(others) > 1:
                found = ", ".join(f"'{n}'" for n in names)
                raise GankitError(f"npz file '{f}' holds the arrays {found} but none named 'x'; "
                                  f"save the data as array 'x' (and int labels as 'y')")
            x_name = "x" if "x" in names else others[0]
            try:
                x = npz[x_name]
                y = npz["y"] if "y" in names else None
            except _NPZ_ERRORS as e:
                raise GankitError(f"cannot read the arrays in '{f}' ({e}); save the data again "
                                  f"with numpy.savez") from e
    if not isinstance(x, np.ndarray) or not (y is None or isinstance(y, np.ndarray)):
        raise GankitError(f"'{f}' is a zip archive but not a numpy .npz; save the data with "
                          f"numpy.savez")
    return x_name, x, y


def _to_nchw(x: np.ndarray, desc: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
        if first:  # also when both could be channels: torch's layout wins the tie
            return x
        if last:
            return cast(np.ndarray, x.transpose(0, 3, 1, 2))
    raise GankitError(
        f"{desc} has shape {x.shape}; use (N, H, W), (N, H, W, C) or (N, C, H, W) images with "
        f"C = 1 or 3, or (N, 2) points")


def _npz_labels(y: np.ndarray | None, n: int, f: Path) -> np.ndarray | None:
    if y is None:
        return None
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise GankitError(f"labels 'y' in '{f}' have shape {y.shape} and dtype {y.dtype}; "
                          f"save them as a 1-D integer array")
    if len(y) != n:
        raise GankitError(f"'{f}' has {len(y)} labels 'y' for {n} samples; save one label per "
                          f"sample")
    if n and y.min() < 0:
        raise GankitError(f"labels 'y' in '{f}' include {y.min()}; use class indices 0, 1, 2...")
    return y.astype(np.int64)


def _n_classes(labels: np.ndarray | None) -> int:
    return 0 if labels is None else int(labels.max()) + 1


# ------------------------------------------------------------------------------- mnist idx

_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # ubyte data, 3 dims / 1 dim
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist_idx(path: str | Path, split: str = "train", *,
                   image_size: int | None = None) -> ArrayDataset:
    """Load MNIST-format idx files (each may be gzipped) from the folder ``path``.

    "train" reads ``train-images-idx3-ubyte`` + ``train-labels-idx1-ubyte``, "val" the
    ``t10k-*`` pair, "all" both. Images become ``(N, 1, H, W)`` uint8 0..255.
    """
    check_split(split)
    root = Path(path).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise GankitError(f"MNIST folder '{root}' {what}; mnist-idx:DIR needs the folder that "
                          f"holds the idx files")
    xs, ys = [], []
    for s in ("train", "val") if split == "all" else (split,):
        img_name, lab_name = _IDX_FILES[s]
        images = _read_idx(_find_idx(root, img_name), "images")
        labels = _read_idx(_find_idx(root, lab_name), "labels")
        if len(images) != len(labels):
            raise GankitError(f"'{img_name}' has {len(images)} images but '{lab_name}' has "
                              f"{len(labels)} labels in '{root}'; use matching idx files")
        xs.append(images)
        ys.append(labels)
    x = np.concatenate(xs)[:, None]
    y = np.concatenate(ys).astype(np.int64)
    return ArrayDataset(
        x=resize_images(torch.from_numpy(np.ascontiguousarray(x)), image_size),
        y=torch.from_numpy(y), kind="image",
        name=root.name or "mnist", n_classes=int(y.max()) + 1 if len(y) else 0,
        low=0.0, high=255.0, split=split)


def _find_idx(root: Path, name: str) -> Path:
    # Some mirrors write "train-images.idx3-ubyte"; accept that spelling too.
    alt = name.replace("-idx", ".idx")
    for cand in (name, name + ".gz", alt, alt + ".gz"):
        if (root / cand).is_file():
            return root / cand
    raise GankitError(f"missing MNIST file '{name}' (or '{name}.gz') in '{root}'; put the four "
                      f"idx files there")


def _read_idx(f: Path, what: str) -> np.ndarray:
    try:
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
    except (OSError, EOFError) as e:
        raise GankitError(f"cannot read '{f}' ({e}); replace the file") from e
    magic = _IDX_MAGIC[what]
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise GankitError(f"'{f}' is truncated ({len(data)} bytes, shorter than its header); "
                          f"replace the file")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise GankitError(f"'{f}' has magic number 0x{found:08x}, not 0x{magic:08x} for idx "
                          f"{what}; check that it is the right MNIST file")
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise GankitError(f"'{f}' is {state} ({len(data)} bytes, header {tuple(dims)} needs "
                          f"{expected}); replace the file")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(tuple(dims))
