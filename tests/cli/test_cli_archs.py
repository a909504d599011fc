"""``--arch resnet|biggan|stylegan2`` end to end on shapes32: train, resume bitwise, sample,
eval; the paper defaults in config.json; lazy regularisation; truncation; bf16 and --compile;
options that cannot apply."""

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
from testsupport import flatten

SMALL = {"resnet": ["--width", "4", "--z-dim", "8"],
         "biggan": ["--width", "2", "--z-dim", "8", "--conditional"],
         # R1 every 2nd D step and the path length every 4th G step, so both lazy terms and
         # the path-length mean are in the resumed state
         "stylegan2": ["--width", "2", "--z-dim", "8", "--penalty-every", "2",
                       "--path-length", "2"]}
LOSS = {"resnet": "hinge", "biggan": "hinge", "stylegan2": "ns"}


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


@pytest.mark.parametrize("arch", ["resnet", "biggan", "stylegan2"])
def test_arch_trains_resumes_bitwise_samples_and_evaluates(tmp_path: Path, small_shapes: None,
                                                           arch: str) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train(straight, arch, 4) == 0
    assert _train(split, arch, 2) == 0
    assert main(["train", "--resume", str(split), "--iterations", "4", "--quiet"]) == 0
    a = load_state(straight / "snapshot_iter_4.pt")
    b = load_state(split / "snapshot_iter_4.pt")
    fa, fb = flatten(a["updater"]), flatten(b["updater"])
    assert fa.keys() == fb.keys()
    # spectral norm's u vectors (resnet, biggan) and the path-length mean (stylegan2) resume too
    assert any(("terms/gen/pl/mean" if arch == "stylegan2" else "parametrizations") in k
               for k in fa)
    ea, eb = flatten(a["extensions"]), flatten(b["extensions"])
    assert any(k.startswith("/EMA/extension/average/") for k in ea)
    for key, value in [*fa.items(), *ea.items()]:
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, {**fb, **eb}[key]), key

    config = json.loads((straight / "config.json").read_text())
    assert config["arch"] == arch and config["loss"] == LOSS[arch] and config["n_dis"] == 2
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


@pytest.mark.parametrize("arch", ["resnet", "stylegan2"])
def test_arch_in_bf16(tmp_path: Path, small_shapes: None, arch: str) -> None:
    out = tmp_path / "run"
    assert _train(out, arch, 2, "--precision", "bf16") == 0
    log = read_log(out / "log.json")
    assert np.isfinite(log[-1]["gen/loss"]) and np.isfinite(log[-1]["dis/loss"])


@pytest.mark.parametrize("arch", ["resnet", "stylegan2"])
def test_arch_compiled(tmp_path: Path, small_shapes: None, monkeypatch: pytest.MonkeyPatch,
                       arch: str) -> None:
    # Dynamo traces the networks (spectral-norm parametrizations, StyleGAN2's grouped
    # modulated convs and its double-backward regularisers included) with its eager backend;
    # Inductor's C++ build would take minutes on this machine's CPU.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    out = tmp_path / "run"
    assert _train(out, arch, 2, "--compile") == 0
    models = load_state(out / "snapshot_iter_2.pt")["updater"]["models"]
    assert not any(k.startswith("_orig_mod") for m in models.values() for k in m)
    log = read_log(out / "log.json")
    assert np.isfinite(log[-1]["gen/loss"])


