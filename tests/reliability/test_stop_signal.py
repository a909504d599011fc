"""SIGTERM during an evaluation or the feature classifier's training ends the run in seconds.

Each test sends SIGTERM while the long work runs (tests/reliability/stop_runner.py makes it
minutes long), checks the process ended within 5 s with exit 143 and a snapshot, then resumes
with the same command and compares the finished run with an uninterrupted one, bitwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gankit.training.checkpoint import list_snapshots, load_state
from testsupport import assert_runs_equal

RUNNER = Path(__file__).with_name("stop_runner.py")
ITERATIONS = 24
ARGS = ["--data", "digits", "--batch-size", "16", "--width", "4", "--z-dim", "4",
        "--snapshot-every", "8", "--log-every", "4", "--sample-every", "8", "--quiet",
        "--seed", "5", "--device", "cpu", "--iterations", str(ITERATIONS)]


def _env(cache: Path) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "GANKIT_CACHE": str(cache)}


def _train(out: Path, cache: Path, what: str = "none", times: Path | None = None,
           ) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUNNER), what, str(times or out.with_suffix(".t")), "--", "train",
         *ARGS, "--out", str(out)],
        env=_env(cache), capture_output=True, text=True, timeout=600)


def _log(out: Path) -> list[dict]:
    text = (out / "log.json").read_text()
    rows = json.loads(text) if text.lstrip().startswith("[") else [
        json.loads(line) for line in text.splitlines() if line.strip()]
    # Wall-clock values differ between runs: the elapsed time and the evaluator's phase times.
    return [{k: v for k, v in row.items()
             if k != "elapsed_time" and not k.startswith("val_time/")}
            for row in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stop")
    out, cache = root / "reference", root / "cache"
    done = _train(out, cache)
    assert done.returncode == 0, done.stderr
    return out, cache


@pytest.mark.parametrize("what", ["evaluator", "classifier"])
def test_sigterm_during_long_work_stops_within_5s_and_resumes_exactly(
        tmp_path: Path, reference: tuple[Path, Path], what: str, gankit_cli: Any) -> None:
    ref, shared_cache = reference
    out, times = tmp_path / "run", tmp_path / "sent"
    # The classifier case needs a cache miss, so that the classifier trains in this run.
    cache = tmp_path / "cache" if what == "classifier" else shared_cache
    stopped = _train(out, cache, what, times)
    ended = time.time()
    assert stopped.returncode == 143, stopped.stderr
    sent = float(times.read_text())
    assert ended - sent < 5.0, f"the run took {ended - sent:.1f} s to stop after SIGTERM"
    assert f"--resume {out}" in stopped.stderr or f"--out {out}" in stopped.stderr
    # The final snapshot is of the iteration whose evaluation was abandoned (the first one).
    snaps = list_snapshots(out)
    assert snaps and load_state(snaps[-1])["updater"]["iteration"] == 8
    assert not any(".tmp" in p.name for p in out.iterdir())  # no partial file
    assert all(row["iteration"] <= 8 for row in _log(out))
    assert not any("val/fid" in row for row in _log(out))  # no value of the abandoned pass

    gankit_cli("train", "--resume", str(out), env={"GANKIT_CACHE": str(cache)}, timeout=600,
               check=0)
    assert_runs_equal(ref, out, "updater", "extensions/EMA/extension", "rng")
    assert _log(out) == _log(ref)


def test_sigterm_during_gankit_eval_stops_within_5s_writing_nothing(
        tmp_path: Path, reference: tuple[Path, Path], gankit_cli: Any) -> None:
    ref, shared_cache = reference
    times = tmp_path / "sent"
    stopped = subprocess.run(
        [sys.executable, str(RUNNER), "classifier", str(times), "--", "eval", str(ref),
         "-n", "200"],
        env=_env(tmp_path / "cache"), capture_output=True, text=True, timeout=600)
    ended = time.time()
    assert stopped.returncode == 143, stopped.stderr
    assert ended - float(times.read_text()) < 5.0
    assert "nothing was written" in stopped.stderr
    assert not (ref / "metrics.json").exists()
    # Two evaluations with different protocols: both kept in the history.
    for seed in ("0", "1"):
        gankit_cli("eval", str(ref), "-n", "200", "--seed", seed,
                   env={"GANKIT_CACHE": str(shared_cache)}, timeout=600, check=0)
    history = json.loads((ref / "metrics.json").read_text())["records"]
    assert [h["protocol"]["seed"] for h in history] == [0, 1]
