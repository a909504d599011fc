"""``gankit train | sample | eval | prepare``: the command line.

Every mistake a user can make ends in one line on stderr and exit status 2; nothing that
exists in a run directory is overwritten or removed by a failed command. Nothing outside this
package imports it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gankit.cli.parser import build_parser
from gankit.errors import GankitError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _one_line_warnings(args.command):
        return _run(args, argv)


@contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """gankit's own warnings as one line on stderr (``gankit train: warning: ...``), not
    Python's two lines with the file and line of the ``warnings.warn`` call."""
    package = Path(__file__).resolve().parent.parent
    original = warnings.formatwarning

    def formatwarning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
        if Path(filename).resolve().is_relative_to(package):
            text = " ".join(str(message).split())
            return f"gankit {command}: warning: {text}\n"
        return original(message, category, filename, lineno, line)

    warnings.formatwarning = formatwarning
    try:
        yield
    finally:
        warnings.formatwarning = original


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    try:
        if args.command == "train" and getattr(args, "nproc", 1) > 1:
            from gankit.cli.launch import launch

            return launch(sys.argv[1:] if argv is None else list(argv), args.nproc)
        if args.command == "train":
            from gankit.cli.train import cmd_train

            return cmd_train(args)
        if args.command == "prepare":
            from gankit.cli.prepare import cmd_prepare

            return cmd_prepare(args)
        if args.command == "sample":
            from gankit.cli.sample import cmd_sample

            return cmd_sample(args)
        from gankit.cli.eval import cmd_eval

        return cmd_eval(args)
    except GankitError as exc:
        print(f"gankit {args.command}: error: {exc}", file=sys.stderr)
        return 2
