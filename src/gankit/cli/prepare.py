"""``gankit prepare SRC -o OUT``: decode an image folder once into an archive to train on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gankit.data.archive import prepare_folder
from gankit.errors import GankitError
from gankit.training import stop


def archive_format(out: str, fmt: str | None) -> str:
    """The format to write to ``out``: ``fmt``, else zip for a name ending in .zip, else
    shards; a shards folder named .zip is refused (``zip:`` would not read it)."""
    is_zip_name = Path(out).suffix.lower() == ".zip"
    if fmt is None:
        return "zip" if is_zip_name else "shards"
    if fmt == "shards" and is_zip_name:
        raise GankitError(f"--format shards writes a folder, but {out} is named as a zip file; "
                          "name it without .zip or give --format zip.")
    return fmt


def cmd_prepare(args: argparse.Namespace) -> int:
    fmt = archive_format(args.out, args.fmt)
    # SIGINT/SIGTERM/SIGUSR1 set gankit's stop flag, which prepare_folder polls about once a
    # second; it then removes its partial output, so no archive is left under OUT's name.
    with stop.handle_signals():
        try:
            summary = prepare_folder(args.src, args.out, image_size=args.image_size,
                                     workers=args.workers, fmt=fmt,
                                     progress=not args.quiet, should_stop=stop.stop_requested)
        except GankitError:
            signum = stop.pending_signal()
            if signum is None:
                raise
            print(f"\ngankit prepare: stopped by signal {signum}; nothing was written to "
                  f"{args.out}", file=sys.stderr)
            return 128 + signum
    c, h, w = summary["shape"]
    spec = f"{summary['format']}:{args.out}"
    labels = f", {summary['classes']} classes" if summary["classes"] else ""
    print(f"wrote {summary['count']} images of {c}x{h}x{w}{labels} to {args.out} "
          f"({summary['bytes'] / 2**20:.1f} MiB); train on it with --data {spec}",
          file=sys.stderr)
    return 0
