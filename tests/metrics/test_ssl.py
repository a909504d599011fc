"""gankit.metrics.ssl: the SimCLR feature network of unlabelled images."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gankit.data.augment import DiffAugment
from gankit.errors import GankitError
from gankit.metrics import extract_features, frechet_distance
from gankit.metrics import ssl as ssl_module
from gankit.metrics.ssl import cached_ssl, nt_xent, train_ssl, view_accuracy
from gankit.training.stop import StopRequested, clear, request_stop

FAST = {"epochs": 15, "batch_size": 32, "width": 8, "feature_dim": 32}


def _boxes(n: int, seed: int) -> torch.Tensor:
    """8x8 images of one filled rectangle (random corners and brightness) on a dark ground."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 1, 8, 8), -1.0)
    corners = torch.randint(0, 8, (n, 4), generator=g)
    level = torch.rand(n, generator=g) * 1.5 - 0.5
    for i in range(n):
        (r0, r1), (c0, c1) = corners[i, :2].sort().values, corners[i, 2:].sort().values
        x[i, 0, r0 : r1 + 1, c0 : c1 + 1] = level[i]
    return x


def test_nt_xent_by_hand() -> None:
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    t = 0.5
    # view 0 (z1[0]) has z1[1] (cos 0), z2[0] (cos 1, its partner), z2[1] (cos 0)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / t
    want = 0.0
    partner = [2, 3, 0, 1]
    for i in range(4):
        others = [j for j in range(4) if j != i]
        want += -(sim[i, partner[i]] - torch.logsumexp(sim[i, others], 0))
    torch.testing.assert_close(nt_xent(z1, z2, t), want / 4)
    # identical views of orthogonal images: each view's partner at cos 1, the 6 others at 0
    eye = torch.eye(4)
    floor = math.log(1 + 6 * math.exp(-1 / t))
    assert float(nt_xent(eye, eye, t)) == pytest.approx(floor, rel=1e-5)


def test_training_learns_features_that_match_views_and_is_seeded() -> None:
    train, val = _boxes(256, 0), _boxes(128, 1)
    untrained_state = torch.get_rng_state()
    model, score = train_ssl(train, val, **FAST)
    # the global RNG is left where it was: a cached net and a trained one leave runs alike
    assert torch.equal(torch.get_rng_state(), untrained_state)
    assert model.trained_steps == 15 * 8 and not model.training
    again, score2 = train_ssl(train, val, **FAST)
    assert score == score2
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # on held-out images, the trained net tells views apart better than a one-step one
    fresh, fresh_score = train_ssl(train, val, **(FAST | {"max_steps": 1}))
    assert fresh_score == view_accuracy(fresh, val) < score

    def held_out_loss(net: torch.nn.Module) -> float:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            views = DiffAugment()
            return float(nt_xent(net(views(val)), net(views(val)), 0.2))

    assert held_out_loss(model) < 0.95 * held_out_loss(fresh)  # chance: log(2n - 1)


def test_features_rank_blur_and_noise() -> None:
    train, val = _boxes(512, 0), _boxes(256, 1)
    model, _ = train_ssl(train, val, **FAST)
    real = extract_features(model.features, val)
    sample = train[:256]
    noise = torch.rand(val.shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    probes = {"real": sample, "blurred": F.avg_pool2d(sample, 3, 1, 1, count_include_pad=False),
              "noise": noise}
    fid = {name: frechet_distance(real, extract_features(model.features, x))
           for name, x in probes.items()}
    assert fid["real"] < fid["blurred"] < fid["noise"], fid


def test_cache_trains_once_per_data_and_recipe(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    train, val = _boxes(64, 0), _boxes(32, 1)
    model, score = cached_ssl(train, val, cache_dir=tmp_path, **FAST)
    assert len(list(tmp_path.glob("ssl-*.pt"))) == 1
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained again")

    with monkeypatch.context() as mp:
        mp.setattr(ssl_module, "train_ssl", no_training)
        loaded, score2 = cached_ssl(train, val, cache_dir=tmp_path, **FAST)
    assert score2 == score and loaded.trained_steps == model.trained_steps
    torch.testing.assert_close(extract_features(loaded.features, val),
                               extract_features(model.features, val))
    cached_ssl(train, val, cache_dir=tmp_path, **(FAST | {"temperature": 0.5}))
    cached_ssl(_boxes(64, 5), val, cache_dir=tmp_path, **FAST)
    assert len(list(tmp_path.glob("ssl-*.pt"))) == 3
    with pytest.raises(GankitError, match=r"unknown training argument.*colour"):
        cached_ssl(train, val, cache_dir=tmp_path, colour=1)


def test_one_held_out_image_trains_but_measures_no_view_matching() -> None:
    model, score = train_ssl(_boxes(16, 0), _boxes(1, 1), **(FAST | {"epochs": 1}))
    assert model.trained_steps == 1 and math.isnan(score)


def test_a_stop_signal_abandons_training_and_caches_nothing(tmp_path: Path) -> None:
    request_stop()
    try:
        with pytest.raises(StopRequested):
            cached_ssl(_boxes(64, 0), _boxes(32, 1), cache_dir=tmp_path, **FAST)
    finally:
        clear()
    assert not list(tmp_path.glob("ssl-*"))


@pytest.mark.parametrize("bad, match", [
    ({"train_x": torch.zeros(1, 1, 8, 8)}, "at least 2 square image"),
    ({"val_x": torch.zeros(0, 1, 8, 8)}, "at least 1 square image"),
    ({"val_x": torch.zeros(4, 1, 16, 16)}, "pass images of one size"),
    ({"temperature": 0.0}, "must be"),
])
def test_bad_arguments_are_refused(bad: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"train_x": _boxes(8, 0), "val_x": _boxes(4, 1)} | bad
    with pytest.raises(GankitError, match=match):
        train_ssl(**args)  # type: ignore[arg-type]
