"""Crash-safe snapshot files: round trip, checksums, fallback to the last good one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from gankit.errors import GankitError
from gankit.training import checkpoint
from gankit.training.checkpoint import (
    latest_snapshot,
    list_snapshots,
    load_state,
    save_state,
    write_atomic,
)
from testsupport import assert_bitwise_equal


def state(iteration: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(iteration)
    return {
        "gankit_version": "0.1.0",
        "updater": {"iteration": iteration, "models": {"net": {"w": torch.randn(3, 2,
                                                                                  generator=g)}}},
        "rng": {"python": (3, tuple(range(5)), None)},
        "note": "plain values survive too",
    }


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "snapshot_iter_5.pt"
    save_state(state(5), path)
    assert_bitwise_equal(load_state(path), state(5))
    # One file: its digest travels inside it, so it is replaced as one unit.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot_iter_5.pt"]


def test_write_atomic_replaces_whole_files(tmp_path):
    path = tmp_path / "log.json"
    write_atomic(path, b"first")
    write_atomic(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert [p.name for p in tmp_path.iterdir()] == ["log.json"]


def test_a_legacy_sidecar_is_still_checked(tmp_path):
    path = tmp_path / "snapshot_iter_5.pt"
    torch.save(state(5), path)  # an old-format file: no digest inside
    path.with_name(path.name + ".sha256").write_text("0" * 64)
    with pytest.raises(GankitError, match=r"snapshot_iter_5\.pt is corrupt \(its checksum file "
                                          r"does not match it\); resume from an earlier snapshot"):
        load_state(path)
    path.with_name(path.name + ".sha256").write_text("0" * 64)
    save_state(state(6), path)  # the next write removes the stale sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot_iter_5.pt"]
    assert load_state(path)["updater"]["iteration"] == 6


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, r"does not exist; give the path of a snapshot_iter_N\.pt"),
        (b"not a zip file", r"is corrupt \(it cannot be read: \w+\); resume from an earlier"),
        ("truncated", r"is corrupt \(it cannot be read"),
        ("not_gankit", r"is not a gankit snapshot"),
    ],
)
def test_load_state_errors_name_the_file(tmp_path, content, match):
    path = tmp_path / "snapshot_iter_1.pt"
    if content == "truncated":
        save_state(state(1), path)
        path.write_bytes(path.read_bytes()[:200])
    elif content == "not_gankit":
        save_state({"weights": torch.ones(1)}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(GankitError, match=match):
        load_state(path)


def test_list_snapshots_orders_by_iteration_not_by_name(tmp_path):
    for it in (100, 9, 20):
        save_state(state(it), tmp_path / f"snapshot_iter_{it}.pt")
    (tmp_path / "snapshot_iter_x.pt").write_bytes(b"")
    (tmp_path / "log.json").write_text("[]")
    assert [p.name for p in list_snapshots(tmp_path)] == [
        "snapshot_iter_9.pt", "snapshot_iter_20.pt", "snapshot_iter_100.pt"]
    assert list_snapshots(tmp_path / "missing") == []


def test_latest_snapshot_falls_back_over_a_truncated_newest_file(tmp_path):
    save_state(state(10), tmp_path / "snapshot_iter_10.pt")
    save_state(state(20), tmp_path / "snapshot_iter_20.pt")
    newest = tmp_path / "snapshot_iter_30.pt"
    save_state(state(30), newest)
    newest.write_bytes(newest.read_bytes()[:-100])  # a crash that the rename did not guard
    with pytest.warns(UserWarning, match=r"skipping .*snapshot_iter_30\.pt: .*corrupt"):
        path, loaded = latest_snapshot(tmp_path)
    assert path.name == "snapshot_iter_20.pt"
    assert_bitwise_equal(loaded, state(20))


@pytest.mark.parametrize("fail_at", ["fsync", "replace_data", "write"])
def test_a_crash_while_writing_leaves_the_previous_snapshot_loadable(tmp_path, monkeypatch,
                                                                     fail_at):
    save_state(state(10), tmp_path / "snapshot_iter_10.pt")
    calls = {"replace": 0}
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        calls["replace"] += 1
        if (fail_at, calls["replace"]) == ("replace_data", 1):
            raise OSError("power cut")
        real_replace(src, dst)

    def fsync(fd: int) -> None:
        raise OSError("power cut")

    real_open = open

    class HalfWriter:
        """A file object that writes half of the data, then dies."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.f = real_open(*args, **kwargs)

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.f.close()

        def write(self, data: bytes) -> int:
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError("power cut")

    if fail_at == "fsync":
        monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    elif fail_at == "write":
        monkeypatch.setattr(checkpoint, "open", HalfWriter, raising=False)
    else:
        monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(OSError, match="power cut"):
        save_state(state(20), tmp_path / "snapshot_iter_20.pt")
    monkeypatch.undo()

    # No temporary file is left behind, and the newest snapshot is the previous one.
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    path, loaded = latest_snapshot(tmp_path)
    assert path.name == "snapshot_iter_10.pt"
    assert_bitwise_equal(loaded, state(10))


@pytest.mark.parametrize(
    ("names", "match"),
    [
        ([], r"holds no snapshot_iter_N\.pt to resume from"),
        (["snapshot_iter_1.pt", "snapshot_iter_2.pt"], r"no snapshot in .* can be loaded "
                                                       r"\(2 corrupt\); start a new run"),
    ],
)
def test_latest_snapshot_when_nothing_loads(tmp_path, names, match):
    for name in names:
        (tmp_path / name).write_bytes(b"junk")
    warns = pytest.warns(UserWarning, match="skipping") if names else contextlib.nullcontext()
    with pytest.raises(GankitError, match=match), warns:
        latest_snapshot(tmp_path)


def test_save_state_makes_no_partial_file_visible(tmp_path, monkeypatch):
    """While a snapshot is being written, its final name does not exist yet."""
    seen: list[bool] = []
    final = tmp_path / "snapshot_iter_3.pt"
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        seen.append(final.exists())
        real_fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    save_state(state(3), final)
    # The data's fsync comes before its rename; the folder's fsync after it.
    assert seen == [False, True]
    assert final.exists()
    assert isinstance(load_state(Path(final)), dict)
