"""Kill a training run at random moments, resume, and get bitwise the uninterrupted result."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from gankit.training.checkpoint import list_snapshots, load_state
from testsupport import assert_runs_equal

RUNNER = Path(__file__).with_name("kill_runner.py")
ITERATIONS = 60
ARGS = ["--data", "digits", "--batch-size", "16", "--width", "4", "--z-dim", "4",
        "--snapshot-every", "7", "--log-every", "5", "--sample-every", "1000", "--quiet",
        "--seed", "3", "--device", "cpu"]


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}


def _start(out: Path, kill: str = "none", resume: bool = False) -> subprocess.Popen:
    train = (["train", "--resume", str(out)] if resume
             else ["train", *ARGS, "--iterations", str(ITERATIONS), "--out", str(out)])
    return subprocess.Popen([sys.executable, str(RUNNER), kill, "--", *train],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def assert_same_end(reference: Path, out: Path) -> None:
    """Both runs ended at ITERATIONS with bitwise the same updater, EMA and RNG streams."""
    assert load_state(list_snapshots(out)[-1])["updater"]["iteration"] == ITERATIONS
    assert_runs_equal(reference, out, "updater", "extensions/EMA/extension", "rng")


def test_sigkill_at_random_moments_then_resume_is_bitwise_exact(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    proc = _start(reference)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    out = tmp_path / "killed"
    # First a kill half-way through writing the 3rd snapshot, then kills in the middle of
    # updates at random iterations, each after the last snapshot, so every resume redoes work.
    proc = _start(out, kill="write:3")
    assert proc.wait(timeout=300) == -signal.SIGKILL
    assert any(p.name.startswith(".snapshot_iter_") for p in out.iterdir())  # the torn temp file
    rng = random.Random(0)
    for _ in range(3):
        done = load_state(list_snapshots(out)[-1])["updater"]["iteration"]
        at = rng.randint(done + 2, min(done + 12, ITERATIONS - 1))
        proc = _start(out, kill=f"iter:{at}", resume=True)
        assert proc.wait(timeout=300) == -signal.SIGKILL, proc.stderr.read()
    proc = _start(out, resume=True)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert_same_end(reference, out)


def test_sigterm_stops_cleanly_with_a_snapshot_then_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), "none", "--", "train", *ARGS, "--iterations", "100000",
         "--out", str(out)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.time() + 120
    while not (out / "log.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "continue with: gankit train --resume" in err
    assert "Traceback" not in err
    last = list_snapshots(out)[-1]
    state = load_state(last)
    stopped_at = state["updater"]["iteration"]
    assert last.name == f"snapshot_iter_{stopped_at}.pt"  # written at the stop, not before
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "none", "--", "train", "--resume", str(out), "--iterations",
         str(stopped_at + 3)], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert load_state(list_snapshots(out)[-1])["updater"]["iteration"] == stopped_at + 3
