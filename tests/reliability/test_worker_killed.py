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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_kill_resume import _env
from torch import nn

from gankit.data.loader import worker_died
from gankit.extensions import Snapshot
from gankit.training import Trainer, Updater
from gankit.training.checkpoint import list_snapshots, load_state
from testsupport import assert_runs_equal, differing

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
    assert snaps[-1].name == f"snapshot_iter_{at}.pt"
    assert f"after iteration {at}, whose snapshot is kept ({snaps[-1]})" in err
    assert at == _logged(out)

    again = _gankit(out)  # the very same command
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"resuming from {snaps[-1]} (iteration {at})" in err
    assert ref.wait(timeout=300) == 0, ref.stderr.read() if ref.stderr else ""
    assert load_state(list_snapshots(out)[-1])["updater"]["iteration"] == ITERATIONS
    assert_runs_equal(reference, out, "updater", "extensions/EMA/extension", "rng")


class _Failing:
    """A loader whose batch ``fail_at`` (1-based, counted over the run) raises ``exc``."""

    def __init__(self, batches: list[Any], fail_at: int, exc: Exception) -> None:
        self.batches, self.fail_at, self.exc, self.fetched = batches, fail_at, exc, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.batches:
            self.fetched += 1
            if self.fetched == self.fail_at:
                raise self.exc
            yield batch


class _TwoLoaders(Updater):
    """Steps on the main batch, then takes a second batch: a failure there is mid-update."""

    def update_core(self, batch: Any) -> None:
        x, y = batch
        self.step("net", nn.functional.mse_loss(self.models["net"](x), y))
        self.next_batch("extra")


def _worker_error(pid: int) -> RuntimeError:
    return RuntimeError(f"DataLoader worker (pid {pid}) is killed by signal: "
                        f"{signal.strsignal(signal.SIGKILL)}. ")


def test_a_failed_fetch_snapshots_the_last_completed_iteration_and_resumes_bitwise(
        make_trainer: Callable[..., Trainer], tmp_path: Path) -> None:
    reference = make_trainer(stop=(6, "iteration"), out=tmp_path / "reference")
    reference.run()
    trainer = make_trainer(stop=(6, "iteration"), out=tmp_path / "run")
    trainer.updater.loaders["main"] = _Failing(trainer.updater.loaders["main"], 4,
                                               _worker_error(42))
    trainer.extend(Snapshot(), trigger=(5, "iteration"))
    with pytest.raises(RuntimeError) as caught:
        trainer.run()
    died = worker_died(caught.value)
    assert died is not None and (died.pid, died.signum) == (42, signal.SIGKILL)
    assert trainer.failed_before_update
    assert [p.name for p in list_snapshots(tmp_path / "run")] == ["snapshot_iter_3.pt"]
    again = make_trainer(stop=(6, "iteration"), out=tmp_path / "run")
    again.extend(Snapshot(), trigger=(5, "iteration"))
    assert again.resume(tmp_path / "run") is not None and again.updater.iteration == 3
    again.run()
    assert differing(again.updater.state_dict(), reference.updater.state_dict()) == []


def test_a_failure_inside_an_update_writes_no_snapshot(
        make_trainer: Callable[..., Trainer], tmp_path: Path) -> None:
    trainer = make_trainer(stop=(6, "iteration"), updater_cls=_TwoLoaders)
    trainer.updater.loaders["extra"] = _Failing(trainer.updater.loaders["main"], 3,
                                                _worker_error(7))
    trainer.extend(Snapshot(), trigger=(5, "iteration"))
    with pytest.raises(RuntimeError):
        trainer.run()
    assert trainer.updater.iteration == 2  # the 3rd update had stepped when its fetch failed
    assert not trainer.failed_before_update
    assert list_snapshots(trainer.out) == []


def test_worker_died_reads_both_of_torchs_messages() -> None:
    assert worker_died(RuntimeError("some other failure")) is None
    assert worker_died(ValueError("DataLoader worker (pid 5) is killed by signal: x.")) is None
    gone = worker_died(RuntimeError("DataLoader worker (pid(s) 12, 13) exited unexpectedly"))
    assert gone is not None and (gone.pid, gone.signum, gone.exit_code) == (12, None, None)

    class Proc:
        pid, exitcode = 12, -signal.SIGKILL

    gone = worker_died(RuntimeError("DataLoader worker (pid(s) 12) exited unexpectedly"),
                       [Proc()])
    assert gone is not None and gone.signum == signal.SIGKILL
    assert str(gone).startswith("a data loader worker (pid 12) was killed by signal 9 (SIGKILL),"
                                " perhaps by the out-of-memory killer; ")
    code = worker_died(RuntimeError("DataLoader worker (pid 3) exited unexpectedly with exit "
                                    "code 1. Details are lost"))
    assert code is not None and str(code).startswith("a data loader worker (pid 3) exited with "
                                                     "code 1;")
