"""``python -m gankit``: the command line."""

import os
import sys
import traceback

from gankit.cli import main

if __name__ == "__main__":
    ranks = (os.environ.get("WORLD_SIZE") or "1") not in ("0", "1")
    try:
        code = main()
    except BaseException:
        if not ranks:
            raise
        traceback.print_exc()
        code = 1
    if ranks or code >= 128:
        # Leave without the interpreter's teardown. Under torchrun its C++ destructors of the
        # process group's threads can abort a rank that finished cleanly ("terminate called
        # without an active exception") or hang one that failed, keeping torchrun waiting
        # (cleanup() has already synced a clean finish). Stopped by a signal (128 + N):
        # everything is written, and on a loaded machine torch's teardown took 10+ s, eating
        # the grace period before the scheduler's SIGKILL.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
