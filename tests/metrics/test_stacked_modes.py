"""Stacked MNIST's modes and KL: the formula on known modes, the cached digit classifier, and
``val/modes`` / ``val/kl`` from the evaluator."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gankit.data import ArrayDataset
from gankit.data.stackedmnist import load_stacked_mnist
from gankit.errors import GankitError
from gankit.extensions import GANEvaluator
from gankit.gan.updaters import GANUpdater
from gankit.metrics import features as features_module
from gankit.metrics import scoring, stacked_modes
from gankit.metrics.stacked_modes import (
    CHANNEL_FEATURES_VERSION,
    STACKED_SAMPLES,
    StackedModeJudge,
    stacked_mode_judge,
    stacked_mode_scores,
)
from gankit.models import DCGANDiscriminator
from gankit.training import Trainer, report_scope
from testsupport import digits_as_mnist_idx


class IntensityOracle(nn.Module):
    """Reads digit d from a channel filled with the value 2 * d / 9 - 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = torch.linspace(-1, 1, 10)
        return -(x.mean(dim=(1, 2, 3))[:, None] - levels).square() * 1e4


def _images(modes: list[int]) -> torch.Tensor:
    d = torch.tensor([[m // 100, m // 10 % 10, m % 10] for m in modes], dtype=torch.float32)
    return (2 * d / 9 - 1)[:, :, None, None].expand(-1, -1, 8, 8).contiguous()


def test_scores_follow_the_formula() -> None:
    judge = StackedModeJudge(IntensityOracle(), 1.0)  # type: ignore[arg-type]
    x = _images([0, 1, 1, 999])
    assert judge.digits(x).tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 1], [9, 9, 9]]
    assert judge.modes(x).tolist() == [0, 1, 1, 999]
    scores = stacked_mode_scores(judge, x)
    want = 0.25 * math.log(250) + 0.5 * math.log(500) + 0.25 * math.log(250)
    assert scores["modes"] == 3 and scores["kl"] == pytest.approx(want, rel=1e-9)
    every = stacked_mode_scores(judge, _images(list(range(1000))))
    assert every == {"modes": 1000.0, "kl": pytest.approx(0.0, abs=1e-12),
                     "kl_digits": pytest.approx(0.0, abs=1e-12)}
    one = stacked_mode_scores(judge, _images([123] * 5))
    assert one == {"modes": 1.0, "kl": pytest.approx(math.log(1000)),
                   "kl_digits": pytest.approx(3 * math.log(10))}
    # balanced digits in every channel, but the channels agree: all the KL is their dependence
    same = stacked_mode_scores(judge, _images([111 * k for k in range(10)]))
    assert same["kl_digits"] == pytest.approx(0.0, abs=1e-12)
    assert same["kl"] == pytest.approx(math.log(100))
    # the identity: kl = kl_digits + total correlation, which is 0 for independent channels
    grid = stacked_mode_scores(judge, _images([m for m in range(1000) if m % 10 < 5]))
    assert grid["kl"] == pytest.approx(math.log(2)) and grid["kl_digits"] == pytest.approx(
        math.log(2))
    with pytest.raises(GankitError, match="3 channels"):
        judge.digits(torch.zeros(2, 1, 8, 8))


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> tuple[ArrayDataset, ArrayDataset]:
    folder = digits_as_mnist_idx(tmp_path_factory.mktemp("mnist"), side=8)
    return (load_stacked_mnist(folder, "train", n=3000),
            load_stacked_mnist(folder, "val", n=400))


def test_the_judge_is_trained_once_and_prints_its_accuracy(
        stacks: tuple[ArrayDataset, ArrayDataset], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    train, val = stacks
    judge = stacked_mode_judge(train, val, cache_dir=tmp_path, max_steps=150)
    assert judge.accuracy > 0.75
    assert f"held-out accuracy {judge.accuracy:.2%} per channel" in capsys.readouterr().err
    # real stacks cover their modes; one repeated image covers one
    real = stacked_mode_scores(judge, train.x)
    assert real["modes"] > 800 and real["kl"] < 0.6
    assert stacked_mode_scores(judge, train.x[:1].expand(50, -1, -1, -1)) == {
        "modes": 1.0, "kl": pytest.approx(math.log(1000)),
        "kl_digits": pytest.approx(3 * math.log(10))}

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached classifier was trained again")

    monkeypatch.setattr(features_module, "train_classifier", no_training)
    again = stacked_mode_judge(train, val, cache_dir=tmp_path, max_steps=150, progress=False)
    assert again.accuracy == judge.accuracy
    torch.testing.assert_close(again.modes(val.x), judge.modes(val.x))
    with pytest.raises(GankitError, match="not Stacked MNIST"):
        stacked_mode_judge(val, ArrayDataset(val.x, val.y, name="other", n_classes=1000))


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Both classifiers bounded to a few steps, cached in a fresh folder."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(scoring.CLASSIFIER_OPTIONS, "max_steps", 20)
    monkeypatch.setitem(stacked_modes.DIGIT_CLASSIFIER_OPTIONS, "max_steps", 100)


def test_scoring_picks_the_stacked_metric(stacks: tuple[ArrayDataset, ArrayDataset],
                                          quick: None) -> None:
    train, val = stacks
    space = scoring.feature_space(train, val)
    assert space.stacked is not None and "digit SmallCNN" in space.description
    assert space.name == CHANNEL_FEATURES_VERSION and space.classify is None
    # FID in the judge's per-channel features: other real stacks near, noise far (the
    # 1,000-class classifier these replace gave 0 for both)
    real = scoring.real_subset(val, 200).x
    feats = {k: scoring.extract_features(space.features, x) for k, x in (
        ("val", real), ("train", train.x[:200]),
        ("noise", torch.randint(0, 256, real.shape, dtype=torch.uint8)))}
    assert feats["val"].shape == (200, 3 * stacked_modes.DIGIT_CLASSIFIER_OPTIONS["feature_dim"])
    fid = {k: scoring.frechet_distance(feats["val"], feats[k]) for k in ("train", "noise")}
    assert 0 < fid["train"] < fid["noise"] / 4, fid
    names = scoring.default_metrics(space, val)
    assert "stacked" in names and "classes" not in names
    assert scoring.default_n(train) == STACKED_SAMPLES == 26_000
    stats = feats["val"]
    scores = scoring.compute_metrics(train.x[:500], stats, ["stacked"], space=space, data=val)
    assert set(scores) == {"modes", "kl", "kl_digits"}
    assert scores == stacked_mode_scores(space.stacked, train.x[:500])
    plain = ArrayDataset(val.x, val.y, name="other", n_classes=1000)
    other = scoring.feature_space(plain, plain)
    assert other.stacked is None and "stacked" not in scoring.default_metrics(other, plain)
    with pytest.raises(GankitError, match="metric 'stacked' needs Stacked MNIST"):
        scoring.parse_metrics("stacked", other, plain)


class ReplayGen(nn.Module):
    """Returns stored images in turn: a generator that draws the real distribution."""

    n_classes = 0

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("images", images.float() / 127.5 - 1)
        self.scale = nn.Parameter(torch.ones(()))

    def sample_z(self, n: int, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, 1, device=device, generator=generator)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        idx = (z[:, 0] * len(self.images)).long().clamp(max=len(self.images) - 1)
        return self.images[idx] * self.scale


def test_the_evaluator_reports_val_modes_and_kl(stacks: tuple[ArrayDataset, ArrayDataset],
                                                quick: None, tmp_path: Path) -> None:
    train, val = stacks
    torch.manual_seed(0)
    gen, dis = ReplayGen(train.x), DCGANDiscriminator((3, 8, 8), 4)
    updater = GANUpdater(gen, dis, torch.optim.Adam(gen.parameters()),
                         torch.optim.Adam(dis.parameters()), [train.unit(slice(0, 8))])
    trainer = Trainer(updater, (1, "iteration"), tmp_path)
    observation: dict[str, object] = {}
    with report_scope(observation):
        GANEvaluator(val, train, n=2000, kid_subsets=2)(trainer)
    assert {"val/modes", "val/kl", "val/fid"} <= set(observation)
    assert float(observation["val/modes"]) > 700  # type: ignore[arg-type]
    assert 0 <= float(observation["val/kl"]) < 1.0  # type: ignore[arg-type]
