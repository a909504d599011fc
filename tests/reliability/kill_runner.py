"""Runs `gankit train` like the CLI, then dies by SIGKILL at a chosen moment.

Usage: python kill_runner.py WHEN -- gankit train arguments...
WHEN: "none"; "write:K", half-way through writing the K-th snapshot's data; or "iter:K",
in the middle of update K (after its batch is fetched, before the optimizer steps).
"""

import os
import signal
import sys

from gankit import cli
from gankit.training import checkpoint
from gankit.training.updater import Updater

when, _, k = sys.argv[1].partition(":")
argv = sys.argv[sys.argv.index("--") + 1:]


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if when == "write":
    real_write_atomic = checkpoint.write_atomic
    writes = 0

    def dying_write_atomic(path, data, **kwargs):
        global writes
        if str(path).endswith(".pt"):
            writes += 1
            if writes == int(k):
                tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
                with open(tmp, "wb") as f:  # half a file, then the process is gone
                    f.write(data[: len(data) // 2])
                    f.flush()
                die()
        real_write_atomic(path, data, **kwargs)

    checkpoint.write_atomic = dying_write_atomic
elif when == "iter":
    real_next_batch = Updater.next_batch

    def dying_next_batch(self, name="main"):
        batch = real_next_batch(self, name)
        if self.iteration + 1 == int(k):
            die()
        return batch

    Updater.next_batch = dying_next_batch
sys.exit(cli.main(argv))
