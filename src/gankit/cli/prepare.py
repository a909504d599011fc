"""``gankit prepare SRC -o OUT``: decode an image folder once into an archive to train on."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from gankit.data.archive import prepare_folder


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through prepare_folder, which removes its partial output


def cmd_prepare(args: argparse.Namespace) -> int:
    # TODO(issue 14): poll gankit.training.stop's pending-stop flag (should_stop=) once it
    # exists; until then SIGINT/SIGTERM interrupt a prepare here, and either way no partial
    # archive is left under the output's name.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = prepare_folder(args.src, args.out, image_size=args.image_size,
                                 workers=args.workers, fmt=args.fmt, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ngankit prepare: interrupted; nothing was written to {args.out}",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    c, h, w = summary["shape"]
    spec = f"{summary['format']}:{args.out}"
    labels = f", {summary['classes']} classes" if summary["classes"] else ""
    print(f"wrote {summary['count']} images of {c}x{h}x{w}{labels} to {args.out} "
          f"({summary['bytes'] / 2**20:.1f} MiB); train on it with --data {spec}",
          file=sys.stderr)
    return 0
