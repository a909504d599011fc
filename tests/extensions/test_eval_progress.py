"""GANEvaluator's phases: progress lines, their times in the log, one evaluation per iteration,
and the CLI's --eval-samples and trial-run help."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.cli.config import TrainConfig
from gankit.cli.parser import build_parser
from gankit.data import ArrayDataset, load_dataset
from gankit.data.datasets import to_unit
from gankit.errors import GankitError
from gankit.extensions import GANEvaluator, LogReport
from gankit.gan.sampling import generate
from gankit.gan.updaters import GANUpdater
from gankit.metrics.features import StepLine, train_classifier
from gankit.metrics.scoring import FeatureSpace, compute_metrics
from gankit.models import MLPDiscriminator, MLPGenerator
from gankit.training import Trainer, report_scope

PHASES = ("val_time/losses", "val_time/generate", "val_time/features", "val_time/metrics")


@pytest.fixture(scope="module")
def val() -> ArrayDataset:
    return load_dataset("ring8", "val")


def _trainer(val: ArrayDataset, tmp_path: Path, iterations: int = 1) -> Trainer:
    torch.manual_seed(0)
    gen, dis = MLPGenerator(hidden=16, depth=2), MLPDiscriminator(2, 16)
    updater = GANUpdater(gen, dis, torch.optim.Adam(gen.parameters()),
                         torch.optim.Adam(dis.parameters()), [val.x[:32]])
    return Trainer(updater, (iterations, "iteration"), tmp_path)


def _evaluate(ev: GANEvaluator, trainer: Trainer) -> dict[str, float]:
    observation: dict[str, object] = {}
    with report_scope(observation):
        ev(trainer)
    return {k: float(v) for k, v in observation.items()}  # type: ignore[arg-type]


def _counting() -> tuple[FeatureSpace, list[int]]:
    calls: list[int] = []

    def features(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return x

    return FeatureSpace(features, "counting"), calls


def test_each_phase_is_shown_and_timed(val: ArrayDataset, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    ev = GANEvaluator(val, metrics=["fid", "pr"], n=600, progress=True, timings=True)
    out = _evaluate(ev, _trainer(val, tmp_path))
    err = capsys.readouterr().err
    for line in ("evaluating iteration 0 ...", "held-out losses ...",
                 "generating 600 samples ...", "generating 600 samples: done (",
                 "computing the features of 600 samples: done (",
                 "computing the metrics (fid, pr): done (", "evaluated iteration 0 in "):
        assert line in err
    assert all(out[k] >= 0 for k in PHASES)
    assert out["val_time/total"] >= sum(out[k] for k in PHASES)
    # A quick evaluation: the next one writes its summary line only.
    _evaluate(ev, _trainer(val, tmp_path))
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluated iteration 0 in ")
    assert "generate " in lines[0] and "metrics " in lines[0]


def test_silent_and_untimed_by_default(val: ArrayDataset, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = _evaluate(GANEvaluator(val, metrics=["fid"], n=100), _trainer(val, tmp_path))
    assert capsys.readouterr().err == ""
    assert not any("time" in k for k in out) and "val/fid" in out


def test_samples_in_pieces_are_those_of_one_call(val: ArrayDataset, tmp_path: Path) -> None:
    trainer = _trainer(val, tmp_path)
    gen = trainer.updater.raw_models["gen"]
    ev = GANEvaluator(val, metrics=["fid"], n=100, batch_size=300, seed=3)
    whole = generate(gen, 2500, seed=3)
    for lo, hi in ((0, 2500), (700, 1900), (1000, 1000)):
        with torch.no_grad():
            got = ev._generate(gen, 2500, (lo, hi), 1000, torch.device("cpu"),
                               StepLine(hi - lo, "generating", False))
        assert torch.allclose(got, whole[lo:hi], atol=1e-6)


def test_an_iteration_is_evaluated_once_in_a_run(val: ArrayDataset, tmp_path: Path) -> None:
    space, calls = _counting()
    trainer = _trainer(val, tmp_path, iterations=4)
    ev = GANEvaluator(val, metrics=["fid"], n=50, n_real=80, features=space, timings=True)
    # Two triggers firing at the same iteration (a periodic one and the end of the run).
    trainer.extend(ev, name="periodic", trigger=(2, "iteration"))
    trainer.extend(ev, name="at_the_end", trigger=(4, "iteration"))
    trainer.extend(LogReport(trigger=(2, "iteration"), filename=None))
    trainer.run()
    assert calls == [80, 50, 50]  # real features once, then iterations 2 and 4 once each
    log = trainer.get_extension("LogReport").log  # type: ignore[attr-defined]
    assert [e["iteration"] for e in log] == [2, 4]
    assert all("val/fid" in e and "val_time/generate" in e for e in log)


def test_a_resume_after_an_evaluation_does_not_redo_it(val: ArrayDataset,
                                                       tmp_path: Path) -> None:
    space, calls = _counting()
    trainer = _trainer(val, tmp_path, iterations=2)
    ev = GANEvaluator(val, metrics=["fid"], n=50, n_real=80, features=space)
    trainer.extend(ev, trigger=(2, "iteration"))
    trainer.run()
    state = trainer.state_dict()
    assert calls == [80, 50]
    first = {k: v for k, v in state["extensions"]["GANEvaluator"]["extension"]["done"].items()}
    # The resumed run's evaluator meets iteration 2 again (an extension redone after a stop).
    space2, calls2 = _counting()
    again = _trainer(val, tmp_path, iterations=2)
    ev2 = GANEvaluator(val, metrics=["fid"], n=50, n_real=80, features=space2)
    again.extend(ev2, trigger=(2, "iteration"))
    again.load_state_dict(state)
    ev2.initialize(again)
    assert _evaluate(ev2, again) == pytest.approx(first) and calls2 == []
    ev2.finalize(again)
    # Outside a run every call evaluates (scores of changed weights, say).
    _evaluate(ev2, again)
    assert calls2 == [80, 50]


def test_old_snapshots_without_the_state_load(val: ArrayDataset) -> None:
    ev = GANEvaluator(val, metrics=(), n=10)
    ev.load_state_dict({})
    assert ev.state_dict() == {"done_at": None, "done": {}}


def test_eval_samples_option(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = TrainConfig().merged({"eval_samples": 200})
    cfg.validate()
    assert cfg.run.eval_samples == 200
    with pytest.raises(GankitError, match="eval-samples"):
        TrainConfig().merged({"eval_samples": 1}).validate()
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", "ring8", "--eval-samples", "1"])
    assert exit_.value.code == 2
    assert "--eval-samples" in capsys.readouterr().err
    help_text = build_parser()._subparsers._group_actions[0].choices[  # type: ignore[union-attr]
        "train"].format_help()
    assert "--iterations 20 --sample-every 1000 --eval-samples 200" in help_text


def _record_conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows of every uint8 -> float conversion in the metrics' modules."""
    import gankit.metrics.features as features_module
    import gankit.metrics.scoring as scoring_module

    rows: list[int] = []

    def recording(x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            rows.append(x.shape[0])
        return to_unit(x)

    monkeypatch.setattr(features_module, "to_unit", recording)
    monkeypatch.setattr(scoring_module, "to_unit", recording)
    return rows


def test_uint8_images_become_float_a_batch_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _record_conversions(monkeypatch)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (300, 1, 8, 8), dtype=torch.uint8, generator=g)
    space = FeatureSpace(lambda x: x.flatten(1)[:, :4], "pixels", batch_size=100)
    real = torch.randn(200, 4, generator=g)
    scores = compute_metrics(images, real, ["fid"], space=space)
    assert rows == [100, 100, 100] and scores["fid"] > 0  # never the 300 at once
    rows.clear()
    held = torch.cat([images, images])  # 600: more than extract_features' batch of 512
    train_classifier(images, torch.arange(300) % 3, held, torch.arange(600) % 3, n_classes=3,
                     max_steps=1, batch_size=32, width=4, feature_dim=8)
    assert rows and max(rows) == 512  # the held-out accuracy too, per batch


def test_fewer_samples_keep_the_feature_networks_held_out_set(
        val: ArrayDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gankit.extensions.gan_evaluator as module

    seen: list[int] = []
    real_feature_space = module.feature_space

    def recording(train: ArrayDataset, held: ArrayDataset, **kw: object) -> FeatureSpace:
        seen.append(len(held))
        return real_feature_space(train, held, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "feature_space", recording)
    for n in (100, 2500):
        _evaluate(GANEvaluator(val, val, metrics=["fid"], n=n), _trainer(val, tmp_path))
    # The same held-out set (a cached classifier's key) at n=100 as at the default n.
    assert seen == [min(len(val), 2500)] * 2
