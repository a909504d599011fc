"""`gankit train`, `--resume` and `gankit sample` end to end, and bad input exiting 2."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.extensions.log_report import read_log
from gankit.training.checkpoint import list_snapshots, load_state

FAST = ["--quiet", "--width", "8", "--z-dim", "8"]


def test_train_resume_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--data", "digits", "--iterations", "30", "--batch-size", "32",
            "--out", str(out), "--log-every", "10", "--snapshot-every", "20",
            "--sample-every", "15", *FAST]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["iterations"] == 30 and config["loss"] == "ns" and config["recipe"] == "dcgan"
    log = read_log(out / "log.json")
    assert [e["iteration"] for e in log] == [10, 20, 30]
    assert all(np.isfinite(e["gen/loss"]) and np.isfinite(e["dis/loss"]) for e in log)
    assert (out / "loss.png").stat().st_size > 0
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "iter_0000015.png", "iter_0000030.png"]
    assert [p.name for p in list_snapshots(out)] == ["snapshot_iter_20.pt", "snapshot_iter_30.pt"]

    # Continue the same run for 15 more iterations.
    assert main(["train", "--resume", str(out), "--iterations", "45", "--quiet"]) == 0
    log = read_log(out / "log.json")
    assert [e["iteration"] for e in log] == [10, 20, 30, 40, 45]
    assert load_state(list_snapshots(out)[-1])["updater"]["iteration"] == 45

    npy, png = tmp_path / "s.npy", tmp_path / "s.png"
    assert main(["sample", str(out), "-n", "12", "--seed", "3", "-o", str(npy)]) == 0
    arr = np.load(npy)
    assert arr.shape == (12, 1, 8, 8) and arr.min() >= 0 and arr.max() <= 16  # digits' range
    again = tmp_path / "again.npy"
    assert main(["sample", str(out), "-n", "12", "--seed", "3", "-o", str(again)]) == 0
    np.testing.assert_array_equal(arr, np.load(again))
    assert main(["sample", str(out), "-n", "9", "-o", str(png)]) == 0
    assert Image.open(png).size[0] > 8


def test_points_run_and_scatter(tmp_path: Path) -> None:
    out = tmp_path / "ring"
    assert main(["train", "--data", "ring8", "--iterations", "20", "--out", str(out),
                 "--quiet", "--width", "16"]) == 0
    assert (out / "samples" / "iter_0000020.png").exists()
    npy = tmp_path / "p.npy"
    assert main(["sample", str(out), "-n", "50", "-o", str(npy)]) == 0
    assert np.load(npy).shape == (50, 2)


def test_toml_config_and_cli_override(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\ndata = "digits"\nloss = "hinge"\niterations = 5\nbatch-size = 16\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--iterations", "4", "--out", str(out),
                 *FAST]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["loss"], config["iterations"], config["batch_size"]) == ("hinge", 4, 16)


BAD = [
    (["--loss", "nope"], "unknown loss 'nope'"),
    (["--epochs", "-3"], "--epochs"),
    (["--epochs", "two"], "not a whole number"),
    (["--lr-gen", "nan"], "--lr-gen"),
    (["--data", "folder:/does/not/exist"], "/does/not/exist"),
    (["--data", "mystery"], "unknown data spec"),
    (["--recipe", "stylegan9"], "unknown recipe"),
    (["--batch-size", "5000"], "batch size 5000"),
    (["--penalty", "r5"], "penalty"),
    (["--epochs", "2", "--iterations", "3"], "not both"),
    (["--log-every", "often"], "--log-every"),
    (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "tpu"], "device"),
    (["--beta1", "1.5"], "--beta1"),
    (["--norm", "fancy"], "fancy"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         extra: list[str], message: str) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) if _argparse_level(extra) else _no_raise() as exc_info:
        code = main(["train", "--data", "digits", "--iterations", "2", "--out", str(out),
                     *FAST, *extra])
    code = exc_info.value.code if exc_info is not None and hasattr(exc_info, "value") else code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not list_snapshots(out)


def _argparse_level(extra: list[str]) -> bool:
    return extra[:2] in (["--epochs", "-3"], ["--epochs", "two"], ["--lr-gen", "nan"])


class _no_raise:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_resume_without_snapshot_and_existing_run(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--resume", str(empty)]) == 2
    assert "not a gankit run directory" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["train", "--iterations", "2", "--out", str(out), *FAST]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    # The same command again continues the run; it is finished, so nothing changes.
    assert main(["train", "--iterations", "2", "--out", str(out), *FAST]) == 0
    assert "resuming from" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing touched
    for argv in (["--resume", str(out)], ["--out", str(out), "--iterations", "2"]):
        assert main(["train", *argv, "--loss", "hinge"]) == 2
        assert "--loss is 'hinge' but the run in" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    assert main(["train", "--iterations", "2", "--out", str(ro / "run"), *FAST]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", "--iterations", "2", "--out", str(f), *FAST]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert f.read_text() == "x"


def test_python_dash_m_gankit(tmp_path: Path, gankit_cli: Any) -> None:
    proc = gankit_cli("train", "--data", "nope", "--out", str(tmp_path / "r"), timeout=120,
                      check=2)
    assert proc.stderr.strip().startswith("gankit train: error: unknown data spec")
