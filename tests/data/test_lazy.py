"""uint8 storage, the lazy folder source and the loader that turns batches into floats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import make_loader
from gankit.data.datasets import HOLDOUT_MAX, ArrayDataset, holdout_indices, to_unit
from gankit.data.lazy import CorruptBatch, LazyImages
from gankit.data.registry import load_dataset
from gankit.errors import GankitError
from gankit.metrics.scoring import real_subset
from gankit.training.reporter import report_scope


def write_folder(root, n=24, size=(10, 12), classes=("a", "b"), seed=0):
    """``n`` random RGB PNGs (the pixels returned, in file order) split over class folders."""
    rng = np.random.default_rng(seed)
    pixels = []
    for i in range(n):
        a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        sub = root / classes[i % len(classes)] if classes else root
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(sub / f"{i:03d}.png")
        pixels.append((classes[i % len(classes)] if classes else "", f"{i:03d}", a))
    pixels.sort(key=lambda t: (t[0], t[1]))  # the loader's order: sorted paths
    return np.stack([a for _, _, a in pixels])


def truncate(path, keep=60):
    """Cut a PNG after its header: the size reads fine, the pixels do not."""
    path.write_bytes(path.read_bytes()[:keep])


def test_uint8_storage_round_trips_the_file_bytes(tmp_path):
    pixels = write_folder(tmp_path, classes=())
    ds = load_dataset(f"folder:{tmp_path}", "all", mode="memory")
    assert isinstance(ds, ArrayDataset) and ds.x.dtype == torch.uint8
    assert ds.x.element_size() * ds.x.nelement() == pixels.nbytes  # 1 byte a pixel, not 4
    np.testing.assert_array_equal(ds.x.permute(0, 2, 3, 1).numpy(), pixels)
    unit = ds.unit()
    assert unit.dtype == torch.float32 and unit.min() >= -1 and unit.max() <= 1
    back = np.rint(ds.denormalize(unit)).astype(np.uint8).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(back, pixels)  # uint8 -> [-1, 1] -> uint8 is exact


def test_npz_uint8_stays_uint8_and_float_is_scaled(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x)
    ds = load_dataset(f"npz:{tmp_path / 'a.npz'}", "all")
    assert ds.x.dtype == torch.uint8 and np.array_equal(ds.x.numpy(), x)
    np.savez(tmp_path / "f.npz", x=x.astype(np.float64))
    f = load_dataset(f"npz:{tmp_path / 'f.npz'}", "all")
    assert f.x.dtype == torch.float32  # non-8-bit data keeps today's float storage
    resized = load_dataset(f"npz:{tmp_path / 'a.npz'}", "all", image_size=4)
    assert resized.x.dtype == torch.uint8 and resized.shape == (3, 4, 4)


def test_to_unit_matches_the_float_path():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    torch.testing.assert_close(to_unit(x), x.float() / 127.5 - 1, rtol=0, atol=1e-6)
    f = torch.rand(2, 3)
    assert to_unit(f) is f


def test_holdout_is_a_fixed_count_for_large_sets():
    assert len(holdout_indices(1000, "val", "x")) == 100  # 10% while that is small
    val = holdout_indices(200_000, "val", "x")
    train = holdout_indices(200_000, "train", "x")
    assert len(val) == HOLDOUT_MAX == 10_000 and len(train) == 190_000
    assert not np.intersect1d(val, train).size


@pytest.mark.parametrize("workers", [0, 2])
def test_lazy_and_memory_give_identical_batches(tmp_path, workers):
    write_folder(tmp_path, n=30)
    mem = load_dataset(f"folder:{tmp_path}", "train", mode="memory")
    lazy = load_dataset(f"folder:{tmp_path}", "train", mode="lazy")
    assert isinstance(lazy, LazyImages) and not isinstance(lazy, ArrayDataset)
    assert (lazy.shape, len(lazy), lazy.n_classes) == (mem.shape, len(mem), mem.n_classes)
    assert torch.equal(lazy.y, mem.y)
    a = make_loader(mem, 5, seed=3)
    b = make_loader(lazy, 5, seed=3, num_workers=workers)
    for epoch in range(2):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        batches_a, batches_b = list(a), list(b)
        assert len(batches_a) == len(batches_b) == len(mem) // 5
        for (xa, ya), (xb, yb) in zip(batches_a, batches_b, strict=True):
            assert xa.dtype == xb.dtype == torch.float32  # the loader hands out floats
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_auto_mode_goes_lazy_above_the_threshold(tmp_path, monkeypatch):
    write_folder(tmp_path, n=6, classes=())
    assert isinstance(load_dataset(f"folder:{tmp_path}", "all"), ArrayDataset)
    monkeypatch.setattr("gankit.data.files.LAZY_THRESHOLD_BYTES", 6 * 3 * 10 * 12 - 1)
    assert isinstance(load_dataset(f"folder:{tmp_path}", "all"), LazyImages)
    assert isinstance(load_dataset(f"folder:{tmp_path}", "all", mode="memory"), ArrayDataset)


def test_lazy_subset_for_the_evaluators(tmp_path):
    write_folder(tmp_path, n=20)
    mem = load_dataset(f"folder:{tmp_path}", "all", mode="memory")
    lazy = load_dataset(f"folder:{tmp_path}", "all", mode="lazy")
    a, b = real_subset(mem, 7, seed=2), real_subset(lazy, 7, seed=2)
    assert isinstance(b, ArrayDataset)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert torch.equal(lazy.unit(slice(0, 3)), mem.unit(slice(0, 3)))


def test_bad_data_mode_is_refused(tmp_path):
    with pytest.raises(GankitError, match="unknown data mode 'fast'"):
        load_dataset("digits", mode="fast")
    with pytest.raises(GankitError, match="does not apply to the built-in data"):
        load_dataset("digits", mode="lazy")


def test_corrupt_file_during_lazy_loading_stops_naming_it(tmp_path):
    write_folder(tmp_path, n=12, classes=())
    lazy = load_dataset(f"folder:{tmp_path}", "all", mode="lazy")  # headers are fine
    bad = tmp_path / "005.png"
    truncate(bad)
    got = lazy.__getitems__([4, 5, 6])
    assert isinstance(got, CorruptBatch) and len(got.batch) == 2 and "005.png" in got.errors[0]
    loader = make_loader(lazy, 12, shuffle=False, num_workers=1)
    with pytest.raises(GankitError, match=r"005\.png.*skip corrupt files") as info:
        list(loader)
    # The library names the option; the command line adds its flag (tests/cli/test_cli_data).
    assert info.value.option == "skip_corrupt" and "--" not in str(info.value)


def test_corrupt_file_is_skipped_and_counted_with_skip_corrupt(tmp_path, capsys):
    write_folder(tmp_path, n=12, classes=())
    lazy = load_dataset(f"folder:{tmp_path}", "all", mode="lazy")
    truncate(tmp_path / "005.png")
    loader = make_loader(lazy, 4, shuffle=False, skip_corrupt=True)
    obs: dict = {}
    with report_scope(obs):
        sizes = [len(b) for b in loader]
    assert sizes == [4, 3, 4] and loader.skipped == 1 and obs["data/skipped"] == 1.0
    assert "skipping: cannot read image" in capsys.readouterr().err
    list(loader)  # a second epoch: the same file is not counted twice
    assert loader.skipped == 1


def test_loader_converts_on_the_device_it_is_given(tmp_path):
    write_folder(tmp_path, n=8, classes=())
    ds = load_dataset(f"folder:{tmp_path}", "all", mode="memory")
    cpu = make_loader(ds, 4, shuffle=False, device="cpu")
    assert cpu.device == torch.device("cpu") and not cpu.pin_memory  # pinning is for CUDA
    assert make_loader(ds, 4, device="cuda").pin_memory  # (building it needs no GPU)
    first = next(iter(cpu))
    assert first.dtype == torch.float32 and torch.equal(first, ds.unit(slice(0, 4)))
    with pytest.raises(GankitError, match="prefetch 0"):
        make_loader(ds, 4, num_workers=1, prefetch=0)
