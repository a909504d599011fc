"""Mixed precision, device choice and torch.compile, from the Updater up to the command line."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.extensions.log_report import read_log
from gankit.gan import R1, GANUpdater
from gankit.models import DCGANDiscriminator, DCGANGenerator
from gankit.training import Trainer, load_state
from gankit.training.distributed import prepare_updater

SHAPE = (1, 8, 8)


def _cpu_supports(dtype: torch.dtype) -> bool:
    try:
        with torch.autocast("cpu", dtype=dtype):
            torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3))
    except RuntimeError:
        return False
    return True


PRECISIONS = [
    "bf16",
    pytest.param("fp16", marks=pytest.mark.skipif(
        not _cpu_supports(torch.float16), reason="this CPU build has no fp16 autocast")),
]


def _updater(precision: str, penalty: str = "none") -> GANUpdater:
    torch.manual_seed(0)
    gen, dis = DCGANGenerator(8, SHAPE, 8), DCGANDiscriminator(SHAPE, 8, norm="batch")
    batches = [torch.randn(8, *SHAPE).clamp(-1, 1) for _ in range(3)]
    return GANUpdater(gen, dis, torch.optim.Adam(gen.parameters(), 2e-4),
                      torch.optim.Adam(dis.parameters(), 2e-4), batches,
                      precision=precision, dis_terms=[R1(1.0)] if penalty == "r1" else [])


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("penalty", ["none", "r1"])
def test_a_half_precision_gan_run_has_finite_losses(tmp_path, precision, penalty):
    updater = _updater(precision, penalty)
    before = {k: p.detach().clone() for k, p in updater.raw_models["gen"].named_parameters()}
    trainer = Trainer(updater, (6, "iteration"), tmp_path)
    seen: list[dict[str, float]] = []
    trainer.extend(lambda t: seen.append({k: float(v) for k, v in t.observation.items()}))
    trainer.run()
    assert len(seen) == 6
    assert {"gen/loss", "dis/loss"} <= set(seen[-1])
    assert all(math.isfinite(v) for obs in seen for v in obs.values()), seen
    # Autocast computes in half, but the weights the optimizers update stay fp32, and move.
    after = dict(updater.raw_models["gen"].named_parameters())
    assert all(p.dtype == torch.float32 for p in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_autocast_runs_the_networks_in_half(precision):
    updater = _updater(precision)
    with updater.autocast():
        out = updater.models["dis"](torch.randn(2, *SHAPE))
    assert out.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@pytest.mark.skipif(not _cpu_supports(torch.float16), reason="no fp16 autocast on this CPU")
def test_grad_scaler_state_travels_in_the_snapshot(tmp_path):
    updater = _updater("fp16")
    trainer = Trainer(updater, (3, "iteration"), tmp_path)
    trainer.run()
    updater.scalers["dis"].update(1234.0)  # a scale no fresh scaler has
    state = trainer.state_dict()
    assert set(state["updater"]["scalers"]) == {"gen", "dis"}
    fresh = _updater("fp16")
    Trainer(fresh, (3, "iteration"), tmp_path).load_state_dict(state)
    assert fresh.scalers["dis"].get_scale() == 1234.0
    assert fresh.scalers["gen"].get_scale() == updater.scalers["gen"].get_scale()


def test_prepare_updater_compiles_the_named_networks_and_keeps_raw_modules_for_saving():
    updater = _updater("fp32")
    raw = dict(updater.raw_models)
    prepare_updater(updater, compile=["gen"])  # compiling is lazy: nothing runs yet
    assert isinstance(updater.models["gen"], torch._dynamo.eval_frame.OptimizedModule)
    assert updater.models["dis"] is raw["dis"]
    assert updater.raw_models == raw
    assert not any(k.startswith("_orig_mod") for k in updater.state_dict()["models"]["gen"])
    with pytest.raises(ValueError, match="unknown models"):
        prepare_updater(updater, compile=["encoder"])


def test_channels_last_converts_the_raw_convolutions():
    updater = _updater("fp32")
    prepare_updater(updater, channels_last=True)
    convs = [m.weight for m in updater.raw_models["dis"].modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


# ------------------------------------------------------------------------- the command line
@pytest.fixture
def images(tmp_path) -> str:
    """Unlabelled 8x8 images: the recipe reports held-out losses only, no feature network."""
    path = tmp_path / "img.npz"
    np.savez(path, x=np.random.default_rng(0).integers(0, 256, (80, 8, 8), dtype=np.uint8))
    return f"npz:{path}"


def _train(images: str, out: Path, *extra: str) -> int:
    return main(["train", "--data", images, "--out", str(out), "--iterations", "4",
                 "--batch-size", "8", "--width", "8", "--z-dim", "8", "--log-every", "2",
                 "--snapshot-every", "2", "--sample-every", "4", "--device", "cpu", "--quiet",
                 *extra])


def _finite_log(out: Path) -> list[dict[str, float]]:
    log = read_log(out / "log.json")
    assert [e["iteration"] for e in log] == [2, 4]
    assert all(math.isfinite(e[k]) for e in log for k in ("gen/loss", "dis/loss")), log
    return log


@pytest.mark.parametrize("precision", PRECISIONS)
def test_cli_trains_in_half_precision(tmp_path, images, precision):
    out = tmp_path / "run"
    assert _train(images, out, "--precision", precision) == 0
    _finite_log(out)
    assert json.loads((out / "config.json").read_text())["precision"] == precision
    scalers = load_state(out / "snapshot_iter_4.pt")["updater"]["scalers"]
    assert set(scalers) == ({"gen", "dis"} if precision == "fp16" else set())


def test_cli_compile_trains_and_saves_plain_state_dicts(tmp_path, images, monkeypatch):
    # Inductor needs ~80 s of C++ compilation on a small CPU; Dynamo's eager backend traces
    # the same graphs (the part gankit controls) in about a second.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    out = tmp_path / "run"
    assert _train(images, out, "--compile") == 0
    _finite_log(out)
    models = load_state(out / "snapshot_iter_4.pt")["updater"]["models"]
    assert not any(k.startswith("_orig_mod") for m in models.values() for k in m)


@pytest.mark.parametrize(("device", "message"), [
    ("cuda", "CUDA is not available"),
    ("cuda:1", "CUDA is not available"),
    ("meta", "device 'meta' is not supported"),
    ("banana", "unknown device 'banana'"),
])
def test_cli_rejects_devices_it_cannot_use(tmp_path, images, capsys, device, message):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    assert _train(images, tmp_path / "run", "--device", device) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "config.json").exists()
