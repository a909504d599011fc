"""One writer per run directory: a lock file with a heartbeat.

``RUN/.gankit.lock`` names the process that trains the run: its host, pid, start time and a
random token, as one JSON object. What this relies on, so that it also holds on a network
file system without POSIX locks (``fcntl``/``flock`` are not used):

- **An exclusive create.** A claim is written in full to a private file, then linked to the
  lock's name (``os.link`` fails when the name exists, atomically, on local disks and NFS);
  where hard links are not supported, ``open(O_CREAT | O_EXCL)``. Either way one claimant wins
  a free directory and a reader never sees half a lock file.
- **A heartbeat.** The holder's daemon thread refreshes the lock's mtime every
  ``heartbeat_s`` (a quarter of the stale timeout, at most 15 s) and checks that the lock
  still holds its token; a holder that finds another token has lost the run and ends at
  once (exit status 1) rather than write beside the new holder.
- **A stale timeout** (``DEFAULT_STALE_S`` = 120 s, or ``GANKIT_LOCK_STALE_S``): a lock
  whose mtime is older than that belongs to a dead holder (a lost node). This compares the
  file system's mtime with this host's clock, so the hosts' clocks must agree to well within
  the timeout (NTP), and NFS attribute caching (``actimeo``, 60 s at most by default) must be
  shorter than it.
- **The pid on the same machine.** A holder on this machine (same host name, boot id and pid
  namespace) that is no longer running (the pid is gone, or now belongs to a process started
  later) is stale at once, without waiting for the timeout.
- **The same elastic job.** Under torchrun a lock taken by an earlier attempt of the same job
  (the same ``TORCHELASTIC_RUN_ID``, an older process group: ``group_generation``) is taken
  over at once, wherever rank 0 now runs: the elastic agents stop every worker of an attempt
  before they start the next. (So two jobs must not share one ``--rdzv-id``.)

A stale lock is taken over by renaming a fresh claim over it (atomic), after checking that
the lock still holds the stale claim, and the takeover is confirmed by reading the lock again
after a settling pause. Only rank 0 of a distributed run holds the lock (``claim_run``).
Readers (``gankit sample``, ``gankit eval``) take no lock: every file they read is replaced
by an atomic rename.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.errors import GankitError
from gankit.training.distributed import (
    all_gather_object,
    env_seconds,
    group_generation,
    launched_by_torchrun,
    rank_and_world_size,
)

__all__ = ["DEFAULT_STALE_S", "LOCK_NAME", "STALE_ENV", "Holder", "RunHeld", "RunLock",
           "claim_run", "refuse_if_held", "stale_timeout_s"]

LOCK_NAME = ".gankit.lock"
DEFAULT_STALE_S = 120.0
STALE_ENV = "GANKIT_LOCK_STALE_S"
_SETTLE_S = 0.2  # pause between a takeover's rename and the re-read that confirms it


class RunHeld(GankitError):
    """The run directory is held by another live process."""


def stale_timeout_s() -> float:
    """Seconds without a heartbeat after which a lock is stale (``GANKIT_LOCK_STALE_S``)."""
    return env_seconds(STALE_ENV, DEFAULT_STALE_S)


def _read_first_line(path: str) -> str:
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return ""


def _machine() -> str:
    """This machine and pid namespace: pids compare only between processes that share it."""
    boot = _read_first_line("/proc/sys/kernel/random/boot_id")
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = ""
    return f"{socket.gethostname()}|{boot}|{ns}"


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot ("" where /proc has none)."""
    text = _read_first_line(f"/proc/{pid}/stat")
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    fields = text.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _pid_runs(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user has it
        pass
    return not started or _process_start(pid) in ("", started)


@dataclass(frozen=True)
class Holder:
    """What a lock file says about the process that holds the run."""

    host: str
    pid: int
    start: str
    token: str
    machine: str = ""
    proc_start: str = ""
    job: str = ""
    attempt: int = 0

    @classmethod
    def me(cls) -> Holder:
        now = datetime.datetime.now(datetime.timezone.utc)
        job = os.environ.get("TORCHELASTIC_RUN_ID", "")
        return cls(host=socket.gethostname(), pid=os.getpid(),
                   start=now.isoformat(timespec="seconds"), token=secrets.token_hex(16),
                   machine=_machine(), proc_start=_process_start(os.getpid()),
                   job="" if job in ("", "none") else job, attempt=group_generation())

    def to_bytes(self) -> bytes:
        return (json.dumps(self.__dict__) + "\n").encode()

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(host=str(data["host"]), pid=int(data["pid"]), start=str(data["start"]),
                       token=str(data["token"]), machine=str(data.get("machine", "")),
                       proc_start=str(data.get("proc_start", "")), job=str(data.get("job", "")),
                       attempt=int(data.get("attempt", 0)))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.start}"


