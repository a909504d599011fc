"""One writer per run directory: the lock file, its heartbeat, stale holders and takeovers."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gankit.training import distributed, runlock
from gankit.training.runlock import LOCK_NAME, Holder, RunHeld, RunLock, stale_timeout_s


def _write_lock(folder: Path, age_s: float = 0.0, **fields: object) -> Path:
    """A lock file as another holder would leave it, its heartbeat ``age_s`` seconds old."""
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"host": "node-b", "pid": 4242, "start": "2026-01-01T00:00:00+00:00",
              "token": "f" * 32, "machine": "node-b|boot|pid:[1]", "proc_start": "",
              "job": "", "attempt": 0, **fields}
    path = folder / LOCK_NAME
    path.write_text(json.dumps(holder) + "\n")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _snapshot_of(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run") as first:
        with pytest.raises(RunHeld) as info:
            RunLock(tmp_path / "run").acquire()
        message = str(info.value)
        assert f"host {socket.gethostname()}, pid {os.getpid()}, started {first.me.start}" \
            in message
        assert "\n" not in message
    assert not (tmp_path / "run" / LOCK_NAME).exists()  # released
    RunLock(tmp_path / "run").acquire().release()  # free again


def test_a_refused_claim_touches_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _write_lock(run, age_s=5.0)
    (run / "config.json").write_text("{}")
    before = _snapshot_of(run)
    dir_mtime = run.stat().st_mtime_ns
    with pytest.raises(RunHeld, match="host node-b, pid 4242"):
        RunLock(run, stale_s=60).acquire()
    assert _snapshot_of(run) == before
    assert run.stat().st_mtime_ns == dir_mtime


@pytest.mark.parametrize(("age_s", "taken"), [(5.0, False), (90.0, True)])
def test_another_hosts_lock_is_stale_after_the_timeout(tmp_path: Path, age_s: float,
                                                       taken: bool) -> None:
    _write_lock(tmp_path, age_s=age_s)
    lock = RunLock(tmp_path, stale_s=60)
    if not taken:
        with pytest.raises(RunHeld, match="last heartbeat 5 s ago"):
            lock.acquire()
        return
    with lock:
        assert Holder.parse((tmp_path / LOCK_NAME).read_text()) == lock.me
    assert [p.name for p in tmp_path.iterdir()] == []  # no claim file left either


def test_a_dead_holder_on_this_machine_is_taken_over_at_once(tmp_path: Path) -> None:
    me = Holder.me()
    _write_lock(tmp_path, host=me.host, machine=me.machine, pid=_dead_pid())
    with RunLock(tmp_path, stale_s=3600) as lock:  # fresh heartbeat, but nobody runs it
        assert lock.holder() == lock.me


def test_a_reused_pid_is_not_mistaken_for_the_holder(tmp_path: Path) -> None:
    me = Holder.me()
    if not me.proc_start:
        pytest.skip("no /proc here")
    # This very process's pid, but a start time that is not this process's.
    _write_lock(tmp_path, host=me.host, machine=me.machine, pid=os.getpid(), proc_start="1")
    RunLock(tmp_path, stale_s=3600).acquire().release()


def test_an_earlier_attempt_of_the_same_elastic_job_is_taken_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_lock(tmp_path, job="job-7", attempt=1)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-7")
    monkeypatch.setattr(distributed, "_group_generation", 2)  # the group formed again
    RunLock(tmp_path, stale_s=3600).acquire().release()
    _write_lock(tmp_path, job="job-7", attempt=2)  # this same attempt: another process
    with pytest.raises(RunHeld):
        RunLock(tmp_path, stale_s=3600).acquire()
    _write_lock(tmp_path, job="other-job", attempt=1)
    with pytest.raises(RunHeld):
        RunLock(tmp_path, stale_s=3600).acquire()


def test_the_heartbeat_refreshes_the_lock(tmp_path: Path) -> None:
    with RunLock(tmp_path, stale_s=0.4, heartbeat_s=0.05) as lock:
        path = tmp_path / LOCK_NAME
        old = time.time() - 100
        os.utime(path, (old, old))
        time.sleep(0.5)
        assert time.time() - path.stat().st_mtime < 0.4
        assert lock.holder() == lock.me


def test_a_holder_that_lost_its_lock_stops_at_once(tmp_path: Path) -> None:
    code = ("import sys, time; from gankit.training.runlock import RunLock; "
            f"RunLock({str(tmp_path)!r}, stale_s=1, heartbeat_s=0.05).acquire(); "
            "print('held', flush=True); time.sleep(30); print('still writing')")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    _write_lock(tmp_path)  # another process took the run over (it judged this one stale)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "still writing" not in out
    assert "lost the lock" in err and "host node-b, pid 4242" in err


def _contend(folder: str, start: float, queue: mp.Queue) -> None:
    time.sleep(max(0.0, start - time.time()))
    try:
        lock = RunLock(folder, stale_s=30)
        lock.acquire()
        queue.put(("won", lock.me.token))
        time.sleep(1.5)  # hold while the others try
        lock.release()
    except RunHeld:
        queue.put(("refused", ""))


@pytest.mark.parametrize("stale", [False, True], ids=["free", "stale"])
def test_of_simultaneous_claimants_exactly_one_wins(tmp_path: Path, stale: bool) -> None:
    if stale:
        _write_lock(tmp_path, age_s=3600)
    ctx = mp.get_context("fork")  # a copy of this process: no imports to repeat
    queue: mp.Queue = ctx.Queue()
    start = time.time() + 0.5
    procs = [ctx.Process(target=_contend, args=(str(tmp_path), start, queue))
             for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sorted(r for r, _ in results) == ["refused", "refused", "refused", "won"]
    assert [p.name for p in tmp_path.iterdir()] == []  # released, no claims left


def test_the_stale_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runlock.STALE_ENV, raising=False)
    assert stale_timeout_s() == runlock.DEFAULT_STALE_S
    monkeypatch.setenv(runlock.STALE_ENV, "7.5")
    assert stale_timeout_s() == 7.5
    assert RunLock("x").heartbeat_s == 7.5 / 4
    monkeypatch.setenv(runlock.STALE_ENV, "soon")
    with pytest.raises(ValueError, match="GANKIT_LOCK_STALE_S='soon' is not a positive"):
        stale_timeout_s()


def test_without_hard_links_an_exclusive_create_still_admits_one_holder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # as on some FUSE and SMB mounts

    monkeypatch.setattr(os, "link", no_links)
    with RunLock(tmp_path) as first:
        assert Holder.parse((tmp_path / LOCK_NAME).read_text()) == first.me
        with pytest.raises(RunHeld):
            RunLock(tmp_path).acquire()
    assert [p.name for p in tmp_path.iterdir()] == []
