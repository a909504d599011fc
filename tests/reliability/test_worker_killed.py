"""A data loader worker killed mid-training (as the out-of-memory killer does, by SIGKILL):
the run ends in one line naming the cause, exit status 1, a snapshot of the last completed
iteration kept, and the same command continues it to bitwise the uninterrupted end."""

from __future__ import annotations

import json
import os
import re
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


def _gankit(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gankit", *ARGS, "--out", str(out), *extra],
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


def _rank_of(pid: int) -> int | None:
    for var in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if var.startswith(b"RANK="):
            return int(var[5:])
    return None


def _kill_worker_after(proc: subprocess.Popen, out: Path, iteration: int,
                       rank: int | None = None) -> int:
    """SIGKILL a data loader worker of ``proc`` (of its rank ``rank`` when it launches
    ranks) once the run has logged ``iteration``. The trainers are held (SIGSTOP) between
    looks, so the run cannot get far meanwhile. Returns the worker's pid."""
    deadline = time.time() + 120
    trainers = [proc.pid]
    worker = None
    try:
        while worker is None and time.time() < deadline:
            if rank is not None:
                trainers = [p for p in _children(proc.pid) if _rank_of(p) is not None]
            for pid in trainers:
                os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
            for pid in trainers:
                os.kill(pid, signal.SIGSTOP)
            if _logged(out) >= iteration:
                mine = [p for p in trainers if rank is None or _rank_of(p) == rank]
                workers = [w for p in mine for w in _children(p)]
                worker = workers[0] if workers else None
        assert worker is not None, "no data loader worker was started"
        assert _logged(out) < ITERATIONS - 5
        os.kill(worker, signal.SIGKILL)
    finally:
        for pid in trainers:
            os.kill(pid, signal.SIGCONT)
    return worker


def test_a_killed_loader_worker_ends_the_run_in_one_line_and_the_same_command_continues(
        tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    ref = _gankit(reference)
    out = tmp_path / "run"
    proc = _gankit(out)
    worker = _kill_worker_after(proc, out, 5)
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


def test_under_two_ranks_a_killed_worker_ends_the_run_in_its_line_and_the_command_continues(
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    # A snapshot every 4 iterations: a rank's error writes none (the ranks cannot meet).
    extra = ("--nproc", "2", "--snapshot-every", "4")
    proc = _gankit(out, *extra)
    worker = _kill_worker_after(proc, out, 5, rank=1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("gankit train: error:")]
    assert len(line) == 1 and line[0].startswith(
        f"gankit train: error: a data loader worker (pid {worker}) was killed by signal 9 "
        "(SIGKILL), perhaps by the out-of-memory killer; the run stopped after iteration "), err
    assert "gankit: error: rank 1 of 2 exited with status 1" in err
    at = load_state(list_snapshots(out)[-1])["updater"]["iteration"]
    stopped = re.search(r"stopped after iteration (\d+); the snapshot of iteration (\d+) is kept",
                        line[0])
    assert stopped is not None, err
    after, named = int(stopped.group(1)), int(stopped.group(2))
    # The newest snapshot when the rank failed; rank 0 may still have been writing the one of
    # the iteration the run stopped after, which then is the newest on disk.
    assert (out / f"snapshot_iter_{named}.pt").is_file(), err
    assert named < after and at in (named, after), err
    again = _gankit(out, *extra)  # the very same command
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"(iteration {at})" in err
    assert load_state(list_snapshots(out)[-1])["updater"]["iteration"] == ITERATIONS


def test_a_broken_pipe_to_a_dead_worker_is_that_worker_dying() -> None:
    class Dead:
        pid, exitcode = 21, -signal.SIGKILL

    class Alive:
        pid, exitcode = 22, None

    gone = worker_died(EOFError(), [Alive(), Dead()])  # a batch's shared memory it held
    assert gone is not None and (gone.pid, gone.signum) == (21, signal.SIGKILL)
    assert worker_died(EOFError(), [Alive()]) is None  # a live worker: another failure
    assert worker_died(EOFError()) is None
