"""``python -m gankit``: the command line."""

import os
import sys

from gankit.cli import main

if __name__ == "__main__":
    code = main()
    if (os.environ.get("WORLD_SIZE") or "1") not in ("0", "1"):
        # One of several torchrun ranks: leave without the interpreter's teardown, whose C++
        # destructors of the process group's threads can abort a rank that finished cleanly
        # ("terminate called without an active exception"). cleanup() has already synced.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
