"""``gankit prepare SRC -o OUT``: decode an image folder once into an archive to train on."""

from __future__ import annotations

import argparse
import sys

from gankit.data.archive import prepare_folder


def cmd_prepare(args: argparse.Namespace) -> int:
    # TODO(issue 14): poll gankit.training.stop's pending-stop flag here (should_stop=) once
    # it exists; until then Ctrl-C (KeyboardInterrupt) is what interrupts a prepare, and the
    # partial archive is removed either way.
    summary = prepare_folder(args.src, args.out, image_size=args.image_size,
                             workers=args.workers, fmt=args.fmt, progress=not args.quiet)
    c, h, w = summary["shape"]
    spec = f"{summary['format']}:{args.out}"
    labels = f", {summary['classes']} classes" if summary["classes"] else ""
    print(f"wrote {summary['count']} images of {c}x{h}x{w}{labels} to {args.out} "
          f"({summary['bytes'] / 2**20:.1f} MiB); train on it with --data {spec}",
          file=sys.stderr)
    return 0
