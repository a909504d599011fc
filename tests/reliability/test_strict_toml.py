"""TOML configs are strict: types per option (from TrainConfig's groups), unknown tables,
duplicates."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from gankit.cli import main
from gankit.cli.config import option_types


def _wrong_value(hint: Any) -> str:
    """A TOML literal of the wrong type for an option annotated ``hint``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    if typing.get_origin(base) is dict:
        return "3"
    return {bool: '"no"', int: '"3"', float: '"0.5"', str: "3"}[base]


TYPES = option_types()  # every option's type, from TrainConfig's groups


@pytest.mark.parametrize("name", sorted(TYPES))
@pytest.mark.parametrize("spelling", ["dash", "underscore"])
def test_every_option_with_a_wrong_type_exits_2_naming_key_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, spelling: str) -> None:
    key = name.replace("_", "-") if spelling == "dash" else name
    cfg = tmp_path / "c.toml"
    filler = "z-dim = 4" if name != "z_dim" else "seed = 1"
    cfg.write_text(f'# a comment\n[train]\n{filler}\n{key} = {_wrong_value(TYPES[name])}\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"line 4: {key} must be" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(("text", "message"), [
    ('[train]\nconditional = "no"\n', 'line 2: conditional must be true or false'),
    ('[train]\nseed = 1\n\n[other]\nx = 1\n', "line 4: unknown table [other] beside [train]"),
    ('[train]\nbatch-size = 16\nseed = 2\nbatch_size = 32\n',
     "line 4: 'batch_size' and 'batch-size' (line 2) are the same option"),
    ('seed = 1\nbach_size = 16\n', "line 2: unknown option 'bach_size'"),
    ('seed = 1\n[extras]\nx = 1\n', "line 2: unknown table [extras]"),
    ('[train]\nweights = {kl = "big"}\n', "line 2: weights must be a table of numbers"),
])
def test_config_mistakes_name_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_correct_config_is_accepted(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\ndata = "digits"\niterations = 2\nbatch-size = 16\nwidth = 4\n'
                   'conditional = true\nlr-gen = 1e-3\nlr_dis = 0\n\n[train.weights]\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet",
                 "--sample-every", "1000"]) == 0


@pytest.mark.parametrize(("text", "message"), [
    # the kind of the wrong value is named as it is, in TOML's spelling
    ("epochs = 2.5\n", "line 1: epochs must be a whole number (not a fraction), got 2.5."),
    ("epochs = true\n", "line 1: epochs must be a whole number (not true or false), got true."),
    ('epochs = "3"\n', 'line 1: epochs must be a whole number (not a string), got "3".'),
    ("lr-gen = false\n", "line 1: lr-gen must be a number (not true or false), got false."),
    ("conditional = 1\n", "line 1: conditional must be true or false, got 1."),
])
def test_a_wrong_type_is_named_for_the_value_given(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"config file {cfg} {message}" in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("seed = 1\nbatch-size = -4\n", "line 2: batch-size must be a positive integer, got -4."),
    ("[train]\nlr_dis = -0.5\n", "line 2: lr_dis must be a non-negative number, got -0.5."),
    ("[train]\nseed = 1\nbeta2 = 1.5\n", "line 3: beta2 must be in [0, 1), got 1.5."),
    ('snapshot-every = "5x"\n', "line 1: snapshot-every '5x' is not an interval"),
    ('loss = "nope"\n', "line 1: loss: unknown loss 'nope'; choose one of"),
])
def test_a_value_out_of_range_names_file_line_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"config file {cfg} {message}" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_options_that_depend_on_each_other_are_checked_after_the_command_line(
        tmp_path: Path) -> None:
    """A start of the decay in the file with the decay given on the command line is valid."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("lr-decay-start = 0.5\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--lr-decay", "linear", "--iterations", "1",
                 "--width", "4", "--quiet", "--out", str(out)]) == 0