class RunLock:
    """The lock of one run directory, held by this process between ``acquire`` and
    ``release`` (also a context manager)."""

    def __init__(self, folder: str | Path, stale_s: float | None = None,
                 heartbeat_s: float | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.stale_s = stale_s if stale_s is not None else stale_timeout_s()
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else min(15.0,
                                                                           self.stale_s / 4)
        self.me = Holder.me()
        self.held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- reading
    def _read(self) -> tuple[Holder | None, float] | None:
        """``(holder, seconds since its last heartbeat)``; None when there is no lock."""
        try:
            # open, then fstat: on NFS the open revalidates the cached attributes.
            with open(self.path, "rb") as f:
                age = time.time() - os.fstat(f.fileno()).st_mtime
                text = f.read(4096).decode(errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return None
        return Holder.parse(text), age

    def _is_stale(self, holder: Holder | None, age: float) -> bool:
        if holder is None:  # unreadable: only its heartbeat can tell
            return age > self.stale_s
        if holder.token == self.me.token:
            return False
        if holder.machine and holder.machine == self.me.machine:
            return not _pid_runs(holder.pid, holder.proc_start)
        if holder.job and holder.job == self.me.job and holder.attempt < self.me.attempt:
            return True  # an earlier attempt of this elastic job: its agent stopped it
        return age > self.stale_s

    def holder(self) -> Holder | None:
        """The live holder of the run, or None when the run is free or its holder is stale."""
        found = self._read()
        if found is None or self._is_stale(*found):
            return None
        return found[0]

    def _refuse(self, holder: Holder | None, age: float) -> RunHeld:
        who = holder.describe() if holder is not None else f"an unreadable {LOCK_NAME}"
        return RunHeld(
            f"{self.folder} is being trained by another process ({who}; its last heartbeat "
            f"{age:.0f} s ago); wait for it to finish, stop it, or train into another folder."
        )

    # ---------------------------------------------------------------- claiming
    def acquire(self) -> RunLock:
        """Hold the run, or raise ``RunHeld`` naming the live holder. Creates the folder.

        A refused claim writes nothing: the lock is read first, and only a free or stale run
        gets a claim file.
        """
        found = self._read()
        if found is not None and not self._is_stale(*found):
            raise self._refuse(*found)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if found is None and self._create():
                return self._won()
            found = self._read()
            if found is None:  # released meanwhile: one more exclusive try
                if self._create():
                    return self._won()
                found = self._read()
            if found is not None and not self._is_stale(*found):
                raise self._refuse(*found)
            if found is not None and self._take_over(found[0]):
                return self._won()
        except OSError as exc:
            raise GankitError(f"cannot write to the run directory {self.folder} "
                              f"({exc.strerror or exc}); choose a writable folder.") from None
        found = self._read()
        raise self._refuse(*(found or (None, 0.0)))

    def _claim_file(self) -> Path:
        claim = self.folder / f"{LOCK_NAME}.claim-{self.me.token}"
        with open(claim, "wb") as f:
            f.write(self.me.to_bytes())
            f.flush()
            os.fsync(f.fileno())
        return claim

    def _create(self) -> bool:
        """Exclusively create the lock; False when it exists."""
        claim = self._claim_file()
        try:
            os.link(claim, self.path)
            return True
        except OSError as exc:
            # NFS may report a link that its retried request made as failed: the claim's
            # link count tells.
            if os.stat(claim).st_nlink == 2:
                return True
            if isinstance(exc, FileExistsError):
                return False
            # No hard links here: an exclusive create of the lock itself, below.
        finally:
            claim.unlink(missing_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(self.me.to_bytes())
            f.flush()
            os.fsync(f.fileno())
        return True

    def _take_over(self, stale: Holder | None) -> bool:
        claim = self._claim_file()
        try:
            again = self._read()
            same = again is not None and again[0] == stale and self._is_stale(*again)
            if not same:  # someone else took over or released first
                return False
            os.replace(claim, self.path)
        finally:
            claim.unlink(missing_ok=True)
        time.sleep(_SETTLE_S)  # a rival that read the stale claim as we did renames now
        mine = self._read()
        return mine is not None and mine[0] == self.me

    def _won(self) -> RunLock:
        self.held = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="gankit-run-lock",
                                        daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                found = self._read()
                if found is not None and found[0] == self.me:
                    os.utime(self.path)
                    continue
            except OSError:
                continue  # a file system hiccup: the next beat tries again
            if self._stop.is_set():
                return
            print(f"gankit: error: lost the lock on {self.folder} to another process "
                  f"({found[0].describe() if found and found[0] else 'none'}); stopping "
                  "without writing more.", file=sys.stderr, flush=True)
            os._exit(1)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still this process's."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        found = self._read()
        if found is not None and found[0] == self.me:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def refuse_if_held(folder: str | Path) -> None:
    """Raise ``RunHeld`` when a live process holds ``folder``; reads only. A check before the
    costly setup of a one-process run; ``claim_run`` is the claim. Under torchrun it does
    nothing: there rank 0 refuses in ``claim_run``, with every rank told."""
    if launched_by_torchrun():
        return
    lock = RunLock(folder)
    found = lock._read()
    if found is not None and not lock._is_stale(*found):
        raise lock._refuse(*found)


def claim_run(folder: str | Path, held: list[RunLock]) -> bool:
    """Rank 0 takes the lock of ``folder`` and appends it to ``held``; every rank learns
    the outcome. Raises ``GankitError`` on rank 0 when the run is held by another process;
    returns False on the other ranks then (rank 0 has said why), True when the run goes on.
    Collective under torchrun."""
    rank, _ = rank_and_world_size()
    error: GankitError | None = None
    if rank == 0:
        try:
            held.append(RunLock(folder).acquire())
        except GankitError as exc:
            error = exc
    refused = all_gather_object(error is not None)[0]
    if error is not None:
        raise error
    return not refused
