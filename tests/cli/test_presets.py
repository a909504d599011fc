"""--preset: a paper's recipe as option values below the user's and ramps that a resumed run
follows exactly (the r3gan-cifar10 preset on a tiny network)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.cli.presets import PRESETS, with_preset
from gankit.errors import GankitError
from gankit.extensions.log_report import read_log
from gankit.training.schedules import Ramp
from testsupport import differing


def test_the_users_options_win_and_ramped_ones_are_refused() -> None:
    got = with_preset({"preset": "r3gan-cifar10", "width": 8, "data": "shapes32"})
    assert (got["width"], got["loss"], got["penalty"], got["beta1"]) == (8, "rpgan", "r1r2", 0.0)
    with pytest.raises(GankitError, match="--lr-gen is ramped by --preset r3gan-cifar10"):
        with_preset({"preset": "r3gan-cifar10", "lr_gen": 1e-3})
    with pytest.raises(GankitError, match="unknown preset"):
        with_preset({"preset": "nope"})
    assert with_preset({"width": 8}) == {"width": 8}


@pytest.mark.parametrize(("option", "value", "why"), [
    ("penalty_every", 16, "a lazy penalty rescales the optimizer's rate and betas once"),
    ("lr_decay", "linear", "a learning-rate schedule would set the rates the ramp sets"),
    ("lr_warmup", 10, "a learning-rate schedule would set the rates the ramp sets"),
])
def test_an_option_that_would_fight_a_ramp_is_refused(
        option: str, value: object, why: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The lr and beta2 ramps set the optimizers' values on every update: they silently undid
    a lazy penalty's rescale (the rate stayed the ramp's, not 16/17 of it) and overwrote or
    compounded with an LR schedule."""
    with pytest.raises(GankitError, match=why):
        with_preset({"preset": "r3gan-cifar10", option: value})
    harmless = {"penalty_every": 1, "lr_decay": "none", "lr_warmup": 0}[option]
    assert with_preset({"preset": "r3gan-cifar10", option: harmless})[option] == harmless
    flag = "--" + option.replace("_", "-")
    out = tmp_path / "run"
    assert main(["train", *TINY, "--iterations", "2", flag, str(value), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{flag} {value} does not go with --preset r3gan-cifar10" in err
    assert len(err.splitlines()) == 1 and not out.exists()


TINY = ["--data", "digits", "--preset", "r3gan-cifar10", "--width", "16", "--batch-size",
        "4", "--z-dim", "4", "--log-every", "1", "--sample-every", "100", "--quiet"]


def test_a_preset_run_follows_its_ramps_and_resumes_bitwise(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", *TINY, "--iterations", "4", "--out", str(a)]) == 0
    assert main(["train", *TINY, "--iterations", "2", "--out", str(b)]) == 0
    assert main(["train", "--resume", str(b), "--iterations", "4", "--quiet"]) == 0
    sa = torch.load(a / "snapshot_iter_4.pt", weights_only=True)
    sb = torch.load(b / "snapshot_iter_4.pt", weights_only=True)
    assert differing(sa["updater"], sb["updater"]) == []
    # the EMA (its half-life ramped); the plots differ: the short run was evaluated at its end
    assert differing(sa["extensions"]["EMA"], sb["extensions"]["EMA"]) == []
    u = sa["updater"]
    preset = PRESETS["r3gan-cifar10"]
    kimg = u["images_seen"] / 1000
    lr = Ramp(*preset.ramps["lr"], preset.length_kimg, unit="kimg")(kimg)
    assert u["optimizers"]["gen"]["param_groups"][0]["lr"] == lr
    beta2 = Ramp(*preset.ramps["beta2"], preset.length_kimg, unit="kimg")(kimg)
    assert u["optimizers"]["dis"]["param_groups"][0]["betas"][1] == beta2
    p = Ramp(*preset.ramps["augment_p"], preset.length_kimg, unit="kimg")(kimg)
    assert u["augment"]["p"].item() == pytest.approx(p)
    log = read_log(a / "log.json")
    assert {"dis/r1", "dis/r2", "gen/loss"} <= set(log[-1])
    la, lb = read_log(a / "log.json"), read_log(b / "log.json")
    assert [e["dis/r1"] for e in la] == [e["dis/r1"] for e in lb]
