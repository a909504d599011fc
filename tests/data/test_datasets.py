import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from gankit.data import SPLITS, ArrayDataset, load_dataset
from gankit.data.digits import DIGITS_VAL_PER_CLASS, digits_split_indices
from gankit.errors import GankitError


@pytest.fixture(scope="module")
def digits():
    return {s: load_dataset("digits", s) for s in SPLITS}


# ------------------------------------------------------------------------------ container


def test_getitem_and_getitems_labeled():
    x = torch.arange(5 * 3, dtype=torch.float32).reshape(5, 3, 1, 1)
    y = torch.tensor([4, 3, 2, 1, 0])
    ds = ArrayDataset(x=x, y=y, name="t", n_classes=5)
    xi, yi = ds[2]
    assert torch.equal(xi, x[2]) and yi.item() == 2
    xb, yb = ds.__getitems__([4, 0, 2])
    assert torch.equal(xb, x[[4, 0, 2]]) and yb.tolist() == [0, 4, 2]
    assert ds.shape == (3, 1, 1) and len(ds) == 5


@pytest.mark.parametrize("labeled", [True, False])
def test_getitems_equals_default_per_item_collation(digits, labeled):
    ds = digits["train"]
    if not labeled:
        ds = ArrayDataset(x=ds.x, name="unlabeled")
    idx = [5, 0, 1496, 17, 5]
    expected = default_collate([ds[i] for i in idx])
    got = ds.__getitems__(idx)
    if labeled:
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    else:
        assert torch.equal(got, expected)


def test_container_converts_dtypes_and_checks_shapes():
    ds = ArrayDataset(x=torch.zeros(4, 2, dtype=torch.float64), y=torch.zeros(4, dtype=torch.int32),
                      kind="points")
    assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
    with pytest.raises(ValueError, match="needs 4 dims"):
        ArrayDataset(x=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="expected"):
        ArrayDataset(x=torch.zeros(4, 2), y=torch.zeros(3), kind="points")


@pytest.mark.parametrize(
    ("low", "high", "model_value", "data_value"),
    [(0.0, 16.0, -1.0, 0.0), (0.0, 16.0, 0.0, 8.0), (0.0, 16.0, 1.0, 16.0),
     (0.0, 255.0, 0.0, 127.5), (0.0, 255.0, 3.0, 255.0),  # overshoot is clipped
     (-2.0, 6.0, -5.0, -2.0)],
)
def test_denormalize_images(low, high, model_value, data_value):
    ds = ArrayDataset(x=torch.zeros(1, 1, 2, 2), low=low, high=high)
    out = ds.denormalize(torch.full((2, 1, 2, 2), model_value))
    assert isinstance(out, np.ndarray) and out.shape == (2, 1, 2, 2)
    np.testing.assert_allclose(out, data_value, rtol=1e-6)


def test_denormalize_points_is_identity():
    ds = load_dataset("ring8", "val")
    pts = ds.x[:10]
    np.testing.assert_array_equal(ds.denormalize(pts), pts.numpy())


# ------------------------------------------------------------------------------- digits


def test_digits_splits(digits):
    train, val, full = digits["train"], digits["val"], digits["all"]
    assert (len(train), len(val), len(full)) == (1497, 300, 1797)
    assert train.shape == (1, 8, 8) and train.kind == "image" and train.n_classes == 10
    assert (train.low, train.high) == (0.0, 16.0)
    assert float(train.x.min()) == -1.0 and float(train.x.max()) == 1.0
    # Stratified: every digit exactly DIGITS_VAL_PER_CLASS times in val.
    assert torch.bincount(val.y, minlength=10).tolist() == [DIGITS_VAL_PER_CLASS] * 10
    # Train and val are disjoint and together are the whole set, in file order.
    labels = full.y.numpy()
    tr, va = digits_split_indices(labels, "train"), digits_split_indices(labels, "val")
    assert np.intersect1d(tr, va).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(1797))
    assert torch.equal(train.x, full.x[tr]) and torch.equal(val.y, full.y[va])


def test_digits_split_does_not_depend_on_seed(digits):
    again = load_dataset("digits", "val", seed=123)
    assert torch.equal(again.x, digits["val"].x) and torch.equal(again.y, digits["val"].y)


def test_digits_denormalize_round_trips_to_raw_values(digits):
    from sklearn.datasets import load_digits

    raw = load_digits().images
    back = digits["all"].denormalize(digits["all"].x)[:, 0]
    np.testing.assert_allclose(back, raw, atol=1e-5)


def test_digits_image_size_resizes(digits):
    big = load_dataset("digits", "val", image_size=16)
    assert big.shape == (1, 16, 16) and len(big) == 300
    assert float(big.x.min()) >= -1.0 and float(big.x.max()) <= 1.0
    # A 2x upsample keeps the mean brightness of each image close to the original.
    torch.testing.assert_close(big.x.mean((1, 2, 3)), digits["val"].x.mean((1, 2, 3)),
                               atol=0.05, rtol=0)


