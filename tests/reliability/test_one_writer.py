"""`gankit train` twice on one run: the second is refused while the first lives, takes over
once it is killed, and readers (`gankit sample`, `gankit eval`, snapshots) work on the run while
it trains."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from gankit import cli
from gankit.training.checkpoint import latest_snapshot, list_snapshots
from gankit.training.runlock import LOCK_NAME, Holder, RunLock

ARGS = ["--data", "digits", "--batch-size", "8", "--width", "4", "--z-dim", "4",
        "--snapshot-every", "2", "--keep-snapshots", "2", "--log-every", "2",
        "--sample-every", "100000", "--quiet", "--seed", "1", "--device", "cpu"]


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}


def _gankit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``gankit ARGV`` in this process (no second start of torch): (exit status, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def _wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_writer_per_run_and_readers_while_it_trains(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    train = ["train", *ARGS, "--iterations", "1000000", "--out", str(out)]
    first = subprocess.Popen([sys.executable, "-m", "gankit", *train], env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(list_snapshots(out)) >= 2)
        holder = Holder.parse((out / LOCK_NAME).read_text())
        assert holder is not None and holder.pid == first.pid

        # The same command, and a resume, while the first trains: one line, exit 2.
        for argv in (train, ["train", "--resume", str(out)]):
            code, err = _gankit(capsys, *argv)
            assert code == 2, err
            lines = err.strip().splitlines()
            assert len(lines) == 1, err
            assert f"host {socket.gethostname()}, pid {first.pid}, started {holder.start}" \
                in lines[0]

        # Readers: every snapshot they pick loads whole while the writer replaces and prunes.
        deadline = time.monotonic() + 3.0
        reads = set()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a skipped (torn or vanished) snapshot fails
            while time.monotonic() < deadline:
                _, state = latest_snapshot(out)
                reads.add(state["updater"]["iteration"])
        assert len(reads) >= 2  # the writer moved on while we read
        code, err = _gankit(capsys, "sample", str(out), "-n", "4", "-o",
                            str(tmp_path / "s.npy"), "--device", "cpu")
        assert code == 0, err
        net = tmp_path / "features.pt"  # a feature network file: no weights to fetch
        torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.Tanh()), net)
        code, err = _gankit(capsys, "eval", str(out), "--metrics", "fid", "-n", "8",
                            "--feature-net", str(net), "--device", "cpu")
        assert code == 0, err
        assert json.loads((out / "metrics.json").read_text())["records"][-1]["iteration"] > 0
        assert first.poll() is None  # still training
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)

    # The holder died without releasing: the next claim takes the run over at once (the
    # same host, its pid gone), as the same command's would.
    assert (out / LOCK_NAME).is_file()
    with RunLock(out) as lock:
        assert lock.holder() == lock.me
    assert not (out / LOCK_NAME).exists()


def test_a_held_run_is_refused_before_any_rank_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    with RunLock(out) as lock:  # this process trains it
        code, err = _gankit(capsys, "train", *ARGS, "--iterations", "4", "--out", str(out),
                            "--nproc", "2", "--max-restarts", "2")
    assert code == 2
    assert err.strip().splitlines() == [err.strip()]
    assert f"pid {os.getpid()}, started {lock.me.start}" in err
    assert sorted(p.name for p in out.iterdir()) == []  # nothing was written
