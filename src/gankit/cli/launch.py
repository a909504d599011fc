"""``gankit train --nproc N``: start N training processes with torchrun's own launcher."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from gankit.errors import GankitError
from gankit.training.distributed import launched_by_torchrun


def _without_option(argv: Sequence[str], flag: str) -> list[str]:
    """``argv`` less ``flag VALUE`` and ``flag=VALUE``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def launch(argv: Sequence[str], nproc: int, *, script: str | None = None,
           max_restarts: int = 0) -> int:
    """Run ``python -m gankit *argv`` (less ``--nproc`` and ``--max-restarts``) in ``nproc``
    processes via torchrun.

    ``script`` runs that Python file instead of ``gankit``. A standalone rendezvous on this
    machine picks a free port. When a rank fails, torchrun's agent stops the others at once;
    with ``max_restarts`` it then starts all of them again, up to that many times (a training
    run resumes from its newest snapshot), before the run fails.
    Returns 0 when every rank succeeded, 2 when every failed rank exited 2 (a user error the
    rank already printed), else 1 after one line naming the rank that failed first.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if launched_by_torchrun():
        raise GankitError("--nproc was given inside a torchrun launch; drop --nproc and let "
                          "torchrun start the processes.")
    target = [script] if script is not None else ["--module", "gankit"]
    rest = _without_option(_without_option(argv, "--nproc"), "--max-restarts")
    args = parse_args(["--standalone", f"--nproc-per-node={nproc}",
                       f"--max-restarts={max_restarts}", *target, *rest])
    try:
        run(args)
    except ChildFailedError as exc:
        failures = exc.failures
        if all(f.exitcode == 2 for f in failures.values()):
            return 2
        # The agent SIGTERMs the survivors after the first failure: blame a rank it did not stop.
        causes = [r for r, f in failures.items() if f.exitcode != -signal.SIGTERM] or failures
        # A rank killed by a signal (an OOM kill, say) is the cause of the others' failed
        # collectives, even when one of those exited first.
        rank = min(causes, key=lambda r: (failures[r].exitcode >= 0, failures[r].timestamp, r))
        failure = failures[rank]
        how = (f"was killed by {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with status {failure.exitcode}")
        print(f"gankit: error: rank {rank} of {nproc} {how}; torchrun stopped the other ranks "
              "(the failed rank's messages are above).", file=sys.stderr)
        return 1
    return 0
