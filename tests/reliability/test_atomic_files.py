"""Files replaced in place survive a kill at any instant; corruption is named as corruption."""

from __future__ import annotations

import builtins
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from gankit.errors import GankitError
from gankit.training import checkpoint
from gankit.training.checkpoint import load_state, remove_stale_files, save_state

OPS = ("open", "replace", "fsync", "unlink", "rename")


def _state(value: float) -> dict[str, Any]:
    models = {"gen": {"w": torch.full((64,), value)}}
    return {"updater": {"iteration": int(value), "models": models}, "extensions": {},
            "metadata": {"recipe": "dcgan"}}


def _write_killed_at(path: Path, step: int) -> int:
    """In a forked child, save a new state to ``path``, SIGKILLed before file operation ``step``.

    Returns the child's wait status; a step past the last operation lets the write finish.
    """
    pid = os.fork()
    if pid == 0:  # the child: count every file operation, die before the chosen one
        count = 0

        def counted(fn: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                nonlocal count
                count += 1
                if count == step:
                    os.kill(os.getpid(), signal.SIGKILL)
                return fn(*args, **kwargs)
            return wrapper

        for name in OPS:
            setattr(os, name, counted(getattr(os, name)))
        builtins.open = counted(builtins.open)
        try:
            save_state(_state(2.0), path)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return status


def test_a_kill_before_any_file_operation_of_a_best_model_write_keeps_a_valid_file(
        tmp_path: Path) -> None:
    path = tmp_path / "best_fid.pt"
    killed = 0
    for step in range(1, 50):
        save_state(_state(1.0), path)
        # A sidecar left by an older gankit must not condemn either file.
        path.with_name(path.name + ".sha256").write_text("f" * 64)
        status = _write_killed_at(path, step)
        state = load_state(path)  # never raises: the old file or the new one, each valid
        w = state["updater"]["models"]["gen"]["w"]
        if os.WIFSIGNALED(status):
            killed += 1
            assert torch.equal(w, torch.full((64,), 1.0)) or torch.equal(w, torch.full((64,), 2.0))
        else:  # past the last operation: the write completed
            assert torch.equal(w, torch.full((64,), 2.0))
            break
        remove_stale_files(tmp_path)
    assert killed >= 3  # unlink, open, rename at least; the loop saw every step


def test_a_flipped_byte_without_a_sidecar_is_named_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "snapshot_iter_7.pt"
    save_state(_state(3.0), path)
    assert not path.with_name(path.name + ".sha256").exists()
    data = bytearray(path.read_bytes())
    # A byte inside the tensor's storage: torch.load still succeeds, only the digest can tell.
    offset = bytes(data).find(torch.full((64,), 3.0).numpy().tobytes())
    assert offset > 0
    data[offset + 5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(GankitError, match=r"snapshot_iter_7\.pt is corrupt \(its content does "
                                          r"not match the digest stored in it\)"):
        load_state(path)


def test_stale_temp_files_and_orphan_checksums_are_removed(tmp_path: Path) -> None:
    save_state(_state(1.0), tmp_path / "snapshot_iter_900.pt")
    stale = [".snapshot_iter_900.pt.sha256.tmp15122", ".log.json.tmp77", ".write-test-abc",
             "snapshot_iter_800.pt.sha256"]
    for name in stale:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.tmp1").write_text("the user's")  # not ours: no leading dot
    removed = remove_stale_files(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp1", "snapshot_iter_900.pt"]


def test_checkpoint_module_keeps_one_writer() -> None:
    # The kill tests patch checkpoint.write_atomic; save_state must go through it.
    assert "write_atomic(path" in Path(checkpoint.__file__).read_text()
