"""``gankit train | sample | eval | prepare | export``: the command line.

Every mistake a user can make ends in one line on stderr and exit status 2; nothing that
exists in a run directory is overwritten or removed by a failed command. Nothing outside this
package imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gankit.cli.parser import build_parser
from gankit.errors import GankitError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
        if args.command == "export":
            from gankit.cli.export import cmd_export

            return cmd_export(args)
        from gankit.cli.eval import cmd_eval

        return cmd_eval(args)
    except GankitError as exc:
        print(f"gankit {args.command}: error: {exc}", file=sys.stderr)
        return 2
