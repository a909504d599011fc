"""``gankit export`` and ``gankit sample FILE`` end to end: the conditional digits DCGAN, the
points MLP, resnet, BigGAN, StyleGAN2 and R3GAN at 32x32, and the VAE-GAN decoder, each exported to
.safetensors (sampling like its run) and ONNX (checked with onnxruntime); best.safetensors
through resume; bad input exiting 2 with nothing written."""

from __future__ import annotations

import builtins
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.export import generator_info, load_generator, read_generator
from gankit.extensions.log_report import read_log
from gankit.metrics.scoring import SSL_OPTIONS
from gankit.training.checkpoint import load_state

onnxruntime = pytest.importorskip("onnxruntime")

FAST = ["--quiet", "--width", "8", "--iterations", "20", "--sample-every", "10",
        "--log-every", "10", "--snapshot-every", "10", "--conditional"]
SMALL = {"resnet": ["--width", "4", "--z-dim", "8"],
         "biggan": ["--width", "2", "--z-dim", "8"],
         "stylegan2": ["--width", "2", "--z-dim", "8"],
         "r3gan": ["--width", "4", "--z-dim", "8"]}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "run"
    assert main(["train", "--data", "digits", "--out", str(out), *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def blobs32(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """40 unlabelled 32x32 RGB images: scored in the self-supervised feature space, trained
    once for the module in 10 steps, with 20 samples, so the tests time the export."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(SSL_OPTIONS, "max_steps", 10)
        yield _blobs32(tmp_path_factory)


def _blobs32(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("blobs") / "blobs.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8))
    return f"npz:{path}"


def _sample(source: Path, out: Path, *extra: str) -> np.ndarray:
    assert main(["sample", str(source), "-n", "6", "--seed", "3", "-o", str(out), *extra]) == 0
    return np.load(out)


def _onnx_matches(path: Path, source: Path) -> None:
    """The ONNX model run by onnxruntime gives the generator file's outputs."""
    gen = load_generator(source)
    z = gen.sample_z(3, generator=torch.Generator().manual_seed(0))
    feeds = {"z": z.numpy()}
    y = None
    if gen.n_classes:
        y = torch.arange(3) % gen.n_classes
        feeds["y"] = y.numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)[0]
    with torch.no_grad():
        want = gen(z, y).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["format"] == "gankit-generator" and '"arch"' in meta["generator"]


def test_digits_export_samples_like_its_run(digits_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(digits_run)]) == 0
    path = digits_run / "generator_iter_20.safetensors"
    assert "wrote" in capsys.readouterr().err
    info = generator_info(path)
    assert (info.run["iteration"], info.run["ema"], info.run["model"]) == (20, True, "gen")
    assert info.spec.arch == "dcgan" and info.spec.shape == (1, 8, 8) and info.spec.width == 8
    assert info.spec.n_classes == 10
    last = read_log(digits_run / "log.json")[-1]
    assert info.metrics["val/fid"] == last["val/fid"] and info.protocol is not None
    # the EMA average, not the trained weights
    state = load_state(digits_run / "snapshot_iter_20.pt")
    _, tensors = read_generator(path)
    average = state["extensions"]["EMA"]["extension"]["average"]
    assert all(torch.equal(tensors[k], average[k]) for k in average)
    from_run = _sample(digits_run, tmp_path / "run.npy")
    from_file = _sample(path, tmp_path / "file.npy")
    assert from_file.shape == (6, 1, 8, 8) and from_file.min() >= 0 and from_file.max() <= 16
    np.testing.assert_array_equal(from_file, from_run)
    assert main(["sample", str(path), "-n", "10", "-o", str(tmp_path / "grid.png")]) == 0


def test_best_model_is_the_lowest_fid_and_small(digits_run: Path, tmp_path: Path) -> None:
    evaluated = [e for e in read_log(digits_run / "log.json") if "val/fid" in e]
    best_entry = min(evaluated, key=lambda e: e["val/fid"])
    info = generator_info(digits_run / "best.safetensors")
    assert info.run["iteration"] == best_entry["iteration"]
    assert info.metrics["val/fid"] == best_entry["val/fid"]
    assert info.protocol is not None and info.protocol["feature_net"] == "gankit-smallcnn-v1"
    snapshot = (digits_run / "snapshot_iter_20.pt").stat().st_size
    assert (digits_run / "best.safetensors").stat().st_size * 3 < snapshot
    out = tmp_path / "best.safetensors"
    assert main(["export", str(digits_run), "--best", "-o", str(out)]) == 0
    assert out.read_bytes() == (digits_run / "best.safetensors").read_bytes()
    assert main(["export", str(digits_run), "--best", "-o", str(tmp_path / "best.onnx")]) == 0
    _onnx_matches(tmp_path / "best.onnx", out)


def test_best_model_survives_a_resume_exactly(digits_run: Path, tmp_path: Path) -> None:
    split = tmp_path / "split"
    assert main(["train", "--data", "digits", "--out", str(split), *FAST, "--iterations",
                 "10"]) == 0
    best_then = load_state(split / "snapshot_iter_10.pt")["extensions"]["BestFIDSnapshot"]
    assert best_then["trigger"]["best"] == read_log(split / "log.json")[-1]["val/fid"]
    assert main(["train", "--resume", str(split), "--iterations", "20", "--quiet"]) == 0
    a, ta = read_generator(digits_run / "best.safetensors")
    b, tb = read_generator(split / "best.safetensors")
    assert (a.run, a.metrics) == (b.run, b.metrics)
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_a_run_from_before_best_safetensors_exports_its_best_fid_snapshot(
        digits_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(digits_run, old)
    (old / "best.safetensors").unlink()
    shutil.copy(old / "snapshot_iter_10.pt", old / "best_fid.pt")
    assert main(["export", str(old), "--best"]) == 0
    assert generator_info(old / "best.safetensors").run["iteration"] == 10


def test_points_mlp_exports_and_samples(tmp_path: Path) -> None:
    run = tmp_path / "ring"
    assert main(["train", "--data", "ring8", "--out", str(run), "--quiet", "--width", "8",
                 "--iterations", "4", "--sample-every", "4", "--log-every", "4"]) == 0
    out = tmp_path / "mlp.safetensors"
    assert main(["export", str(run), "-o", str(out)]) == 0
    assert generator_info(out).data["kind"] == "points"
    np.testing.assert_array_equal(_sample(out, tmp_path / "f.npy"),
                                  _sample(run, tmp_path / "r.npy"))
    assert main(["sample", str(out), "-n", "50", "-o", str(tmp_path / "scatter.png")]) == 0
    assert main(["export", str(run), "-o", str(tmp_path / "mlp.onnx")]) == 0
    _onnx_matches(tmp_path / "mlp.onnx", out)


@pytest.mark.parametrize("arch", ["resnet", "biggan", "stylegan2", "r3gan"])
def test_image_arch_exports_samples_and_converts_to_onnx(tmp_path: Path, blobs32: str,
                                                         arch: str) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", blobs32, "--arch", arch, "--out", str(run),
                 "--iterations", "2", "--batch-size", "4", "--n-dis", "1", "--log-every", "2",
                 "--sample-every", "2", "--eval-samples", "20", "--device", "cpu", "--quiet",
                 *SMALL[arch]]) == 0
    assert main(["export", str(run)]) == 0
    path = run / "generator_iter_2.safetensors"
    info = generator_info(path)
    assert info.spec.arch == arch and info.spec.shape == (3, 32, 32)
    assert info.run["ema"] is True and info.metrics == {
        k: v for k, v in read_log(run / "log.json")[-1].items() if k.startswith("val/")}
    np.testing.assert_array_equal(_sample(path, tmp_path / "f.npy"),
                                  _sample(run, tmp_path / "r.npy"))
    if arch == "stylegan2":
        gen = load_generator(path)
        assert bool(gen.w_avg.abs().sum() > 0)  # trained, and in the file
        cut = _sample(path, tmp_path / "tf.npy", "--truncation", "0.7")
        np.testing.assert_array_equal(cut, _sample(run, tmp_path / "tr.npy", "--truncation",
                                                   "0.7"))
        assert not np.array_equal(cut, np.load(tmp_path / "f.npy"))
    onnx = tmp_path / "g.onnx"
    assert main(["export", str(run), "-o", str(onnx)]) == 0
    _onnx_matches(onnx, path)


