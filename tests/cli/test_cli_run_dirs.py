"""What ``--out``, ``--resume`` and a run directory accept: the newcomer's first mistakes.

A folder that is not a run, a length shorter than the run, a corrupt newest snapshot: each
ends in one line that says what applies, and the run's files stay as they were.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main
from gankit.training.checkpoint import list_snapshots, load_state

TINY = ["--width", "4", "--z-dim", "4", "--quiet", "--batch-size", "8", "--sample-every", "1000"]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def six(tmp_path: Path) -> Path:
    """A digits run of 6 iterations with snapshots at 3 and 6."""
    out = tmp_path / "run"
    assert main(["train", "--iterations", "6", "--snapshot-every", "3", "--out", str(out),
                 *TINY]) == 0
    return out


def test_a_shorter_length_than_the_run_is_refused_and_changes_nothing(
        six: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(six)
    capsys.readouterr()
    for argv in (["train", "--out", str(six), "--iterations", "4", *TINY],
                 ["train", "--resume", str(six), "--iterations", "4"]):
        assert main(argv) == 2
        line = _one_line(capsys.readouterr().err)
        assert "is already at iteration 6, past --iterations 4" in line, line
        assert "--iterations 6 or more" in line
    assert _files(six) == before  # config.json still says 6 iterations
    assert json.loads((six / "config.json").read_text())["iterations"] == 6


def test_a_shorter_number_of_epochs_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--epochs", "2", "--out", str(out), "--width", "4", "--z-dim", "4",
            "--quiet", "--batch-size", "512", "--sample-every", "1000"]
    assert main(argv) == 0
    config = (out / "config.json").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "is already at epoch 2 (iteration" in line and "past --epochs 1" in line, line
    assert (out / "config.json").read_bytes() == config


def test_the_same_length_again_trains_nothing_and_names_the_snapshot(
        six: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["train", "--resume", str(six), "--iterations", "6"]) == 0
    err = capsys.readouterr().err
    assert "done: 6 iterations" in err and f"snapshot {six / 'snapshot_iter_6.pt'}" in err


def test_the_done_line_names_the_snapshot_loaded_not_a_corrupt_newer_one(
        six: Path, capsys: pytest.CaptureFixture[str]) -> None:
    newest = six / "snapshot_iter_6.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    capsys.readouterr()
    with pytest.warns(UserWarning, match="snapshot_iter_6.pt"):
        assert main(["train", "--resume", str(six), "--iterations", "3"]) == 0
    done = [line for line in capsys.readouterr().err.splitlines() if line.startswith("done:")]
    assert len(done) == 1 and done[0].endswith(f"snapshot {six / 'snapshot_iter_3.pt'}"), done


def test_corrupt_snapshot_warnings_are_one_line_that_fits_the_command(
        six: Path, gankit_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """In a fresh interpreter (pytest records warnings instead of printing them)."""
    newest = six / "snapshot_iter_6.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    for command in (["sample", str(six), "-n", "4", "-o", str(six.parent / "s.npy")],
                    ["train", "--resume", str(six), "--iterations", "7"]):
        proc = gankit_cli(*command, timeout=120, check=0)
        warned = [line for line in proc.stderr.splitlines() if "snapshot_iter_6.pt" in line]
        assert len(warned) == 1, proc.stderr
        assert warned[0].startswith(f"gankit {command[0]}: warning: skipping {newest}: it is "
                                    "corrupt ("), warned
        assert warned[0].endswith("; trying the snapshot before it."), warned
        assert "UserWarning" not in proc.stderr and ".py:" not in proc.stderr, proc.stderr
        assert "resume from an earlier snapshot" not in proc.stderr
    assert np.load(six.parent / "s.npy").shape == (4, 1, 8, 8)
    assert load_state(six / "snapshot_iter_7.pt")["updater"]["iteration"] == 7


@pytest.mark.parametrize("command", [
    ["sample", "RUN", "-o", "OUT/x.png"],
    ["eval", "RUN"],
    ["train", "--resume", "RUN"],
])
def test_a_missing_run_directory_is_not_a_gankit_run_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    missing = tmp_path / "nonexistent"
    argv = [a.replace("RUN", str(missing)).replace("OUT", str(tmp_path)) for a in command]
    capsys.readouterr()
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (f"gankit {argv[0]}: error: {missing} is not a gankit run directory (no "
                    "config.json); give the --out directory of an earlier gankit train."), line
    assert not missing.exists()


def test_out_in_a_folder_of_other_files_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(photos / f"{i}.png")
    before = _files(photos)
    capsys.readouterr()
    assert main(["train", "--iterations", "1", "--out", str(photos), *TINY]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{photos} holds files (0.png and 2 more) but is not a gankit run directory" in line
    assert "choose a new or empty --out" in line
    assert _files(photos) == before and sorted(p.name for p in photos.iterdir()) == [
        "0.png", "1.png", "2.png"]


def test_out_in_an_empty_folder_or_one_with_hidden_leftovers_trains(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "leftover").mkdir()
    (tmp_path / "leftover" / ".write-test-abc").write_bytes(b"")  # a killed run's probe
    for out in (empty, tmp_path / "leftover"):
        assert main(["train", "--iterations", "1", "--out", str(out), *TINY]) == 0
        assert [p.name for p in list_snapshots(out)] == ["snapshot_iter_1.pt"]
