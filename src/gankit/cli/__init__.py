"""``gankit train | sample | eval | prepare``: the command line.

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
        restarts = getattr(args, "max_restarts", 0)
        if args.command == "train" and getattr(args, "nproc", 1) > 1:
            from gankit.cli.launch import launch
            from gankit.cli.train import resolve_config
            from gankit.training.runlock import refuse_if_held

            # A run held by another process is refused here, once, not by every rank of
            # every restart.
            refuse_if_held(resolve_config(args)[0].out)

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
        from gankit.cli.eval import cmd_eval

        return cmd_eval(args)
    except GankitError as exc:
        print(f"gankit {args.command}: error: {exc}", file=sys.stderr)
        return 2
