"""``gankit train | sample | eval | prepare | export``: the command line.

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

__all__ = ["build_parser", "error_message", "main"]


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
        restarts = getattr(args, "max_restarts", 0)
        if args.command == "train" and getattr(args, "nproc", 1) > 1:
            from gankit.cli.launch import launch
            from gankit.cli.train import resolve_config
            from gankit.training.runlock import refuse_if_held

            # A run held by another process is refused here, once, not by every rank of
            # every restart.
            refuse_if_held(resolve_config(args)[0].run.out)

            return launch(sys.argv[1:] if argv is None else list(argv), args.nproc,
                          max_restarts=restarts)
        if args.command == "train" and restarts:
            raise GankitError("--max-restarts restarts the processes that --nproc N starts; "
                              "give --nproc 2 or more (under torchrun, give torchrun's own "
                              "--max-restarts).")
        if args.command == "train":
            from gankit.cli.train import cmd_train

            return cmd_train(args)
        if args.command == "prepare":
            from gankit.cli.prepare import cmd_prepare

            return cmd_prepare(args)
        if args.command == "sample":
            from gankit.cli.sample import cmd_sample

            return cmd_sample(args)
        if args.command == "export":
            from gankit.cli.export import cmd_export

            return cmd_export(args)
        from gankit.cli.eval import cmd_eval

        return cmd_eval(args)
    except GankitError as exc:
        print(f"gankit {args.command}: error: {error_message(exc, args.command)}", file=sys.stderr)
        return 2


def error_message(exc: GankitError, command: str) -> str:
    """A library error in the command line's words: the flag that sets the option it names
    (``exc.option``, a Python name, or that of the error it was raised while handling) is
    added when ``command`` has that flag."""
    option, cause = exc.option, exc.__context__
    while option is None and cause is not None:
        option = cause.option if isinstance(cause, GankitError) else None
        cause = cause.__context__
    if option is None:
        return str(exc)
    flag = f"--{option.replace('_', '-')}"
    return f"{exc} (option {flag})" if flag in _flags(command) else str(exc)


def _flags(command: str) -> set[str]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return {f for a in action.choices[command]._actions for f in a.option_strings}
    return set()
