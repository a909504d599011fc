"""``--arch resnet|biggan`` end to end on shapes32: train, resume bitwise, sample, eval; the
paper defaults in config.json; bf16 and --compile; options that cannot apply."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.cli.config import TrainConfig
from gankit.cli.recipes.dcgan import DCGANRecipe
from gankit.data import load_dataset, shapes
from gankit.extensions.log_report import read_log
from gankit.training.checkpoint import load_state

SMALL = {"resnet": ["--width", "4", "--z-dim", "8"],
         "biggan": ["--width", "2", "--z-dim", "8", "--conditional"]}


@pytest.fixture
def small_shapes(monkeypatch: pytest.MonkeyPatch) -> Any:
    """shapes32 at 6 train / 3 val images per class, so the evaluator's feature classifier
    trains in a second instead of a minute; the full set is tested in tests/data."""
    monkeypatch.setattr(shapes, "SHAPES_TRAIN_PER_CLASS", 6)
    monkeypatch.setattr(shapes, "SHAPES_VAL_PER_CLASS", 3)
    shapes._shapes_arrays.cache_clear()
    yield
    shapes._shapes_arrays.cache_clear()


def _train(out: Path, arch: str, iterations: int, *extra: str) -> int:
    return main(["train", "--data", "shapes32", "--arch", arch, "--out", str(out),
                 "--iterations", str(iterations), "--batch-size", "8", "--n-dis", "2",
                 "--log-every", "2", "--snapshot-every", "2", "--sample-every", "4",
                 "--device", "cpu", "--quiet", *SMALL[arch], *extra])


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}/{key}").items()}
    return {prefix: tree}


@pytest.mark.parametrize("arch", ["resnet", "biggan"])
def test_arch_trains_resumes_bitwise_samples_and_evaluates(tmp_path: Path, small_shapes: None,
                                                           arch: str) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train(straight, arch, 4) == 0
    assert _train(split, arch, 2) == 0
    assert main(["train", "--resume", str(split), "--iterations", "4", "--quiet"]) == 0
    a = load_state(straight / "snapshot_iter_4.pt")
    b = load_state(split / "snapshot_iter_4.pt")
    fa, fb = _flat(a["updater"]), _flat(b["updater"])
    assert fa.keys() == fb.keys() and any("parametrizations" in k for k in fa)
    ea, eb = _flat(a["extensions"]), _flat(b["extensions"])
    assert any(k.startswith("/EMA/extension/average/") for k in ea)
    for key, value in [*fa.items(), *ea.items()]:
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, {**fb, **eb}[key]), key

    config = json.loads((straight / "config.json").read_text())
    assert config["arch"] == arch and config["loss"] == "hinge" and config["n_dis"] == 2
    log = read_log(straight / "log.json")
    assert [e["iteration"] for e in log] == [2, 4]
    assert all(np.isfinite(e["dis/loss"]) for e in log) and "val/fid" in log[-1]

    npy = tmp_path / "s.npy"
    assert main(["sample", str(straight), "-n", "6", "--seed", "1", "-o", str(npy)]) == 0
    arr = np.load(npy)
    assert arr.shape == (6, 3, 32, 32) and arr.min() >= 0 and arr.max() <= 255
    assert main(["eval", str(straight), "-n", "48"]) == 0
    report = json.loads((straight / "metrics.json").read_text())["records"][-1]
    assert np.isfinite(report["metrics"]["fid"]) and "classes" in report["metrics"]
    assert "shapes32" in report["features"]


def test_paper_defaults_land_in_the_config(small_shapes: None) -> None:
    train = load_dataset("shapes32", "train")
    recipe = DCGANRecipe()
    sngan = recipe.defaults(train, TrainConfig(arch="resnet"))
    assert {k: sngan[k] for k in ("z_dim", "batch_size", "n_dis", "lr_gen", "lr_dis", "beta1",
                                  "beta2", "loss", "norm", "width")} == dict(
        z_dim=128, batch_size=64, n_dis=5, lr_gen=2e-4, lr_dis=2e-4, beta1=0.0, beta2=0.9,
        loss="hinge", norm="spectral", width=128)
    big = recipe.defaults(train, TrainConfig(arch="biggan"))
    assert (big["z_dim"], big["beta1"], big["n_dis"], big["width"], big["ema"]) == (
        80, 0.5, 5, 96, 0.9999)
    dcgan = recipe.defaults(train, TrainConfig())
    assert (dcgan["beta2"], dcgan["n_dis"], dcgan["norm"]) == (0.999, 1, "batch")


def test_defaults_fill_only_what_the_user_left_out(tmp_path: Path, small_shapes: None) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", "shapes32", "--arch", "resnet", "--out", str(out),
                 "--iterations", "1", "--batch-size", "4", "--width", "2", "--z-dim", "4",
                 "--beta2", "0.95", "--device", "cpu", "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["beta2"], config["n_dis"], config["beta1"], config["width"]) == (
        0.95, 5, 0.0, 2)


def test_resnet_in_bf16(tmp_path: Path, small_shapes: None) -> None:
    out = tmp_path / "run"
    assert _train(out, "resnet", 2, "--precision", "bf16") == 0
    log = read_log(out / "log.json")
    assert np.isfinite(log[-1]["gen/loss"]) and np.isfinite(log[-1]["dis/loss"])


def test_resnet_compiled(tmp_path: Path, small_shapes: None,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Dynamo traces the networks (spectral-norm parametrizations included) with its eager
    # backend; Inductor's C++ build would take minutes on this machine's CPU.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    out = tmp_path / "run"
    assert _train(out, "resnet", 2, "--compile") == 0
    models = load_state(out / "snapshot_iter_2.pt")["updater"]["models"]
    assert not any(k.startswith("_orig_mod") for m in models.values() for k in m)
    log = read_log(out / "log.json")
    assert np.isfinite(log[-1]["gen/loss"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--data", "ring8", "--arch", "resnet"], "--arch resnet builds image networks"),
    (["--data", "shapes32", "--arch", "vgg"], "unknown arch 'vgg'"),
    (["--data", "shapes32", "--arch", "resnet", "--norm", "batch"],
     "--norm batch does not apply to --arch resnet"),
    (["--data", "digits", "--arch", "resnet"], "not supported by the resnet networks"),
    (["--data", "shapes32", "--recipe", "vaegan", "--arch", "biggan"],
     "--arch does not apply to the vaegan recipe"),
])
def test_options_that_cannot_apply_are_one_line(tmp_path: Path, small_shapes: None,
                                                capsys: pytest.CaptureFixture[str],
                                                argv: list[str], message: str) -> None:
    out = tmp_path / "run"
    assert main(["train", *argv, "--out", str(out), "--iterations", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (out / "config.json").exists()
