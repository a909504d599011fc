"""docs/cli.md documents every option of every subcommand of the parser, in its own section."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from gankit.cli.parser import build_parser

CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the parser has no subcommands")


def sections(text: str) -> dict[str, str]:
    """``## gankit NAME`` section bodies, each up to the next ``## `` heading."""
    parts = re.split(r"^## gankit (\w+)[ \t]*$", text, flags=re.M)
    return {name: re.split(r"^## ", body, flags=re.M)[0]
            for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def documented(option: str, body: str) -> bool:
    """``option`` appears inside a code span of ``body`` as a whole word (``-n`` is not
    matched by ``-n-dis`` or ``--n``)."""
    word = re.compile(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])")
    return any(word.search(span) for span in re.findall(r"`([^`]+)`", body))


def undocumented(parser: argparse.ArgumentParser, text: str) -> dict[str, list[str]]:
    docs = sections(text)
    missing: dict[str, list[str]] = {}
    for name, sub in subcommands(parser).items():
        body = docs.get(name, "")
        options = [s for a in sub._actions for s in a.option_strings if s not in ("-h", "--help")]
        missing[name] = [o for o in options if not documented(o, body)] if body else ["(section)"]
    return {k: v for k, v in missing.items() if v}


def test_every_option_of_every_subcommand_is_in_docs_cli():
    parser = build_parser()
    assert set(subcommands(parser)) >= {"train", "sample", "eval", "prepare"}
    assert undocumented(parser, CLI_DOC.read_text()) == {}


def test_a_missing_option_or_section_is_caught():
    parser = argparse.ArgumentParser(prog="gankit")
    sub = parser.add_subparsers()
    one = sub.add_parser("one")
    one.add_argument("--n-dis")
    one.add_argument("-n")
    sub.add_parser("two").add_argument("--quiet")
    text = "## gankit one\n\n| `--n-dis N` | steps |\n\n## Other\n\n`-n` here is outside\n"
    assert undocumented(parser, text) == {"one": ["-n"], "two": ["(section)"]}
