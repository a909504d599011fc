"""A data loader worker killed mid-training (as the out-of-memory killer does, by SIGKILL):
the run ends in one line naming the cause, exit status 1, a snapshot of the last completed
iteration kept, and the same command continues it to bitwise the uninterrupted end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_kill_resume import _env

from gankit.training.checkpoint import list_snapshots, load_state
from testsupport import assert_runs_equal

ITERATIONS = 40
ARGS = ["train", "--data", "digits", "--batch-size", "16", "--width", "4", "--z-dim", "4",
        "--snapshot-every", "25", "--log-every", "1", "--sample-every", "1000", "--quiet",
        "--seed", "5", "--device", "cpu", "--workers", "1", "--iterations", str(ITERATIONS)]


def _gankit(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gankit", *ARGS, "--out", str(out)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4: the parent's pid
                found.append(int(entry.name))
    return found


def _logged(out: Path) -> int:
    try:
        lines = (out / "log.json").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return json.loads(lines[-1])["iteration"] if lines else 0


def test_a_killed_loader_worker_ends_the_run_in_one_line_and_the_same_command_continues(
        tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    ref = _gankit(reference)
    out = tmp_path / "run"
    proc = _gankit(out)
    # Stall the run at its start until the worker is found, then kill it after iteration 5
    # (an iteration with no snapshot: snapshots come every 25).
    os.kill(proc.pid, signal.SIGSTOP)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
            os.kill(proc.pid, signal.SIGSTOP)
            if _logged(out) >= 5:
                workers = _children(proc.pid)
                if workers:
                    break
        assert workers, "no data loader worker was started"
        assert _logged(out) < ITERATIONS - 5
        worker = workers[0]
        os.kill(worker, signal.SIGKILL)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gankit train: error: a data loader worker (pid {worker}) was "
                               "killed by signal 9 (SIGKILL), perhaps by the out-of-memory "
                               "killer"), err
    assert "continue with the same command" in lines[0]
    # The snapshot written on the error is that of the last completed iteration.
    snaps = list_snapshots(out)
    at = load_state(snaps[-1])["updater"]["iteration"]
    assert 5 <= at < ITERATIONS and at != 25, at
    assert snaps[-1].name == f"snapshot_iter_{at}.pt" and f"iteration {at} is kept" in err
    assert at == _logged(out)

    again = _gankit(out)  # the very same command
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"resuming from {snaps[-1]} (iteration {at})" in err
    assert ref.wait(timeout=300) == 0, ref.stderr.read() if ref.stderr else ""
    assert load_state(list_snapshots(out)[-1])["updater"]["iteration"] == ITERATIONS
    assert_runs_equal(reference, out, "updater", "extensions/EMA/extension", "rng")