# --------------------------------------------------------------------------------- toy2d


@pytest.mark.parametrize(("spec", "k", "sigma"), [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_toy2d_modes_and_samples(spec, k, sigma):
    ds = load_dataset(spec, "train", seed=3)
    assert ds.kind == "points" and ds.shape == (2,) and len(ds) == 50_000
    assert ds.n_classes == k and ds.sigma == sigma and ds.modes.shape == (k, 2)
    assert len({tuple(np.round(m, 6)) for m in ds.modes.tolist()}) == k
    # Every point is within 6 sigma of the mode its label names, and modes are used uniformly.
    dist = (ds.x - ds.modes[ds.y]).norm(dim=1)
    assert float(dist.max()) < 6 * sigma
    counts = torch.bincount(ds.y, minlength=k).float()
    assert float(counts.min()) > 0.8 * len(ds) / k
    assert float(ds.x.std(0).min()) > 0.5  # spread over the modes, not collapsed


def test_ring8_modes_on_unit_circle():
    modes = load_dataset("ring8", "val").modes.double()
    torch.testing.assert_close(modes.norm(dim=1), torch.ones(8, dtype=torch.float64),
                               atol=1e-6, rtol=0)
    angles = torch.atan2(modes[:, 1], modes[:, 0]).remainder(2 * np.pi).sort().values
    torch.testing.assert_close(angles, torch.arange(8, dtype=torch.float64) * np.pi / 4,
                               atol=1e-6, rtol=0)


def test_grid25_modes():
    modes = load_dataset("grid25", "val").modes
    assert sorted(set(modes[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert len({tuple(m) for m in modes.tolist()}) == 25


def test_toy2d_seed_and_split_determinism():
    a = load_dataset("ring8", "val", seed=1)
    assert torch.equal(a.x, load_dataset("ring8", "val", seed=1).x)
    assert not torch.equal(a.x, load_dataset("ring8", "val", seed=2).x)
    train = load_dataset("ring8", "train", seed=1)
    assert len(a) == 10_000 and not torch.equal(train.x[:10_000], a.x)
    full = load_dataset("ring8", "all", seed=1)
    assert len(full) == 60_000 and torch.equal(full.x[50_000:], a.x)


# ------------------------------------------------------------------------------ dispatch


@pytest.mark.parametrize(
    ("spec", "kwargs", "match"),
    [
        ("mnist", {}, r"unknown data spec 'mnist'.*'digits'.*'folder:PATH'"),
        ("", {}, "unknown data spec"),
        ("folder:", {}, "no path after 'folder:'"),
        ("digits", {"split": "test"}, "unknown split 'test'"),
        ("digits", {"image_size": 0}, "image size 0"),
        ("ring8", {"image_size": 32}, "does not apply"),
    ],
)
def test_load_dataset_errors(spec, kwargs, match):
    with pytest.raises(GankitError, match=match):
        load_dataset(spec, **kwargs)


def test_repr_is_short(digits):
    text = repr(digits["train"])
    assert "1497" in text and "digits" in text and len(text) < 120


def test_a_registered_source_loads_by_its_spec_and_is_listed(monkeypatch, tmp_path):
    from gankit.data import SOURCES, register_source, source_specs

    monkeypatch.setattr("gankit.data.registry.SOURCES", dict(SOURCES))
    seen = []

    def load(arg, split, *, image_size, seed, mode):
        seen.append((arg, split, image_size, seed, mode))
        return ArrayDataset(x=torch.zeros(3, 1, 8, 8), name="blank", split=split)

    register_source("blank", load, path="DIR")
    assert "'blank:DIR'" in source_specs() and "'digits'" in source_specs()
    ds = load_dataset(f"blank:{tmp_path}", "val", image_size=8, seed=4)
    assert ds.name == "blank" and seen == [(str(tmp_path), "val", 8, 4, "auto")]
    with pytest.raises(GankitError, match="registered already"):
        register_source("blank", load)
    with pytest.raises(GankitError, match="data mode 'lazy' does not apply to blank:") as info:
        load_dataset(f"blank:{tmp_path}", mode="lazy")
    assert info.value.option == "data_mode" and "--" not in str(info.value)
    with pytest.raises(GankitError, match=r"unknown data spec 'blank'; use one of .*'blank:DIR'"):
        load_dataset("blank")


def test_both_kinds_of_source_load_the_same_subset(tmp_path):
    """ArrayDataset and LazyImages share DataSource: ``load(indices)`` is one call for both."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    memory = load_dataset(f"folder:{tmp_path}", "all", mode="memory")
    lazy = load_dataset(f"folder:{tmp_path}", "all", mode="lazy")
    assert type(memory) is not type(lazy)
    for source in (memory, lazy):
        part = source.load([1, 4])
        assert torch.equal(part.x, memory.x[[1, 4]]) and part.name == memory.name
    assert memory.load() is memory
