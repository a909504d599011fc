"""``python -m gankit``: the command line."""

import os
import sys
import traceback

from gankit.cli import main

if __name__ == "__main__":
    if (os.environ.get("WORLD_SIZE") or "1") in ("0", "1"):
        raise SystemExit(main())
    # One of several torchrun ranks: leave without the interpreter's teardown, whose C++
    # destructors of the process group's threads can abort a rank that finished cleanly
    # ("terminate called without an active exception") or hang one that failed, leaving
    # torchrun waiting for it. cleanup() has already synced a clean finish.
    try:
        code = main()
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
