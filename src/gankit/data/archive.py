"""Prepared archives: an image folder decoded once into uint8 shards (or a zip of PNGs).

``prepare_folder`` (what ``gankit prepare`` runs) decodes, center-crops and resizes every image
of a folder in parallel and writes one archive; training then reads raw pixels instead of
decoding files. Two layouts:

- ``shards`` (the default, chosen by ``benchmarks/data.py``): a folder holding ``index.json``
  and ``shard-NNNNN.npy`` files of uint8 ``(n, C, H, W)`` images. An item is one ``pread`` of
  C*H*W bytes: no decoding, no memory map (so resident memory does not grow with the pages an
  epoch touches).
- ``zip``: stylegan2-ada's dataset_tool layout, ``NNNNN/imgNNNNNNNN.png`` (stored, not
  deflated) plus ``dataset.json`` with ``{"labels": [[name, class], ...]}`` or ``null``; read
  back by decoding each PNG, which is portable but as slow as a folder of PNGs.

Both are written under a temporary name beside the output and renamed into place at the end,
so an interrupted prepare never leaves a half-written archive under the output's name.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image

from gankit.data.datasets import check_split, holdout_indices
from gankit.data.files import scan_folder
from gankit.data.images import GRAY_MODES, IMAGE_SUFFIXES, PIL_ERRORS, read_image
from gankit.data.lazy import LazyImages, process_local
from gankit.errors import GankitError
from gankit.training.checkpoint import fault_point, publish

__all__ = ["ARCHIVE_FORMATS", "ShardReader", "ZipReader", "load_shards", "load_zip",
           "prepare_folder"]

ARCHIVE_FORMATS = ("shards", "zip")
SHARDS_FORMAT = "gankit-shards"
SHARDS_VERSION = 1
SHARD_BYTES = 1 << 28  # 256 MiB per shard file: few files, none too large to copy


# --------------------------------------------------------------------------------- readers


class ShardReader:
    """Reads items ``positions[i]`` of a shards archive with one ``pread`` each."""

    def __init__(self, root: Path, shards: Sequence[tuple[str, int, int]],
                 shape: tuple[int, int, int], positions: np.ndarray) -> None:
        self.root = str(root)
        self.files = [name for name, _, _ in shards]
        self.offsets = [offset for _, _, offset in shards]  # where each file's pixels start
        self.starts = np.cumsum([0] + [count for _, count, _ in shards])
        self.shape = shape
        self.item_bytes = int(np.prod(shape))
        self.positions = np.asarray(positions, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.positions)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_fds"}

    def _open(self) -> list[int]:
        return [os.open(os.path.join(self.root, f), os.O_RDONLY) for f in self.files]

    def read(self, i: int) -> np.ndarray:
        fds = process_local(self, "_fds", self._open)
        pos = int(self.positions[i])
        s = int(np.searchsorted(self.starts, pos, side="right")) - 1
        offset = self.offsets[s] + (pos - int(self.starts[s])) * self.item_bytes
        data = os.pread(fds[s], self.item_bytes, offset)
        if len(data) != self.item_bytes:
            raise GankitError(f"cannot read item {pos} of '{self.files[s]}' in '{self.root}' "
                              f"(the file is truncated); run gankit prepare again")
        return np.frombuffer(data, dtype=np.uint8).reshape(self.shape)


class ZipReader:
    """Decodes the PNG/JPEG entries ``names`` of a zip file with Pillow."""

    def __init__(self, path: Path, names: Sequence[str], mode: str,
                 image_size: int | None) -> None:
        self.path = str(path)
        self.names = list(names)
        self.mode = mode
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_zip"}

    def read(self, i: int) -> np.ndarray:
        zf = process_local(self, "_zip", lambda: zipfile.ZipFile(self.path))
        name = self.names[i]
        try:
            data = zf.read(name)
        except (OSError, zipfile.BadZipFile, ValueError) as e:
            raise GankitError(f"cannot read '{name}' in '{self.path}' ({e}); rebuild the "
                              f"archive") from e
        a = read_image(io.BytesIO(data), self.mode, self.image_size,
                        what=f"{self.path}:{name}")
        c = 1 if self.mode == "L" else 3
        return cast(np.ndarray, a.reshape(a.shape[0], a.shape[1], c).transpose(2, 0, 1))


# ---------------------------------------------------------------------------------- loading


def load_shards(path: str | Path, split: str = "train", *,
                image_size: int | None = None) -> LazyImages:
    """A shards archive written by ``gankit prepare``, read per batch."""
    check_split(split)
    root = Path(path).expanduser()
    index_file = root / "index.json"
    if not index_file.is_file():
        what = "does not exist" if not root.exists() else "has no index.json"
        raise GankitError(f"shards archive '{root}' {what}; write one with gankit prepare SRC "
                          f"-o '{root}'")
    try:
        index = json.loads(index_file.read_text())
        if index.get("format") != SHARDS_FORMAT:
            raise GankitError(f"format {index.get('format')!r}")
        shape = tuple(int(v) for v in index["shape"])
        shards = [(s["file"], int(s["count"]), int(s["offset"])) for s in index["shards"]]
        count = int(index["count"])
        labels = index.get("labels")
        classes = index.get("classes") or []
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GankitError(f"'{index_file}' is not a gankit shards index ({e}); run gankit "
                          f"prepare again") from e
    if index.get("version") != SHARDS_VERSION:
        raise GankitError(f"'{root}' was written by shards format version "
                          f"{index.get('version')}, this gankit reads version {SHARDS_VERSION}; "
                          f"run gankit prepare again")
    if sum(c for _, c, _ in shards) != count or len(shape) != 3:
        raise GankitError(f"'{index_file}' is inconsistent (shard counts do not add up to "
                          f"{count}); run gankit prepare again")
    if image_size is not None and shape[1:] != (image_size, image_size):
        raise GankitError(f"'{root}' holds {shape[2]}x{shape[1]} images, not {image_size}x"
                          f"{image_size}; leave the image size out or prepare it again at "
                          f"{image_size}x{image_size}", option="image_size")
    for name, n, offset in shards:
        size = (root / name).stat().st_size if (root / name).is_file() else -1
        if size != offset + n * int(np.prod(shape)):
            raise GankitError(f"shard '{root / name}' is missing or has the wrong size; run "
                              f"gankit prepare again")
    idx = holdout_indices(count, split, f"shards archive '{root}'")
    y = None if labels is None else np.asarray(labels, dtype=np.int64)[idx]
    return LazyImages(ShardReader(root, shards, shape, idx), shape,
                      labels=y, name=str(index.get("name") or root.name),
                      n_classes=len(classes), split=split)


def load_zip(path: str | Path, split: str = "train", *,
             image_size: int | None = None) -> LazyImages:
    """A zip of images (stylegan2-ada's dataset_tool layout), decoded per batch.

    Entries are the image files in name order (hidden ones and ``__MACOSX`` skipped); labels
    come from ``dataset.json`` when it has them. Channel and size rules are a folder's.
    """
    check_split(split)
    f = Path(path).expanduser()
    if not f.is_file():
        raise GankitError(f"zip archive '{f}' does not exist; check the path in zip:PATH")
    try:
        zf = zipfile.ZipFile(f)
    except (OSError, zipfile.BadZipFile) as e:
        raise GankitError(f"cannot open '{f}' as a zip archive ({e}); rebuild it") from e
    with zf:
        names = sorted(n for n in zf.namelist()
                       if Path(n).suffix.lower() in IMAGE_SUFFIXES and not n.startswith("__MACOSX")
                       and not any(p.startswith(".") for p in Path(n).parts))
        if not names:
            raise GankitError(f"no images found in zip archive '{f}'; point zip:PATH at a zip "
                              f"of image files")
        labels_by_name = _zip_labels(zf, f)
        modes, sizes = [], []
        for n in names:
            try:
                with zf.open(n) as fh, Image.open(fh) as im:
                    modes.append(im.mode)
                    sizes.append(im.size)
            except (*PIL_ERRORS, zipfile.BadZipFile) as e:
                raise GankitError(f"cannot read image '{f}:{n}' ({e}); rebuild the "
                                  f"archive") from e
    mode = "L" if all(m in GRAY_MODES for m in modes) else "RGB"
    if image_size is None and any(s != sizes[0] for s in sizes):
        k = next(i for i, s in enumerate(sizes) if s != sizes[0])
        raise GankitError(f"images in '{f}' have different sizes ('{names[0]}' is "
                          f"{sizes[0][0]}x{sizes[0][1]}, '{names[k]}' is {sizes[k][0]}x"
                          f"{sizes[k][1]}); pass an image size to resize them all to one "
                          "square size.")
    w, h = (image_size, image_size) if image_size is not None else sizes[0]
    labels = None
    if labels_by_name is not None:
        missing = [n for n in names if n not in labels_by_name]
        if missing:
            raise GankitError(f"dataset.json in '{f}' has no label for '{missing[0]}'; give "
                              f"every image a label or set \"labels\" to null")
        labels = np.array([labels_by_name[n] for n in names], dtype=np.int64)
    idx = holdout_indices(len(names), split, f"zip archive '{f}'")
    shape = (1 if mode == "L" else 3, h, w)
    return LazyImages(ZipReader(f, [names[i] for i in idx], mode, image_size), shape,
                      labels=None if labels is None else labels[idx], name=f.stem,
                      n_classes=0 if labels is None else int(labels.max()) + 1, split=split)


def _zip_labels(zf: zipfile.ZipFile, f: Path) -> dict[str, int] | None:
    if "dataset.json" not in zf.namelist():
        return None
    try:
        meta = json.loads(zf.read("dataset.json"))
        raw = meta.get("labels")
        if raw is None:
            return None
        labels = {str(name): int(label) for name, label in raw}
    except (ValueError, TypeError, AttributeError, zipfile.BadZipFile) as e:
        raise GankitError(f"dataset.json in '{f}' is not {{\"labels\": [[name, class], ...]}} "
                          f"({e}); fix it or remove it") from e
    if labels and min(labels.values()) < 0:
        raise GankitError(f"dataset.json in '{f}' has negative labels; use classes 0, 1, 2...")
    return labels


# ---------------------------------------------------------------------------------- prepare


def _decode(job: tuple[str, str, int | None]) -> np.ndarray | str:
    # Runs in a pool worker; an error comes back as its message, naming the file.
    path, mode, size = job
    try:
        a = read_image(Path(path), mode, size)
    except GankitError as e:
        return str(e)
    c = 1 if mode == "L" else 3
    return np.ascontiguousarray(a.reshape(a.shape[0], a.shape[1], c).transpose(2, 0, 1))


def _decoded(jobs: list[tuple[str, str, int | None]], workers: int) -> Iterator[np.ndarray]:
    if workers <= 1:
        for job in jobs:
            yield _check(_decode(job))
        return
    # fork where there is one: a spawned worker would spend seconds importing torch again.
    # The workers only run Pillow, never torch, so torch's (idle) threads do not matter.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(workers, initializer=_worker_signals) as pool:
        for out in pool.imap(_decode, jobs, chunksize=16):  # imap keeps the file order
            yield _check(out)


def _worker_signals() -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it (and terminates
    # the pool with SIGTERM, which must then simply end the worker).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _check(out: np.ndarray | str) -> np.ndarray:
    if isinstance(out, str):
        raise GankitError(out)
    return out


class _Progress:
    """One status line on stderr, redrawn at most twice a second."""

    def __init__(self, total: int, what: str, enabled: bool = True) -> None:
        self.total, self.what, self.enabled = total, what, enabled
        self.start = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not force and now - self.last < (0.5 if self.tty else 10.0)):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        line = f"{self.what}: {done}/{self.total} images ({rate:.0f}/s)"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def close(self, done: int) -> None:
        self.update(done, force=True)
        if self.enabled and self.tty:
            print(file=sys.stderr)


def prepare_folder(src: str | Path, out: str | Path, *, image_size: int | None = None,
                   workers: int = 1, fmt: str = "shards", progress: bool = True,
                   should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Decode the images under ``src`` once and write them to the archive ``out``.

    The images are those ``folder:SRC`` loads (same order, channels, labels, crop and
    resize), so ``shards:OUT`` / ``zip:OUT`` give the same batches and the same held-out
    split. ``workers`` processes decode in parallel; the output does not depend on their
    number. ``should_stop`` is polled between images; when it returns True the prepare
    stops with a GankitError and no archive. Returns a summary (count, shape, bytes).
    """
    if fmt not in ARCHIVE_FORMATS:
        raise GankitError(f"unknown archive format {fmt!r}; use 'shards' or 'zip'")
    out = Path(out).expanduser()
    if out.exists():
        raise GankitError(f"'{out}' already exists; choose another output or delete it first")
    if not out.parent.is_dir():
        raise GankitError(f"the folder of '{out}' does not exist; create it first")
    if not Path(src).expanduser().is_dir():
        what = "is not a folder" if Path(src).expanduser().exists() else "does not exist"
        raise GankitError(f"source '{src}' {what}; gankit prepare SRC needs a folder of images")
    files, labels, classes, _, mode, (h, w) = scan_folder(src, "all", image_size=image_size)
    shape = (1 if mode == "L" else 3, h, w)
    root = Path(src).expanduser()
    _remove_stale_partials(out)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    jobs = [(str(f), mode, image_size) for f in files]
    bar = _Progress(len(files), f"prepare {out.name}", progress)
    try:
        images = _decoded(jobs, workers)
        names = [f.relative_to(root).as_posix() for f in files]
        meta = {"name": root.name, "classes": classes, "files": names,
                "labels": None if labels is None else labels.tolist()}
        writer = _write_shards if fmt == "shards" else _write_zip
        fault_point("open", out)
        n_bytes = writer(tmp, images, len(files), shape, meta, bar, should_stop,
                         lambda: fault_point("write", out))
        bar.close(len(files))
        publish(tmp, out)  # the archive appears under its name only when complete, on disk
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
    return {"count": len(files), "shape": shape, "bytes": n_bytes, "format": fmt,
            "classes": len(classes)}


def _remove_stale_partials(out: Path) -> None:
    # Left by a prepare that was killed (SIGKILL gives no chance to clean up).
    for p in out.parent.glob(f".{out.name}.partial-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _poll(should_stop: Callable[[], bool] | None, state: list[float]) -> None:
    now = time.monotonic()
    if should_stop is not None and now - state[0] >= 1.0:  # about once a second
        state[0] = now
        if should_stop():
            raise GankitError("prepare stopped by a signal; no archive was written")


def _write_shards(tmp: Path, images: Iterator[np.ndarray], n: int, shape: tuple[int, int, int],
                  meta: dict[str, Any], bar: _Progress,
                  should_stop: Callable[[], bool] | None, halfway: Callable[[], None]) -> int:
    tmp.mkdir()
    item = int(np.prod(shape))
    per_shard = max(1, SHARD_BYTES // item)
    shards, done, state = [], 0, [-math.inf]
    for s, start in enumerate(range(0, n, per_shard)):
        count = min(per_shard, n - start)
        name = f"shard-{s:05d}.npy"
        with open(tmp / name, "wb") as fh:
            header = {"descr": "|u1", "fortran_order": False, "shape": (count, *shape)}
            np.lib.format.write_array_header_1_0(fh, header)
            offset = fh.tell()
            for _ in range(count):
                fh.write(next(images).tobytes())
                done += 1
                if done == max(1, n // 2):
                    fh.flush()
                    halfway()  # a fault injected here leaves half an archive
                bar.update(done)
                _poll(should_stop, state)
        shards.append({"file": name, "count": count, "offset": offset})
    index = {"format": SHARDS_FORMAT, "version": SHARDS_VERSION, "count": n,
             "shape": list(shape), "shards": shards, **meta}
    (tmp / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))
    return sum((tmp / str(s["file"])).stat().st_size for s in shards)


def _write_zip(tmp: Path, images: Iterator[np.ndarray], n: int, shape: tuple[int, int, int],
               meta: dict[str, Any], bar: _Progress,
               should_stop: Callable[[], bool] | None, halfway: Callable[[], None]) -> int:
    state = [-math.inf]
    names = []
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(n):
            a = next(images)
            name = f"{i // 1000:05d}/img{i:08d}.png"
            im = Image.fromarray(a[0] if shape[0] == 1 else a.transpose(1, 2, 0))
            buf = io.BytesIO()
            im.save(buf, format="png", compress_level=0)
            # A fixed timestamp: the same input gives the same bytes.
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
            names.append(name)
            if i + 1 == max(1, n // 2):
                zf.fp.flush()  # type: ignore[union-attr]
                halfway()  # a fault injected here leaves half an archive
            bar.update(i + 1)
            _poll(should_stop, state)
        labels = meta["labels"]
        dataset = {"labels": None if labels is None else
                   [[nm, lab] for nm, lab in zip(names, labels, strict=True)]}
        zf.writestr(zipfile.ZipInfo("dataset.json", date_time=(1980, 1, 1, 0, 0, 0)),
                    json.dumps(dataset))
    return tmp.stat().st_size
