"""The vaegan and cyclegan recipes end to end through ``gankit.cli.main``: train, resume,
sample, the weights reaching the updater, and options that do not apply exiting 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.cli.recipes import get_recipe
from gankit.cli.recipes.cyclegan import CycleGANRecipe
from gankit.cli.recipes.vaegan import VAEGANRecipe
from gankit.cli.runs import load_run
from gankit.extensions.log_report import read_log
from gankit.training.checkpoint import list_snapshots, load_state
from testsupport import assert_runs_equal

TINY = ["--data", "digits", "--batch-size", "16", "--width", "8", "--quiet",
        "--log-every", "2", "--snapshot-every", "2", "--sample-every", "4"]

# recipe, its own options, the updater attributes they must set, keys its log must hold,
# the sample grid's size in pixels (10 columns of 8x8 images at scale 4; 10 or 6 rows).
CASES = [
    ("vaegan", ["--z-dim", "8", "--weight", "gamma=0.5"], {"gamma": 0.5},
     {"enc/kl", "enc/llike", "dec/loss", "dis/loss", "val/rec", "val/kl"}, (364, 364)),
    # No decay: this test lengthens the run on resume, and a decay spans the run's length
    # (test_cyclegan_default_schedule_resumes_bitwise resumes the decayed default instead).
    ("cyclegan", ["--weight", "cycle=3", "--weight", "identity=0.5", "--lr-decay", "none"],
     {"cycle": 3.0, "identity": 0.5, "history": 50},
     {"gen/adv", "gen/cycle", "gen/identity", "dis/loss", "val/cycle", "val/cycle_aba",
      "val/cycle_bab"}, (364, 220)),
]


@pytest.mark.parametrize(("recipe", "own", "attrs", "keys", "grid"), CASES)
def test_train_resume_sample(tmp_path: Path, recipe: str, own: list[str],
                             attrs: dict[str, float], keys: set[str],
                             grid: tuple[int, int]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--recipe", recipe, *TINY, *own]
    assert main([*argv, "--iterations", "4", "--out", str(out)]) == 0
    log = read_log(out / "log.json")
    assert [e["iteration"] for e in log] == [2, 4]
    assert keys <= set(log[-1]) and all(np.isfinite(log[-1][k]) for k in keys)
    assert Image.open(out / "samples" / "iter_0000004.png").size == grid

    # Resume to 6 iterations; it must end where an uninterrupted 6-iteration run ends.
    assert main(["train", "--resume", str(out), "--iterations", "6", "--quiet"]) == 0
    assert [e["iteration"] for e in read_log(out / "log.json")] == [2, 4, 6]
    straight = tmp_path / "straight"
    assert main([*argv, "--iterations", "6", "--out", str(straight)]) == 0
    assert_runs_equal(out, straight, "updater", "rng")

    _, _, trainer, _, _ = load_run(str(out), "cpu")
    assert {k: getattr(trainer.updater, k) for k in attrs} == attrs

    npy, again, png = tmp_path / "s.npy", tmp_path / "again.npy", tmp_path / "s.png"
    assert main(["sample", str(out), "-n", "5", "--seed", "2", "-o", str(npy)]) == 0
    assert main(["sample", str(out), "-n", "5", "--seed", "2", "-o", str(again)]) == 0
    arr = np.load(npy)
    assert arr.shape == (5, 1, 8, 8) and arr.min() >= 0 and arr.max() <= 16  # digits' range
    np.testing.assert_array_equal(arr, np.load(again))
    assert main(["sample", str(out), "-n", "4", "-o", str(png)]) == 0
    assert Image.open(png).size[0] > 8


def test_cyclegan_default_schedule_resumes_bitwise(tmp_path: Path) -> None:
    """The default decay and the history buffers resume exactly: a run restarted from its
    iteration-4 snapshot ends bitwise where the uninterrupted run ends."""
    whole, part = tmp_path / "whole", tmp_path / "part"
    argv = ["train", "--recipe", "cyclegan", *TINY, "--iterations", "8", "--keep-snapshots",
            "9"]
    assert main([*argv, "--out", str(whole)]) == 0
    config = json.loads((whole / "config.json").read_text())
    assert (config["lr_decay"], config["lr_decay_start"]) == ("linear", 0.5)
    shutil.copytree(whole, part)
    for p in part.glob("snapshot_iter_[68].pt*"):
        p.unlink()
    assert main(["train", "--resume", str(part), "--quiet"]) == 0
    a = load_state(whole / "snapshot_iter_8.pt")["updater"]
    assert a["history"]["a"]["count"] == 50 and a["history"]["b"]["images"].shape[0] == 50
    assert_runs_equal(whole / "snapshot_iter_8.pt", part / "snapshot_iter_8.pt", "updater")
    assert a["optimizers"]["gen"]["param_groups"][0]["lr"] == 0.0


def test_cyclegan_samples_are_translations_of_held_out_images(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--recipe", "cyclegan", *TINY, "--iterations", "2",
                 "--out", str(out)]) == 0
    _, recipe, trainer, _, _ = load_run(str(out), "cpu")
    n = 160  # more than the 150 held-out A images: they are used again
    samples = recipe.sample(trainer, n, seed=0)
    assert samples.shape == (n, 1, 8, 8)
    gen = trainer.updater.raw_models["gen_ab"].eval()
    evaluator = trainer.get_extension("CycleEvaluator")
    with torch.no_grad():
        translated = gen(evaluator.domains.a)
    # Every sample is G(a) of a held-out a (up to float noise of other batch sizes), and
    # the first 150 are all of them.
    dist, nearest = torch.cdist(samples.flatten(1), translated.flatten(1)).min(1)
    assert dist.max() < 1e-2
    assert len(set(nearest[:150].tolist())) == 150
    # The translators keep every layer at full resolution, with one residual block: the
    # layout that kept the digits on every seed (README, CycleGAN); the paper's, with a
    # stride-2 level, swapped them on some.
    for name in ("gen_ab", "gen_ba"):
        net = trainer.updater.raw_models[name]
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(m.stride == (1, 1) for m in convs)
        assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
        assert sum(type(m).__name__ == "_ResBlock" for m in net.modules()) == 1


@pytest.mark.parametrize(("recipe", "extra", "message"), [
    ("vaegan", ["--loss", "hinge"], "--loss does not apply to the vaegan recipe"),
    ("vaegan", ["--weight", "beta=1"], "the vaegan recipe has no weight 'beta'"),
    ("vaegan", ["--data", "ring8"], "needs image data"),
    ("cyclegan", ["--z-dim", "8"], "--z-dim does not apply to the cyclegan recipe"),
    ("cyclegan", ["--ema", "0.9"], "--ema does not apply"),
    ("cyclegan", ["--weight", "gamma=1"], "has no weight 'gamma'; its weights are cycle=10"),
])
def test_options_that_do_not_apply_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          recipe: str, extra: list[str], message: str) -> None:
    out = tmp_path / "run"
    code = main(["train", "--recipe", recipe, *TINY, "--iterations", "2", "--out", str(out),
                 *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1, err
    assert not list_snapshots(out)


@pytest.mark.parametrize(("name", "cls"), [("vaegan", VAEGANRecipe),
                                           ("cyclegan", CycleGANRecipe)])
def test_get_recipe(name: str, cls: type) -> None:
    assert isinstance(get_recipe(name), cls) and get_recipe(name).name == name
