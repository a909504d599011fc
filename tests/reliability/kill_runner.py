"""Runs `gankit train` like the CLI, optionally dying (SIGKILL) in the middle of a snapshot write.

Usage: python kill_runner.py KILL_AT_WRITE|0 -- gankit train arguments...
KILL_AT_WRITE=k: the k-th snapshot data write is cut off half-way by SIGKILL.
"""

import os
import signal
import sys

from gankit import cli
from gankit.training import checkpoint

kill_at = int(sys.argv[1])
argv = sys.argv[sys.argv.index("--") + 1:]
writes = 0
real_write_atomic = checkpoint.write_atomic


def dying_write_atomic(path, data, **kwargs):
    global writes
    if str(path).endswith(".pt"):
        writes += 1
        if writes == kill_at:
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            with open(tmp, "wb") as f:  # half a file, then the process is gone
                f.write(data[: len(data) // 2])
                f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    real_write_atomic(path, data, **kwargs)


if kill_at:
    checkpoint.write_atomic = dying_write_atomic
sys.exit(cli.main(argv))
