"""`gankit eval` end to end on tiny runs, the recipe's GANEvaluator, and bad input exiting 2."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gankit.cli import main
from gankit.export import generator_info
from gankit.extensions.log_report import read_log
from gankit.metrics.ssl import SSL_VERSION

FAST = ["--quiet", "--width", "8", "--iterations", "20"]


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # One classifier cache for the whole session: each module trains the digits classifier
    # at most once, and nothing is written to ~/.cache.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(tmp_path_factory.getbasetemp() / "gankit-cache"))
        yield


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--sample-every", "10",
                 "--log-every", "10", *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ring") / "run"
    assert main(["train", "--data", "ring8", "--out", str(out), *FAST]) == 0
    return out


def _latest(run: Path) -> dict:
    """The record the last gankit eval wrote (metrics.json keeps one per protocol)."""
    return json.loads((run / "metrics.json").read_text())["records"][-1]


def _finite(values: dict[str, float | None]) -> bool:
    return all(v is not None and math.isfinite(v) for v in values.values())


def test_training_logs_the_evaluator_and_keeps_the_best_fid(digits_run: Path) -> None:
    log = read_log(digits_run / "log.json")
    evaluated = [e for e in log if "val/fid" in e]
    assert [e["iteration"] for e in evaluated] == [10, 20]  # with each sample grid
    keys = {"val/gen/loss", "val/dis/loss", "val/fid", "val/kid", "val/precision",
            "val/recall", "val/classes", "val/class_kl"}
    assert all(keys <= set(e) and _finite({k: e[k] for k in keys}) for e in evaluated)
    best = generator_info(digits_run / "best.safetensors")
    best_entry = min(evaluated, key=lambda e: e["val/fid"])
    assert best.run["iteration"] == best_entry["iteration"] and best.run["ema"] is True
    assert best.metrics["val/fid"] == best_entry["val/fid"]
    assert not (digits_run / "best_fid.pt").exists()


def test_eval_digits_writes_metrics_and_floor(digits_run: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(digits_run), "-n", "400"]) == 0
    report = _latest(digits_run)
    assert list(report["metrics"]) == ["fid", "kid", "precision", "recall", "classes",
                                       "class_kl"]
    assert _finite(report["metrics"]) and _finite(report["floor"])
    assert (report["n"], report["n_real"], report["n_floor"], report["iteration"]) == (
        400, 300, 400, 20)
    assert report["ema"] is True and 0.9 < report["feature_accuracy"] <= 1
    # Real training digits score far better than a generator trained for 20 iterations.
    floor, got = report["floor"], report["metrics"]
    assert floor["fid"] < got["fid"] and floor["classes"] == 10
    assert floor["precision"] > 0.5 and floor["recall"] > 0.5
    out = capsys.readouterr().out
    assert "SmallCNN classifier" in out and "floor" in out
    fid_line = next(line for line in out.splitlines() if line.startswith("FID"))
    assert fid_line.split()[1:] == [f"{got['fid']:.4g}", f"{floor['fid']:.4g}"]


def test_eval_is_repeatable_and_seeded(digits_run: Path) -> None:
    scores = []
    for seed in ("0", "0", "1"):
        assert main(["eval", str(digits_run), "-n", "200", "--metrics", "fid",
                     "--seed", seed]) == 0
        scores.append(_latest(digits_run)["metrics"]["fid"])
    assert scores[0] == scores[1] != scores[2]


def test_eval_with_a_feature_net_file(digits_run: Path, tmp_path: Path) -> None:
    net = tmp_path / "net.pt"
    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.Tanh()), net)
    assert main(["eval", str(digits_run), "-n", "200", "--feature-net", str(net)]) == 0
    report = _latest(digits_run)
    assert str(net) in report["features"] and report["feature_accuracy"] is None
    assert list(report["metrics"]) == ["fid", "kid", "precision", "recall"]
    assert _finite(report["metrics"]) and _finite(report["floor"])


def test_eval_points_mode_metrics(ring_run: Path) -> None:
    assert main(["eval", str(ring_run), "-n", "500", "--metrics", "modes,fid"]) == 0
    report = _latest(ring_run)
    assert list(report["metrics"]) == ["modes", "hq", "rkl", "fid"]
    assert report["features"] == "raw coordinates" and report["n_real"] == 500
    floor = report["floor"]
    assert floor["modes"] == 8 and floor["hq"] > 0.95 and floor["rkl"] < 0.05
    assert floor["fid"] < 0.05
    assert 0 <= report["metrics"]["modes"] <= 8
    log = read_log(ring_run / "log.json")
    assert {"val/modes", "val/hq", "val/fid", "val/gen/loss"} <= set(log[-1])


def test_unlabelled_images_are_scored_in_a_self_supervised_space(tmp_path: Path) -> None:
    folder = tmp_path / "photos"  # a flat folder of images: no classes
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(120):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "--data", f"folder:{folder}", "--out", str(out), "--eval-samples",
                 "50", *FAST]) == 0
    entry = read_log(out / "log.json")[-1]
    assert {"val/gen/loss", "val/dis/loss", "val/fid", "val/kid", "val/precision"} <= set(entry)
    assert "val/classes" not in entry and (out / "best.safetensors").exists()
    assert (out / "metrics.png").stat().st_size > 0
    assert generator_info(out / "best.safetensors").protocol["feature_net"] == SSL_VERSION
    assert main(["eval", str(out), "-n", "50"]) == 0
    report = _latest(out)
    assert report["protocol"]["feature_net"] == SSL_VERSION and _finite(report["metrics"])
    assert set(report["metrics"]) == {"fid", "kid", "precision", "recall"}
    net = tmp_path / "net.pt"
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), net)
    assert main(["eval", str(out), "-n", "50", "--feature-net", str(net)]) == 0
    report = _latest(out)
    assert report["n_real"] == 12 and report["n_floor"] == 50 and _finite(report["metrics"])
    assert report["protocol"]["feature_net"] == "file:net.pt"


def test_images_below_8_pixels_get_losses_and_need_a_feature_net(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tiny.npz"
    np.savez(data, x=np.random.default_rng(0).integers(0, 256, (120, 6, 6), dtype=np.uint8))
    out = tmp_path / "run"
    assert main(["train", "--data", f"npz:{data}", "--out", str(out), *FAST]) == 0
    entry = read_log(out / "log.json")[-1]
    assert {"val/gen/loss", "val/dis/loss"} <= set(entry) and "val/fid" not in entry
    assert not (out / "best.safetensors").exists()
    assert main(["eval", str(out)]) == 2
    assert "smaller than the 8 x 8" in capsys.readouterr().err


def _no_snapshot(tmp_path: Path, run: Path) -> Path:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "config.json", bare / "config.json")
    return bare


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "bad.pt"
    path.write_bytes(b"\x00not a network")
    return path


@pytest.mark.parametrize(
    ("make_args", "match"),
    [
        (lambda run, tmp: [str(run), "--metrics", "fid,bogus"], "unknown metric 'bogus'"),
        (lambda run, tmp: [str(run), "--metrics", "modes"], "metric 'modes' needs a 2-D"),
        (lambda run, tmp: [str(tmp)], "no config.json"),
        (lambda run, tmp: [str(_no_snapshot(tmp, run))], "holds no snapshot_iter_N.pt"),
        (lambda run, tmp: [str(run), "--feature-net", str(tmp / "none.pt")], "does not exist"),
        (lambda run, tmp: [str(run), "--feature-net", str(_garbage(tmp))],
         "cannot read feature network"),
    ],
)
def test_errors_exit_2_with_one_line(digits_run: Path, tmp_path: Path, make_args, match: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    before = (digits_run / "metrics.json").read_bytes() if (
        digits_run / "metrics.json").exists() else None
    assert main(["eval", *make_args(digits_run, tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit eval: error:") and match in err and "\n" not in err
    after = (digits_run / "metrics.json").read_bytes() if (
        digits_run / "metrics.json").exists() else None
    assert after == before  # a failed eval leaves the run as it was
