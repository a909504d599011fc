"""--lr-decay / --lr-decay-start / --lr-warmup: recorded, validated, resumed bitwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gankit.cli import main
from gankit.extensions.log_report import read_log
from gankit.training.checkpoint import list_snapshots, load_state
from testsupport import assert_runs_equal

RUN = ["--data", "ring8", "--iterations", "40", "--width", "8", "--quiet", "--lr-decay",
       "linear", "--lr-decay-start", "0.25", "--lr-warmup", "5", "--log-every", "10",
       "--snapshot-every", "20", "--keep-snapshots", "5"]


def test_schedule_is_recorded_logged_and_ends_at_zero(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", *RUN, "--log-every", "1", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["lr_decay"], config["lr_decay_start"], config["lr_warmup"]) == (
        "linear", 0.25, 5)
    log = read_log(out / "log.json")
    lrs = [e["gen/lr"] for e in log]
    assert lrs[0] == pytest.approx(1e-3 / 5)  # warm-up: update 1 of 5
    assert lrs[4:10] == pytest.approx([1e-3] * 6)  # full rate until a quarter of the run
    assert lrs[-1] == 0.0 and [e["dis/lr"] for e in log][-1] == 0.0
    groups = load_state(list_snapshots(out)[-1])["updater"]["optimizers"]["gen"]["param_groups"]
    assert groups[0]["lr"] == 0.0


def test_resume_in_a_new_process_is_bitwise(tmp_path: Path, gankit_cli: Any) -> None:
    whole, part = tmp_path / "whole", tmp_path / "part"
    gankit_cli("train", *RUN, "--out", str(whole), check=0)
    # The same run stopped at iteration 20: its directory as it was then.
    shutil.copytree(whole, part)
    for p in part.glob("snapshot_iter_40.pt*"):
        p.unlink()
    gankit_cli("train", "--resume", str(part), "--quiet", check=0)
    assert_runs_equal(whole / "snapshot_iter_40.pt", part / "snapshot_iter_40.pt", "updater",
                      "extensions", "rng")
    a = load_state(whole / "snapshot_iter_40.pt")["updater"]
    assert a["optimizers"]["gen"]["param_groups"][0]["lr"] == 0.0


@pytest.mark.parametrize(("extra", "message"), [
    (["--lr-decay", "cosine"], "unknown --lr-decay 'cosine'; choose one of: none, linear."),
    (["--lr-decay", "linear", "--lr-decay-start", "1"], "--lr-decay-start must be a fraction"),
    (["--lr-decay", "none", "--lr-decay-start", "0.5"], "has no effect with --lr-decay none"),
    # digits: its defaults have no decay (the point data's decay from half-way)
    (["--data", "digits", "--lr-decay-start", "0.5"], "has no effect without a decay"),
    (["--lr-warmup", "50"], "--lr-warmup 50 is longer than the run (20 iterations)"),
])
def test_bad_schedules_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              extra: list[str], message: str) -> None:
    out = tmp_path / "run"
    code = main(["train", "--data", "ring8", "--iterations", "20", "--width", "8", "--quiet",
                 "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not list_snapshots(out) and not (out / "config.json").exists()


def test_negative_warmup_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--lr-warmup", "-1"])
    assert exc.value.code == 2 and "--lr-warmup" in capsys.readouterr().err


def test_a_resumed_run_keeps_its_schedule(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", "ring8", "--iterations", "4", "--width", "8", "--quiet",
                 "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--lr-decay", "none"]) == 2
    assert "--lr-decay is 'none' but the run in" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "decay", "start"), [
    ([], "linear", 0.5),  # the point defaults: decay over the second half
    (["--lr-decay-start", "0.25"], "linear", 0.25),  # a start alone moves the default decay
    (["--lr-decay", "linear"], "linear", None),  # a decay given alone runs from iteration 0
    (["--lr-decay", "none"], "none", None),
])
def test_point_defaults_decay_from_half_way(tmp_path: Path, extra: list[str], decay: str,
                                           start: float | None) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", "ring8", "--iterations", "8", "--width", "8", "--quiet",
                 "--log-every", "1", "--out", str(out), *extra]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["lr_decay"], config["lr_decay_start"]) == (decay, start)
    assert config["penalty_weight"] == 0.1
    lrs = [e.get("gen/lr") for e in read_log(out / "log.json")]
    if decay == "none":
        assert lrs == [None] * 8
    else:
        full = round(8 * (start or 0.0))  # iterations at the full rate before the decay
        assert lrs[:full] == pytest.approx([1e-3] * full) and lrs[-1] == 0.0
        assert all(a > b for a, b in zip(lrs[full:], lrs[full + 1:], strict=False))


@pytest.mark.parametrize(("recipe", "optimizers"), [
    ("dcgan", ("gen", "dis")), ("vaegan", ("enc", "dec", "dis")), ("cyclegan", ("gen", "dis"))])
def test_every_recipe_applies_the_schedule(tmp_path: Path, recipe: str,
                                           optimizers: tuple[str, ...]) -> None:
    out = tmp_path / recipe
    assert main(["train", "--recipe", recipe, "--data", "digits", "--iterations", "4",
                 "--batch-size", "16", "--width", "8", "--quiet", "--log-every", "1",
                 "--lr-decay", "linear", "--lr-warmup", "2", "--out", str(out)]) == 0
    log = read_log(out / "log.json")
    config = json.loads((out / "config.json").read_text())
    for name in optimizers:
        base = config["lr_dis"] if name == "dis" else config["lr_gen"]
        lrs = [e[f"{name}/lr"] for e in log]
        assert lrs == pytest.approx([base * 0.5 * 3 / 4, base * 2 / 4, base / 4, 0.0]), name
