"""A rank SIGKILLed mid-training under ``--max-restarts``: the group restarts at once, the run
resumes from its newest snapshot and ends bitwise equal to an uninterrupted 2-rank run.

Two launchers: gankit's own (``gankit train --nproc 2 --max-restarts 2``, torchrun's standalone
rendezvous) and two torchrun agents of one process each meeting at a c10d rendezvous on
127.0.0.1, standing for two nodes. The rank is killed from outside, as the OOM killer would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import gankit.training.distributed as gd
from gankit.cli import main
from gankit.training import load_state
from gankit.training.checkpoint import list_snapshots
from gankit.training.runlock import LOCK_NAME, Holder
from testsupport import differing

MULTIPROCESS = pytest.mark.multiprocess
SRC = Path(gd.__file__).parents[2]
ITERATIONS = 16
FAILED_ATTEMPT = "failed (exitcode"  # what torchrun's agent logs for each failed worker


def _env(tag: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in gd._TORCHRUN_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env.update(OMP_NUM_THREADS="1", GANKIT_TEST_TAG=tag)
    return env


def _train_args(data: Path, out: Path) -> list[str]:
    return ["train", "--data", f"npz:{data}", "--out", str(out), "--iterations",
            str(ITERATIONS), "--batch-size", "8", "--width", "8", "--z-dim", "8",
            "--log-every", "2", "--snapshot-every", "2", "--sample-every", str(ITERATIONS),
            "--device", "cpu", "--quiet", "--seed", "5"]


def _rank_pid(tag: str, rank: str) -> int | None:
    """The pid of the first attempt's ``rank`` among the processes tagged ``tag``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(item.split("=", 1) for item in
                       (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in item)
        except OSError:
            continue
        if (env.get("GANKIT_TEST_TAG") == tag and env.get("RANK") == rank
                and env.get("TORCHELASTIC_RESTART_COUNT") == "0"):
            return int(entry.name)
    return None


def _kill_rank_1_after_first_snapshot(tag: str, out: Path, procs: list[subprocess.Popen]
                                      ) -> int:
    """SIGKILL rank 1 once the run has a snapshot; the iteration of the newest one then."""
    deadline = time.monotonic() + 120
    while not list_snapshots(out):
        assert all(p.poll() is None for p in procs), "the run ended before the kill"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = _rank_pid(tag, "1")
    assert pid is not None
    holder = Holder.parse((out / LOCK_NAME).read_text())
    assert holder is not None and holder.pid == _rank_pid(tag, "0")  # rank 0 alone holds it
    os.kill(pid, signal.SIGKILL)
    return int(list_snapshots(out)[-1].stem.split("_")[-1])


def _finish(procs: list[subprocess.Popen]) -> str:
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
        # Each agent saw its workers fail once at most (the killed attempt): the first
        # restart succeeded, not a later one.
        assert err.count(FAILED_ATTEMPT) <= 1, err[-3000:]
        errs.append(err)
    return "".join(errs)


def _final_state(out: Path) -> dict[str, object]:
    updater = load_state(out / f"snapshot_iter_{ITERATIONS}.pt")["updater"]
    return {"models": updater["models"], "optimizers": updater["optimizers"]}


def _assert_bitwise_equal(a: Path, b: Path) -> None:
    assert differing(_final_state(a), _final_state(b)) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("elastic") / "img.npz"
    np.savez(path, x=np.random.default_rng(0).integers(0, 256, (80, 8, 8), dtype=np.uint8))
    return path


class _Reference:
    """The uninterrupted 2-rank run, started once for the module beside the first test's
    interrupted run (two launches at a time instead of one after the other)."""

    def __init__(self, data: Path, out: Path) -> None:
        self.out = out
        self.proc = _gankit_launch(data, out, "reference")
        self.done = False

    def wait(self) -> Path:
        if not self.done:
            _finish([self.proc])
            self.done = True
        return self.out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, data: Path):
    ref = _Reference(data, tmp_path_factory.mktemp("reference") / "run")
    yield ref
    if ref.proc.poll() is None:
        ref.proc.kill()
        ref.proc.wait()


def _gankit_launch(data: Path, out: Path, tag: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gankit", *_train_args(data, out),
                             "--nproc", "2", *extra], env=_env(tag),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_max_restarts_without_nproc_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--max-restarts", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "give --nproc 2 or more" in err


@MULTIPROCESS
def test_a_killed_rank_restarts_the_group_and_the_run_ends_bitwise_equal(
        tmp_path: Path, data: Path, reference: _Reference) -> None:
    run = _gankit_launch(data, tmp_path / "run", "run", "--max-restarts", "2")
    killed_after = _kill_rank_1_after_first_snapshot("run", tmp_path / "run", [run])
    err = _finish([run])
    assert "Traceback" not in err, err[-3000:]
    assert err.count(FAILED_ATTEMPT) == 1  # the killed rank, seen; no failed restart after it
    assert "resuming from" in err  # the first restart resumed
    resumed_at = int(err.split("(iteration ")[1].split(")")[0])
    assert killed_after <= resumed_at < ITERATIONS
    _assert_bitwise_equal(reference.wait(), tmp_path / "run")
    assert not (tmp_path / "run" / LOCK_NAME).exists()


@MULTIPROCESS
def test_two_nodes_at_a_c10d_rendezvous_survive_a_killed_rank(
        tmp_path: Path, data: Path, reference: _Reference) -> None:
    reference.wait()  # not four processes at once on a small machine
    port = _free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
         "--nproc-per-node", "1", "--rdzv-backend", "c10d",
         "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "gankit-test",
         "--max-restarts", "2", "--monitor-interval", "0.1", "-m", "gankit",
         *_train_args(data, tmp_path / "run")],
        env=_env("c10d"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)]
    _kill_rank_1_after_first_snapshot("c10d", tmp_path / "run", nodes)
    err = _finish(nodes)
    assert "Traceback" not in err, err[-3000:]
    assert "resuming from" in err
    _assert_bitwise_equal(reference.wait(), tmp_path / "run")
