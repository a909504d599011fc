"""``--augment``, ``--lecam``, ``--bcr`` and ``--train-fraction`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.data import load_dataset, take_fraction
from gankit.extensions.log_report import read_log
from gankit.training.checkpoint import list_snapshots, load_state

FAST = ["--quiet", "--width", "8", "--z-dim", "8"]

BAD = [
    (["--augment", "bogus"], "is not none, diffaug[:OPS], ada[:TARGET[:KIMG]] or ada:fixed"),
    (["--augment", "diffaug:flip"], "DiffAugment ops are color,translation,cutout"),
    (["--augment", "ada:1.5"], "the ADA target must be a number in (0, 1)"),
    (["--augment", "ada:0.6:-3"], "ADA's speed"),
    (["--train-fraction", "0"], "--train-fraction must be in (0, 1]"),
    (["--train-fraction", "1.5"], "--train-fraction must be in (0, 1]"),
    (["--recipe", "vaegan", "--augment", "diffaug"], "--augment does not apply to the vaegan"),
    (["--recipe", "vaegan", "--lecam", "0.3"], "--lecam does not apply to the vaegan"),
    (["--recipe", "cyclegan", "--bcr", "10"], "--bcr does not apply to the cyclegan"),
    (["--recipe", "cyclegan", "--augment", "ada"], "--augment does not apply to the cyclegan"),
    (["--data", "ring8", "--augment", "diffaug"], "does not apply to the 2-D point data"),
    (["--data", "ring8", "--bcr", "1"], "does not apply to the 2-D point data"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          extra: list[str], message: str) -> None:
    out = tmp_path / "run"
    code = main(["train", "--data", "digits", "--iterations", "2", "--out", str(out), "--quiet",
                 "--width", "8", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1, err
    assert not list_snapshots(out) and not (out / "config.json").exists()


@pytest.mark.parametrize("flag", ["--lecam", "--bcr", "--train-fraction"])
def test_negative_weights_are_refused_by_the_parser(flag: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", flag, "-1"])
    assert exc.value.code == 2
    assert "must be a finite, non-negative number" in capsys.readouterr().err


def test_options_are_recorded_saved_and_kept_on_resume(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--data", "digits", "--iterations", "6", "--batch-size", "16", "--out",
            str(out), "--augment", "ada:0.6:1", "--lecam", "0.3", "--bcr", "10",
            "--train-fraction", "0.1", "--snapshot-every", "3", "--sample-every", "6", *FAST]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["augment"], config["lecam"], config["bcr"], config["train_fraction"]) == \
        ("ada:0.6:1", 0.3, 10.0, 0.1)
    log = read_log(out / "log.json")
    assert {"aug/p", "aug/rt", "dis/lecam", "dis/bcr"} <= set(log[-1])
    assert log[-1]["epoch"] == 0  # 150 images in batches of 16: 9 per epoch, 6 iterations
    state = load_state(list_snapshots(out)[-1])
    updater = state["updater"]
    assert updater["augment"]["p"].item() == pytest.approx(log[-1]["aug/p"])
    assert updater["terms"]["dis/lecam"]["started"]
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--augment", "diffaug"]) == 2
    assert "--augment is 'diffaug' but the run in" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--iterations", "8", "--quiet"]) == 0


def test_lecam_applies_to_points(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", "ring8", "--iterations", "3", "--lecam", "0.1", "--out",
                 str(out), "--quiet", "--sample-every", "3"]) == 0
    assert "dis/lecam" in read_log(out / "log.json")[-1]


def test_take_fraction_is_fixed_stratified_and_ordered() -> None:
    train = load_dataset("digits", "train")
    part = take_fraction(train, 0.1)
    counts = torch.bincount(train.y, minlength=10)
    want = torch.ceil(counts * 0.1).long()
    assert torch.equal(torch.bincount(part.y, minlength=10), want)
    assert 140 <= len(part) <= 160
    again = take_fraction(load_dataset("digits", "train"), 0.1)
    assert torch.equal(part.x, again.x) and torch.equal(part.y, again.y)
    rows = {tuple(r.tolist()) for r in train.x.flatten(1)}
    assert all(tuple(r.tolist()) in rows for r in part.x.flatten(1))
    assert take_fraction(train, None) is train and take_fraction(train, 1.0) is train
