"""gankit.metrics.scoring: the feature space per data set, metric names, and compute_metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gankit.data import ArrayDataset, load_dataset
from gankit.errors import GankitError
from gankit.metrics import features as features_module
from gankit.metrics import ssl as ssl_module
from gankit.metrics.scoring import (
    FeatureSpace,
    compute_metrics,
    default_metrics,
    feature_space,
    make_protocol,
    parse_metrics,
    real_subset,
)
from gankit.metrics.ssl import SSL_VERSION


@pytest.fixture(autouse=True)
def _cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANKIT_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def ring() -> tuple[ArrayDataset, ArrayDataset]:
    return load_dataset("ring8", "train"), load_dataset("ring8", "val")


def _halves(n: int, seed: int, labels: bool = True) -> ArrayDataset:
    """8x8 images: class 0 bright on the left half, class 1 on the right, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.full((n, 1, 8, 8), -0.8) + 0.1 * torch.randn(n, 1, 8, 8, generator=g)
    for i in range(n):
        cols = slice(0, 4) if y[i] == 0 else slice(4, 8)
        x[i, 0, :, cols] += 1.5
    return ArrayDataset(x=x.clamp(-1, 1), y=y if labels else None, kind="image", name="halves",
                        n_classes=2 if labels else 0)


def test_points_use_raw_coordinates(ring: tuple[ArrayDataset, ArrayDataset]) -> None:
    train, val = ring
    space = feature_space(train, val)
    assert space.description == "raw coordinates" and space.classify is None
    torch.testing.assert_close(space.features(val.x[:5]), val.x[:5])
    assert default_metrics(space, val) == ("fid", "kid", "pr", "modes")


def test_labelled_images_train_a_classifier_once(_cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    train, val = _halves(160, 0), _halves(60, 1)
    space = feature_space(train, val)
    assert space.accuracy is not None and space.accuracy > 0.9
    assert space.n_classes == 2 and "held-out accuracy" in space.description
    assert len(list(_cache.glob("classifier-*.pt"))) == 1
    logits = space.classify(space.features(val.x))
    assert logits.shape == (60, 2)
    assert default_metrics(space, val) == ("fid", "kid", "pr", "classes")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the classifier was trained again")

    monkeypatch.setattr(features_module, "train_classifier", no_training)
    again = feature_space(train, val)
    assert again.accuracy == space.accuracy


def test_unlabelled_images_train_a_self_supervised_network_once(
        _cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, val = _halves(64, 0, labels=False), _halves(32, 1, labels=False)
    space = feature_space(train, val)
    assert space.name == SSL_VERSION and space.classify is None and space.accuracy is None
    assert "without labels" in space.description and "view-matching" in space.description
    assert len(list(_cache.glob("ssl-*.pt"))) == 1 and not list(_cache.glob("classifier-*"))
    assert space.features(val.x).shape == (32, 128)
    assert default_metrics(space, val) == ("fid", "kid", "pr")
    assert make_protocol(space, n_real=32, n_generated=10, real_split="val",
                         seed=0).feature_net == SSL_VERSION

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the self-supervised network was trained again")

    monkeypatch.setattr(ssl_module, "train_ssl", no_training)
    again = feature_space(train, val)
    assert again.weights_hash == space.weights_hash
    torch.testing.assert_close(again.features(val.x), space.features(val.x))


def test_images_below_8_pixels_need_a_feature_net() -> None:
    x = torch.rand(20, 1, 4, 4) * 2 - 1
    data = ArrayDataset(x=x, kind="image", name="tiny")
    with pytest.raises(GankitError, match=r"smaller than the 8 x 8.*feature network file"):
        feature_space(data, data)


def test_feature_net_file(tmp_path: Path) -> None:
    data = _halves(20, 0, labels=False)
    path = tmp_path / "net.pt"
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 5)), path)
    space = feature_space(data, data, feature_net=path)
    assert str(path) in space.description and "5 features" in space.description
    assert space.features(data.x).shape == (20, 5)
    assert default_metrics(space, data) == ("fid", "kid", "pr")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "does not exist"),
        (b"not a network", "cannot read feature network"),
        (nn.Linear(10, 3), "fails on this data's samples"),
        ({"weight": torch.ones(2)}, "not a module"),
    ],
)
def test_bad_feature_net_files(tmp_path: Path, content: object, match: str) -> None:
    data = _halves(8, 0, labels=False)
    path = tmp_path / "net.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(GankitError, match=match):
        feature_space(data, data, feature_net=path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fid", ("fid",)),
        (" FID , pr,kid", ("fid", "pr", "kid")),
        ("fid,fid,modes", ("fid", "modes")),
        (["kid", "modes"], ("kid", "modes")),
        (None, ("fid", "kid", "pr", "modes")),
    ],
)
def test_parse_metrics(ring: tuple[ArrayDataset, ArrayDataset], text: object,
                       expected: tuple[str, ...]) -> None:
    space = FeatureSpace(lambda x: x, "raw coordinates")
    assert parse_metrics(text, space, ring[1]) == expected


