"""A pending stop that long work polls, so SIGTERM is honoured within seconds, not minutes.

The Trainer (and ``gankit eval``) turn SIGINT, SIGTERM and SIGUSR1 into a flag here instead
of stopping at once: the update step in flight always finishes. Work that can run for long
outside the update step (evaluators, metric passes, the feature classifier's training) calls
:func:`check_stop` about once per batch; it raises :class:`StopRequested` when a stop is
pending, the work is abandoned (no partial value reported, no partial file written) and the
Trainer writes its final snapshot and redoes the abandoned work on resume.

Under torch.distributed :func:`check_stop` asks every rank (one small gloo all-reduce per
call), so all ranks abandon the same work at the same poll and no collective is left
waiting; call it only from work that every rank runs with the same number of polls.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from gankit.training.distributed import any_rank, is_distributed

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM) + (
    (signal.SIGUSR1,) if hasattr(signal, "SIGUSR1") else ()
)

_pending: int | None = None


class StopRequested(Exception):
    """Raised by :func:`check_stop` when a stop signal is pending; ``signum`` names it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stop requested by signal {signum}")
        self.signum = signum


def request_stop(signum: int = int(signal.SIGTERM)) -> None:
    """Mark a stop as pending (what the signal handler does; tests may call it)."""
    global _pending
    _pending = int(signum)


def clear() -> None:
    global _pending
    _pending = None


def pending_signal() -> int | None:
    """The signal number of the pending stop on this process, or None."""
    return _pending


def stop_requested() -> bool:
    """True when a stop is pending on this process (no collective: cheap, local)."""
    return _pending is not None


def check_stop(*, uneven: bool = False) -> None:
    """Raise :class:`StopRequested` if a stop is pending (on any rank when distributed).

    ``uneven=True`` marks a loop whose number of polls differs between ranks (each rank's
    share of the samples): a distributed run does not poll there, since the collective would
    pair one rank's poll with another's gather. The next even poll catches the stop.
    """
    if is_distributed():
        if uneven:
            return
        if any_rank(_pending is not None):
            raise StopRequested(_pending if _pending is not None else int(signal.SIGTERM))
    elif _pending is not None:
        raise StopRequested(_pending)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Within the block, the first stop signal sets the flag; a second one stops at once.

    Outside the main thread (where Python cannot install handlers) this does nothing.
    The previous handlers are given back and the flag is cleared on the way in.
    """
    clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if _pending is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        request_stop(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
