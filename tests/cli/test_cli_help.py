"""``gankit --help``: every option says what it does, and the data list is the library's."""

from __future__ import annotations

import argparse
import re

import pytest

from gankit.cli import build_parser
from gankit.data import load_dataset
from gankit.errors import GankitError


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_checked() -> None:
    """The list below is every subcommand of the parser (export was missing from it)."""
    assert sorted(_subparsers()) == sorted(COMMANDS)


COMMANDS = ["train", "sample", "eval", "prepare", "export"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_text(command: str) -> None:
    missing = [a.option_strings or [a.dest] for a in _subparsers()[command]._actions
               if not (a.help or "").strip()]
    assert not missing, f"gankit {command}: no help for {missing}"


def test_the_data_help_lists_every_spec_the_library_accepts() -> None:
    with pytest.raises(GankitError) as info:
        load_dataset("no-such-data")
    names = re.findall(r"'([\w-]+)(?::\w+)?'", str(info.value).split("use one of", 1)[1])
    assert "shapes32" in names and "folder" in names
    help_text = next(a.help for a in _subparsers()["train"]._actions
                     if "--data" in a.option_strings)
    assert help_text is not None
    for name in names:
        assert re.search(rf"(^|[\s|]){re.escape(name)}($|[\s|:])", help_text), (name, help_text)


def test_help_prints_for_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in COMMANDS:
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args([command, "--help"])
        assert info.value.code == 0
    assert "--epochs" in capsys.readouterr().out