@pytest.mark.parametrize(
    ("text", "points", "match"),
    [
        ("fid,fdi", True, "unknown metric 'fdi'; choose from fid, kid, pr, modes, classes"),
        (" , ", True, "no metric named"),
        ("classes", True, "metric 'classes' needs the classifier"),
        ("modes", False, "metric 'modes' needs a 2-D mixture"),
    ],
)
def test_parse_metrics_errors(ring: tuple[ArrayDataset, ArrayDataset], text: str, points: bool,
                              match: str) -> None:
    data = ring[1] if points else _halves(8, 0, labels=False)
    with pytest.raises(GankitError, match=match):
        parse_metrics(text, FeatureSpace(lambda x: x, "raw coordinates"), data)


def test_real_subset_is_fixed_and_sized(ring: tuple[ArrayDataset, ArrayDataset]) -> None:
    val = ring[1]
    a, b = real_subset(val, 100), real_subset(val, 100)
    assert len(a) == 100 and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, val.x[:100])  # a random subset, not the first rows
    assert a.modes is val.modes and a.sigma == val.sigma
    assert real_subset(val, None) is val and real_subset(val, 10**6) is val


def test_points_perfect_versus_collapsed(ring: tuple[ArrayDataset, ArrayDataset]) -> None:
    train, val = ring
    space = feature_space(train, val)
    real = real_subset(val, 800).x
    names = ("fid", "kid", "pr", "modes")
    perfect = compute_metrics(train.x[:800], real, names, space=space, data=val, kid_subsets=5)
    assert list(perfect) == ["fid", "kid", "precision", "recall", "modes", "hq", "rkl"]
    assert perfect["modes"] == 8 and perfect["hq"] > 0.97 and perfect["rkl"] < 0.02
    assert perfect["fid"] < 0.01 and perfect["precision"] > 0.9 and perfect["recall"] > 0.9

    one_mode = train.x[train.y == 0][:800]  # a generator collapsed onto mode 0
    collapsed = compute_metrics(one_mode, real, names, space=space, data=val, kid_subsets=5)
    assert collapsed["modes"] == 1 and collapsed["rkl"] == pytest.approx(math.log(8))
    assert collapsed["recall"] < 0.2 < collapsed["precision"]
    assert collapsed["fid"] > 100 * perfect["fid"] and collapsed["kid"] > perfect["kid"]


def test_non_finite_samples_score_nan(ring: tuple[ArrayDataset, ArrayDataset]) -> None:
    val = ring[1]
    samples = val.x[:50].clone()
    samples[3, 0] = float("nan")
    scores = compute_metrics(samples, val.x[:50], ("fid", "modes"),
                             space=FeatureSpace(lambda x: x, "raw"), data=val)
    assert list(scores) == ["fid", "modes", "hq", "rkl"]
    assert all(math.isnan(v) for v in scores.values())


def test_class_coverage_uses_the_classifier_head() -> None:
    # Features are one-hot class scores already, so the head is the identity.
    space = FeatureSpace(lambda x: x.reshape(x.shape[0], -1), "one-hot",
                         classify=lambda f: f, n_classes=4)
    samples = torch.eye(4)[torch.tensor([0, 1, 1, 1, 2, 0])].reshape(6, 1, 2, 2)
    real = torch.eye(4)[torch.arange(8) % 4]
    scores = compute_metrics(samples, real, ("classes",), space=space)
    assert scores["classes"] == 3
    q = torch.tensor([2, 3, 1]) / 6
    assert scores["class_kl"] == pytest.approx(float((q * torch.log(q * 4)).sum()))
