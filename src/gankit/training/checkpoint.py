"""Crash-safe checkpoint files.

A snapshot is written to a temporary file in the same folder, flushed to disk, then renamed
over its final name, so a crash leaves either the old file or the new one, never half of one.
A sidecar ``NAME.sha256`` holds the checksum; loading checks it, so a truncated or damaged
file is detected and ``latest_snapshot`` falls back to the previous good one.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError

SNAPSHOT_RE = re.compile(r"^snapshot_iter_(\d+)\.pt$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some file systems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that a crash never leaves a partial file there.

    ``durable=False`` skips the two fsyncs (milliseconds each): the rename still makes the
    write all-or-nothing for readers; only a power cut may lose it. Fit for files rewritten
    every interval whose content a snapshot also holds (log.json, plots).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def save_state(state: dict[str, Any], path: str | Path) -> None:
    """Save a state tree atomically, checksum sidecar first, then the data."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    write_atomic(path.with_name(path.name + ".sha256"), hashlib.sha256(data).hexdigest().encode())
    write_atomic(path, data)


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a snapshot, checking its checksum when the sidecar is there."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"snapshot {path} does not exist; give the path of a snapshot_iter_N.pt.")
    data = path.read_bytes()
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().strip()
        if hashlib.sha256(data).hexdigest() != expected:
            raise GankitError(
                f"snapshot {path} is damaged (its checksum does not match); "
                "resume from an earlier snapshot."
            )
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise GankitError(
            f"snapshot {path} cannot be read ({type(exc).__name__}); "
            "resume from an earlier snapshot."
        ) from None
    if not isinstance(state, dict) or "updater" not in state:
        raise GankitError(f"{path} is not a gankit snapshot; give a snapshot_iter_N.pt file.")
    return state


def list_snapshots(folder: str | Path) -> list[Path]:
    """Snapshots in ``folder``, oldest iteration first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := SNAPSHOT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_snapshot(folder: str | Path) -> tuple[Path, dict[str, Any]]:
    """The newest snapshot in ``folder`` that loads, warning about each damaged one skipped."""
    snapshots = list_snapshots(folder)
    if not snapshots:
        raise GankitError(
            f"{folder} holds no snapshot_iter_N.pt to resume from; "
            "train first or give the run directory that has them."
        )
    problems = []
    for path in reversed(snapshots):
        try:
            return path, load_state(path)
        except GankitError as exc:
            problems.append(str(exc))
            warnings.warn(f"skipping {path}: {exc}", stacklevel=2)
    raise GankitError(
        f"no snapshot in {folder} can be loaded ({len(problems)} damaged); start a new run."
    )