def test_vaegan_exports_its_decoder(tmp_path: Path) -> None:
    run = tmp_path / "vaegan"
    assert main(["train", "--recipe", "vaegan", "--data", "digits", "--out", str(run),
                 "--quiet", "--width", "8", "--iterations", "2", "--log-every", "2",
                 "--sample-every", "2"]) == 0
    out = tmp_path / "dec.safetensors"
    assert main(["export", str(run), "-o", str(out)]) == 0
    info = generator_info(out)
    assert info.run["model"] == "dec" and info.spec.arch == "dcgan"
    assert set(info.metrics) == {"val/rec", "val/kl"}  # its held-out scores at iteration 2
    np.testing.assert_array_equal(_sample(out, tmp_path / "f.npy"),
                                  _sample(run, tmp_path / "r.npy"))


def _refused(args: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_input_exits_2_and_writes_nothing(digits_run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p.name for p in digits_run.iterdir())
    good = digits_run / "best.safetensors"
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-10])
    npy = tmp_path / "s.npy"
    _refused(["sample", str(cut), "-o", str(npy)], capsys, "is corrupt")
    _refused(["sample", str(tmp_path / "missing.safetensors"), "-o", str(npy)], capsys,
             "does not exist")
    _refused(["sample", str(good), "-o", str(npy), "--truncation", "0.5"], capsys,
             "holds a dcgan generator")
    assert not npy.exists()
    _refused(["export", str(tmp_path / "norun")], capsys, "is not a run directory")
    _refused(["export", str(digits_run), "-o", str(tmp_path / "g.pt")], capsys,
             "must end in .safetensors or .onnx")
    _refused(["export", str(digits_run), "-o", str(tmp_path / "g.onnx"), "--format",
              "safetensors"], capsys, "but --format is safetensors")
    _refused(["export", str(digits_run), "-o", str(tmp_path / "no" / "g.safetensors")], capsys,
             "does not exist")
    cycle = tmp_path / "cyclegan"
    assert main(["train", "--recipe", "cyclegan", "--data", "digits", "--out", str(cycle),
                 "--quiet", "--width", "4", "--iterations", "1"]) == 0
    capsys.readouterr()
    _refused(["export", str(cycle)], capsys, "no generator file to export")
    _refused(["export", str(cycle), "--best"], capsys, "has no best model")
    assert sorted(p.name for p in digits_run.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.safetensors", "cyclegan"]


def test_onnx_without_its_packages_is_one_sentence(digits_run: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    real_import = builtins.__import__

    def no_onnxruntime(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    out = tmp_path / "g.onnx"
    _refused(["export", str(digits_run), "-o", str(out)], capsys,
             "ONNX export needs the onnxruntime package")
    assert not out.exists()
