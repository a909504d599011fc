import time
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from gankit.errors import GankitError
from gankit.metrics import features
from gankit.metrics.features import (
    DigitClassifier,
    RawFeatures,
    SmallCNN,
    cached_classifier,
    extract_features,
    load_feature_net,
    train_classifier,
)


class PlainNet(nn.Module):
    """A module without a features method: its output is the feature vector."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _bars(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 images in [-1, 1]: class 0 a horizontal bar, 1 a vertical bar, 2 a diagonal."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.full((n, 1, 8, 8), -1.0)
    pos = torch.randint(1, 7, (n,), generator=g)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, pos[i], :] = 1
        elif y[i] == 1:
            x[i, 0, :, pos[i]] = 1
        else:
            x[i, 0].fill_diagonal_(1)
    x += 0.3 * torch.randn(x.shape, generator=g)
    return x.clamp(-1, 1), y


@pytest.fixture(scope="module")
def bars() -> tuple[torch.Tensor, ...]:
    return (*_bars(120, seed=0), *_bars(60, seed=1))


FAST = {"epochs": 25, "width": 8, "feature_dim": 32}


@pytest.mark.parametrize(
    "in_channels, image_size, n_classes, width, feature_dim",
    [(1, 8, 10, 32, 128), (3, 16, 5, 8, 64), (3, 32, 2, 8, 96), (1, 9, 3, 4, 16)],
)
def test_smallcnn_shapes(in_channels, image_size, n_classes, width, feature_dim) -> None:
    net = SmallCNN(in_channels, image_size, n_classes, width=width, feature_dim=feature_dim)
    x = torch.rand(5, in_channels, image_size, image_size) * 2 - 1
    assert net.features(x).shape == (5, feature_dim)
    assert net(x).shape == (5, n_classes)


def test_smallcnn_rejects_bad_config_and_input() -> None:
    with pytest.raises(GankitError, match="image_size=4"):
        SmallCNN(1, 4, 10)
    with pytest.raises(GankitError, match=r"\(N, 1, 8, 8\) but got \(2, 3, 8, 8\)"):
        DigitClassifier().features(torch.zeros(2, 3, 8, 8))


def test_classifier_learns_separable_task_and_is_seeded(bars) -> None:
    state = torch.get_rng_state()
    model, acc = train_classifier(*bars, n_classes=3, **FAST)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is not used
    assert acc >= 0.9
    assert not model.training
    again, acc_again = train_classifier(*bars, n_classes=3, **FAST)
    assert acc_again == acc
    for (name, p), q in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_classifier_on_sklearn_digits_short_schedule() -> None:
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 8 - 1  # 0..16 -> [-1, 1]
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = order[:1497], order[1497:]
    start = time.perf_counter()
    model, acc = train_classifier(x[train], y[train], x[val], y[val], n_classes=10, epochs=4)
    assert acc >= 0.95, acc
    assert time.perf_counter() - start < 30
    assert extract_features(model.features, x[val]).shape == (300, 128)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"train_y": torch.zeros(5, dtype=torch.long)}, "one integer label"),
        ({"val_y": torch.full((60,), 7)}, r"outside \[0, 2\]"),
        ({"val_x": torch.zeros(60, 1, 9, 9)}, "one size"),
    ],
)
def test_train_classifier_bad_input(bars, kwargs: dict, match: str) -> None:
    args = dict(zip(["train_x", "train_y", "val_x", "val_y"], bars, strict=True)) | kwargs
    with pytest.raises(GankitError, match=match):
        train_classifier(**args, n_classes=3, **FAST)


@pytest.fixture
def count_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real_train = features.train_classifier

    def counting(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(features, "train_classifier", counting)
    return calls


def test_cache_trains_once_then_loads(bars, tmp_path: Path, count_training: list[int]) -> None:
    model, acc = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
    loaded, acc2 = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
    assert len(count_training) == 1
    assert acc2 == acc and not loaded.training
    x = bars[2]
    assert torch.equal(loaded.features(x), model.features(x))
    (entry,) = tmp_path.iterdir()  # one file, no temporary left behind
    assert entry.name.startswith("classifier-") and entry.suffix == ".pt"
    # Other data or another recipe is another key.
    cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST | {"seed": 1})
    x_train = bars[0].clone()
    x_train[0, 0, 0, 0] += 0.5
    cached_classifier(x_train, *bars[1:], n_classes=3, cache_dir=tmp_path, **FAST)
    assert len(count_training) == 3


def test_training_or_loading_the_classifier_leaves_the_global_rng_alone(bars,
                                                                        tmp_path: Path) -> None:
    # A run that evaluates at iteration N (and so loads the classifier) must continue exactly
    # like one that does not: a resumed run stops, evaluates and snapshots at N.
    for _ in range(2):  # trained, then loaded from the cache
        before = torch.get_rng_state()
        cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
        assert torch.equal(torch.get_rng_state(), before)


def test_cache_defaults_to_gankit_cache_env(
    bars, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    cached_classifier(*bars, n_classes=3, **FAST)
    assert len(list((tmp_path / "cache").glob("classifier-*.pt"))) == 1


def test_corrupt_cache_is_retrained_with_warning(
    bars, tmp_path: Path, count_training: list[int]
) -> None:
    _, acc = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match="ignoring unreadable classifier cache"):
        _, acc2 = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
    assert len(count_training) == 2 and acc2 == acc
    cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)  # repaired: loads
    assert len(count_training) == 2


def test_a_hit_counts_only_when_every_rank_hit(bars, tmp_path: Path, count_training: list[int],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Under torch.distributed the ranks ask any_rank(miss): a rank that finds the entry
    # while another rank does not trains too, so the training's collective stop polls pair up.
    cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
    asked: list[bool] = []
    monkeypatch.setattr(features, "any_rank", lambda miss: asked.append(miss) or True)
    _, acc = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
    assert asked == [False] and len(count_training) == 2  # this rank hit, another missed
    monkeypatch.setattr(features, "any_rank", lambda miss: miss)
    _, acc2 = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
    assert len(count_training) == 2 and acc2 == acc


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script/save
def test_torchscript_round_trip(tmp_path: Path) -> None:
    model = DigitClassifier(width=8).eval()
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    net = load_feature_net(path)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert torch.allclose(extract_features(net, x), model.features(x).detach())


def test_pickled_module_without_features_is_flattened(tmp_path: Path) -> None:
    model = PlainNet()
    torch.save(model, tmp_path / "plain.pt")
    net = load_feature_net(tmp_path / "plain.pt")
    x = torch.rand(3, 1, 5, 5)
    assert torch.equal(extract_features(net, x), model(x).detach().flatten(1))


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "does not exist"),
        (b"garbage", "cannot read feature network"),
        ("state_dict", "not a module"),
    ],
)
def test_load_feature_net_errors_name_the_file(tmp_path: Path, content, match: str) -> None:
    path = tmp_path / "feat.pt"
    if content == "state_dict":
        torch.save(PlainNet().state_dict(), path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(GankitError, match=match) as info:
        load_feature_net(path)
    assert str(path) in str(info.value)


def test_raw_features_and_batched_extraction() -> None:
    points = torch.randn(1000, 2)
    assert torch.equal(extract_features(RawFeatures(), points, batch_size=64), points)
    net = SmallCNN(1, 8, 4, width=4).train()
    x = torch.rand(70, 1, 8, 8)
    batched = extract_features(net.features, x, batch_size=16)
    assert net.training  # mode restored
    net.eval()
    with torch.no_grad():
        assert torch.allclose(batched, net.features(x), atol=1e-6)
    assert not batched.requires_grad
    with pytest.raises(GankitError, match="from 0 samples"):
        extract_features(net, x[:0])


def test_classifier_step_budget_bounds_training_and_shows_progress(bars, capsys,
                                                                   monkeypatch) -> None:
    steps: list[int] = []
    real_step = torch.optim.Adam.step

    def counting_step(self, *args, **kwargs):
        steps.append(1)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
    train_classifier(*bars, n_classes=3, **FAST)  # 25 epochs of 2 batches: 50 steps
    assert len(steps) == 50
    steps.clear()
    train_classifier(*bars, n_classes=3, max_steps=7, progress=True, **FAST)
    assert len(steps) == 7
    assert "training the feature classifier: step 7/7" in capsys.readouterr().err


def test_classifier_on_uint8_images_matches_float(bars) -> None:
    x, y, vx, vy = bars
    x8 = ((x + 1) * 127.5).round().to(torch.uint8)
    v8 = ((vx + 1) * 127.5).round().to(torch.uint8)
    a, acc_a = train_classifier(x8, y, v8, vy, n_classes=3, max_steps=10, **FAST)
    b, acc_b = train_classifier(x8.float() / 127.5 - 1, y, v8.float() / 127.5 - 1, vy,
                                n_classes=3, max_steps=10, **FAST)
    assert acc_a == acc_b
    for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    torch.testing.assert_close(extract_features(a.features, v8),
                               extract_features(a.features, v8.float() / 127.5 - 1))


def test_step_budget_lowers_the_count_to_what_fits_and_never_raises_it(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(features.time, "perf_counter", lambda: now[0])
    budget = features.StepBudget(1000, seconds=10.0)
    changed, totals = [], []
    for step in range(1, 1001):
        now[0] += 0.1  # each step takes 0.1 s
        if budget.replan(step):
            changed.append(step)
        totals.append(budget.total)
        if step >= budget.total:
            break
    # At step 21, 2.1 s have passed at 0.1 s a step: 79 more steps fit (78 after rounding).
    assert changed == [features.StepBudget.PROBE + 1] and budget.total in (99, 100)
    assert totals == sorted(totals, reverse=True)
    never = features.StepBudget(1000, seconds=None)
    assert not any(never.replan(step) for step in range(1, 1001)) and never.total == 1000
    with pytest.raises(GankitError, match="max_seconds=0"):
        features.StepBudget(10, seconds=0)


def test_a_time_bound_ends_the_classifier_early_and_anneals_it(bars, tmp_path: Path,
                                                               monkeypatch) -> None:
    lrs: list[float] = []
    real_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    model, _ = train_classifier(*bars, n_classes=3, **FAST)
    assert model.trained_steps == len(lrs) == 50  # unbounded in time: every step
    lrs.clear()
    now = [0.0]

    def clock() -> float:  # each read of the module's clock is 0.01 s later
        now[0] += 0.01
        return now[0]

    with monkeypatch.context() as patch:
        patch.setattr(features.time, "perf_counter", clock)
        model, _ = train_classifier(*bars, n_classes=3, max_seconds=0.4, **FAST)
    assert model.trained_steps == len(lrs) and 30 <= len(lrs) <= 45
    assert lrs[-1] < 0.01 * lrs[0]  # the cosine was shortened to end there, not cut off
    lrs.clear()
    model, _ = train_classifier(*bars, n_classes=3, max_seconds=1e-6, **FAST)
    probe = features.StepBudget.PROBE + 1
    assert model.trained_steps == len(lrs) == probe  # out of time at the first replan
    # The bound is part of the cache key, and the entry keeps the steps taken.
    a, _ = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, **FAST)
    b, _ = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, max_seconds=1e-6, **FAST)
    assert len(list(tmp_path.iterdir())) == 2
    again, _ = cached_classifier(*bars, n_classes=3, cache_dir=tmp_path, max_seconds=1e-6,
                                 **FAST)
    assert (a.trained_steps, b.trained_steps, again.trained_steps) == (50, probe, probe)


def test_large_images_are_extracted_in_smaller_batches() -> None:
    assert features.bounded_batch(512, (1, 8, 8)) == 512
    assert features.bounded_batch(500, (3, 32, 32)) == 256
    assert features.bounded_batch(500, (3, 64, 64)) == 64
    assert features.bounded_batch(500, (3, 4096, 4096)) == 1
    seen: list[int] = []
    net = RawFeatures()
    real_forward = net.forward
    net.forward = lambda x: (seen.append(x.shape[0]), real_forward(x))[1]  # type: ignore
    x = torch.rand(150, 3, 64, 64)
    assert torch.equal(extract_features(net, x, batch_size=512), x.flatten(1))
    assert seen == [64, 64, 22]
