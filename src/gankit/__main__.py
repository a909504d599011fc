import os
import sys

from gankit.cli import main

code = main()
if (os.environ.get("WORLD_SIZE") or "1") not in ("0", "1") or code >= 128:
    # One of several torchrun ranks: leave without the interpreter's teardown, whose C++
    # destructors of the process group's threads can abort a rank that finished cleanly
    # ("terminate called without an active exception"). cleanup() has already synced.
    # Stopped by a signal (128 + N): everything is written, and on a loaded machine the
    # teardown of torch took 10+ s, eating the grace period before the scheduler's SIGKILL.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