def test_stylegan2_lazy_regularisation_rescales_adam(tmp_path: Path, small_shapes: None) -> None:
    # Karras et al. 2020, appendix B: R1 every 16 D steps -> D's lr * 16/17 and betas ** (16/17);
    # the path length every 4 G steps -> G's lr * 4/5. config.json keeps the options as given.
    out = tmp_path / "run"
    assert main(["train", "--data", "shapes32", "--arch", "stylegan2", "--out", str(out),
                 "--iterations", "1", "--batch-size", "4", "--width", "2", "--z-dim", "8",
                 "--path-length", "2", "--device", "cpu", "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["lr_dis"], config["beta2"], config["penalty_every"], config["width"]) == (
        2.5e-3, 0.99, 16, 2)
    optimizers = load_state(out / "snapshot_iter_1.pt")["updater"]["optimizers"]
    dis, gen = optimizers["dis"]["param_groups"][0], optimizers["gen"]["param_groups"][0]
    assert dis["lr"] == pytest.approx(2.5e-3 * 16 / 17)
    assert dis["betas"][1] == pytest.approx(0.99 ** (16 / 17)) and dis["betas"][0] == 0
    assert gen["lr"] == pytest.approx(2.5e-3 * 4 / 5)
    assert gen["betas"][1] == pytest.approx(0.99 ** (4 / 5))
    # width 2: channel_base 128, cap 8: 8 channels at 16x16 and below, 4 at 32x32
    models = load_state(out / "snapshot_iter_1.pt")["updater"]["models"]
    assert max(v.shape[0] for k, v in models["gen"].items() if k.endswith("weight")
               and "synthesis" in k and v.dim() == 4) == 8


def test_without_lazy_terms_adam_is_as_given(tmp_path: Path, small_shapes: None) -> None:
    out = tmp_path / "run"
    assert _train(out, "resnet", 1, "--penalty", "r1", "--penalty-weight", "0.1") == 0
    optimizers = load_state(out / "snapshot_iter_1.pt")["updater"]["optimizers"]
    for name in ("gen", "dis"):
        group = optimizers[name]["param_groups"][0]
        assert (group["lr"], tuple(group["betas"])) == (2e-4, (0.0, 0.9))


def test_stylegan2_truncated_samples(tmp_path: Path, small_shapes: None,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert _train(out, "stylegan2", 2) == 0

    def sample(*extra: str) -> np.ndarray:
        npy = tmp_path / "s.npy"
        assert main(["sample", str(out), "-n", "6", "--seed", "3", "-o", str(npy), *extra]) == 0
        return np.load(npy)

    plain = sample()
    assert np.array_equal(sample("--truncation", "1"), plain)  # psi = 1 is the identity
    at_mean = sample("--truncation", "0")  # every sample at w_avg: one image, six times
    assert not np.array_equal(at_mean, plain) and (at_mean == at_mean[:1]).all()
    capsys.readouterr()
    assert main(["sample", str(out), "-n", "2", "-o", str(tmp_path / "t.npy"),
                 "--truncation", "1.5"]) == 2
    assert "--truncation must be a psi in [0, 1]" in capsys.readouterr().err


def test_truncation_needs_a_style_generator(tmp_path: Path, small_shapes: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert _train(out, "resnet", 1) == 0
    capsys.readouterr()
    npy = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "2", "-o", str(npy), "--truncation", "0.7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--truncation applies to a style-based generator" in err
    assert len(err.splitlines()) == 1 and not npy.exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--data", "ring8", "--arch", "resnet"], "--arch resnet builds image networks"),
    (["--data", "shapes32", "--arch", "vgg"], "unknown arch 'vgg'"),
    (["--data", "shapes32", "--arch", "resnet", "--norm", "batch"],
     "--norm batch does not apply to --arch resnet"),
    (["--data", "digits", "--arch", "resnet"], "not supported by the resnet networks"),
    (["--data", "shapes32", "--recipe", "vaegan", "--arch", "biggan"],
     "--arch does not apply to the vaegan recipe"),
    (["--data", "shapes32", "--arch", "resnet", "--path-length", "2"],
     "--path-length regularises a style-based generator"),
])
def test_options_that_cannot_apply_are_one_line(tmp_path: Path, small_shapes: None,
                                                capsys: pytest.CaptureFixture[str],
                                                argv: list[str], message: str) -> None:
    out = tmp_path / "run"
    assert main(["train", *argv, "--out", str(out), "--iterations", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (out / "config.json").exists()
