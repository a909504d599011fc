"""Crash-safe checkpoint files.

A snapshot is written to a temporary file in the same folder, flushed to disk, then renamed
over its final name, so a crash leaves either the old file or the new one, never half of one.
Its checksum travels inside it (``state["digest"]``, a sha256 of every tensor and value), so
a file is replaced as one unit: a kill at any instant leaves the old file or the new one, each
valid on its own. Loading recomputes the digest, so a truncated or damaged file is named as
corrupt and ``latest_snapshot`` falls back to the previous good one. A ``NAME.sha256`` sidecar
(written by gankit before 0.2) is still checked when present, and removed on the next write.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError

SNAPSHOT_RE = re.compile(r"^snapshot_iter_(\d+)\.pt$")
_RELIST = 20  # listings latest_snapshot tries while a writer prunes the folder
# What a killed writer leaves behind: write_atomic's temp files, _check_writable's probe and
# a run lock's claim (runlock).
TEMP_RE = re.compile(r"^(\..+\.tmp\d+|\.write-test-.*|\.gankit\.lock\.claim-.*)$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some file systems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Fault injection for tests: called as ``fault_hook(step, path)`` just before each
#: file-system operation of a write (``step``: "unlink" (a legacy checksum; a snapshot or
#: sample grid pruned), "open", "write" (half the data is written), "fsync", "replace",
#: "fsync_dir"), so a test can kill the process there.
fault_hook: Callable[[str, Path], None] | None = None


def fault_point(step: str, path: Path) -> None:
    """Call ``fault_hook`` (when set) before file operation ``step`` of the write of ``path``.

    Writers that stream their data into a temporary file or folder themselves (archives)
    call it for "open" and "write"; ``publish`` and ``write_atomic`` do the rest."""
    if fault_hook is not None:
        fault_hook(step, path)


def publish(tmp: Path, path: Path, *, durable: bool = True) -> None:
    """Rename ``tmp``, a file or folder written whole beside ``path``, to ``path``.

    With ``durable`` its data is flushed to disk first (each file of a folder, and the
    folder) and the parent folder's entry after, so a power cut cannot leave a name pointing
    at lost data. The caller removes ``tmp`` if this raises. A folder can only replace a
    missing ``path`` (or an empty folder).
    """
    if durable:
        fault_point("fsync", path)
        files = [tmp] if not tmp.is_dir() else sorted(p for p in tmp.rglob("*") if p.is_file())
        for f in files:
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if tmp.is_dir():
            _fsync_dir(tmp)
    fault_point("replace", path)
    os.replace(tmp, path)
    if durable:
        fault_point("fsync_dir", path)
        _fsync_dir(path.parent)


def write_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that a crash never leaves a partial file there.

    ``durable=False`` skips the two fsyncs (milliseconds each): the rename still makes the
    write all-or-nothing for readers; only a power cut may lose it. Fit for files rewritten
    every interval whose content a snapshot also holds (log.json, plots).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    view = memoryview(data)
    try:
        fault_point("open", path)
        with open(tmp, "wb") as f:
            f.write(view[: len(view) // 2])
            if fault_hook is not None:
                f.flush()  # what a kill now leaves: half a temp file
                fault_point("write", path)
            f.write(view[len(view) // 2:])
        publish(tmp, path, durable=durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` (one JSON-lines entry, newline included) to ``path``.

    Not atomic: a kill mid-write leaves a torn last line, which readers of such a log skip
    (``gankit.extensions.log_report.read_log``). ``fault_hook`` sees its "open" and its
    "write" (half the line written), as for ``write_atomic``.
    """
    path = Path(path)
    fault_point("open", path)
    with open(path, "a", encoding="utf-8") as f:
        if fault_hook is not None:
            f.write(line[: len(line) // 2])
            f.flush()  # what a kill now leaves: a torn last line
            fault_point("write", path)
            line = line[len(line) // 2:]
        f.write(line)


def hash_tensor(h: Any, t: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and bytes to the hash object ``h`` (a ``hashlib`` one)."""
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy())  # the buffer itself, not a copy


def state_digest(state: Any) -> str:
    """sha256 of a state tree: its structure, every plain value and every tensor's bytes."""
    h = hashlib.sha256()

    def walk(node: Any) -> None:
        if isinstance(node, torch.Tensor):
            h.update(b"T")
            hash_tensor(h, node)
        elif isinstance(node, dict):
            h.update(f"D{len(node)}".encode())
            for k, v in node.items():
                h.update(repr(k).encode())
                walk(v)
        elif isinstance(node, (list, tuple)):
            h.update(f"{type(node).__name__[0]}{len(node)}".encode())
            for v in node:
                walk(v)
        else:
            h.update(f"{type(node).__name__}:{node!r};".encode())

    walk(state)
    return h.hexdigest()


def save_state(state: dict[str, Any], path: str | Path) -> None:
    """Save a state tree atomically, as one file that carries its own digest."""
    path = Path(path)
    state = {k: v for k, v in state.items() if k != "digest"}
    state["digest"] = state_digest(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    # An old sidecar would contradict the new data; once it is gone, the digest inside
    # checks whichever file (old or new) a kill leaves at ``path``.
    fault_point("unlink", path)
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)
    write_atomic(path, buffer.getvalue())


class CorruptSnapshotError(GankitError):
    """A snapshot file that cannot be read or whose content does not match its digest."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"snapshot {path} is corrupt ({why}); resume from an earlier snapshot.")
        self.why = why


def _corrupt(path: Path, why: str) -> GankitError:
    return CorruptSnapshotError(path, why)


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a snapshot, checking the digest stored in it (and a legacy sidecar if present)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise GankitError(
            f"snapshot {path} does not exist; give the path of a snapshot_iter_N.pt.") from None
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise _corrupt(path, f"it cannot be read: {type(exc).__name__}") from None
    if not isinstance(state, dict) or "updater" not in state:
        raise GankitError(f"{path} is not a gankit snapshot; give a snapshot_iter_N.pt file.")
    digest = state.pop("digest", None)
    if digest is not None:
        # The digest inside decides; a sidecar left beside it may be stale, never authoritative.
        if digest != state_digest(state):
            raise _corrupt(path, "its content does not match the digest stored in it")
        return state
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file() and hashlib.sha256(data).hexdigest() != sidecar.read_text().strip():
        raise _corrupt(path, "its checksum file does not match it")
    return state


def remove_stale_files(folder: str | Path) -> list[Path]:
    """Delete what killed writers left in a run folder: temp files (in it and in its
    subfolders, such as samples/) and orphan checksums.

    Call it only while no other process writes into ``folder`` (a resuming run, before it
    trains). Returns the removed paths.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    entries = list(folder.iterdir())
    entries += [p for sub in entries if sub.is_dir() for p in sub.iterdir()]
    for p in entries:
        orphan = (p.parent == folder and p.name.endswith(".sha256")
                  and not p.with_name(p.name[: -len(".sha256")]).exists())
        if p.is_file() and (TEMP_RE.match(p.name) or orphan):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def list_snapshots(folder: str | Path) -> list[Path]:
    """Snapshots in ``folder``, oldest iteration first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := SNAPSHOT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_snapshot(folder: str | Path) -> tuple[Path, dict[str, Any]]:
    """The newest snapshot in ``folder`` that loads, warning about each damaged one skipped.

    The warning is one sentence that fits whoever reads the snapshot (a resumed run, a
    sampler, an evaluator): it names the file, why it is skipped, and that the one before
    it is tried. A run training meanwhile may delete a snapshot between the listing and the
    read (it keeps only the newest few): then the folder is listed again, as the writer has
    a newer one.
    """
    for _ in range(_RELIST):
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
                if not path.exists():
                    break  # pruned by a writer: look again
                problems.append(str(exc))
                why = (f"it is corrupt ({exc.why})" if isinstance(exc, CorruptSnapshotError)
                       else str(exc).split(";")[0].rstrip("."))
                warnings.warn(f"skipping {path}: {why}; trying the snapshot before it.",
                              stacklevel=2)
        else:
            raise GankitError(
                f"no snapshot in {folder} can be loaded ({len(problems)} corrupt); "
                "start a new run."
            )
    raise GankitError(f"the snapshots in {folder} keep disappearing while they are read; "
                      "read the run again once its writer has stopped.")
