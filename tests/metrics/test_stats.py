"""Reference statistics: the cache key, the .npz layout, refused files; protocols."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.metrics import feature_statistics
from gankit.metrics.protocol import Protocol, check_comparable
from gankit.metrics.stats import ReferenceStats, load_stats, reference_stats, save_stats


class Counting(nn.Module):
    """A fixed linear map that counts the samples it sees."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(5, 3)
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += x.shape[0]
        return self.lin(x)


def test_reference_stats_are_computed_once_per_key(tmp_path: Path) -> None:
    x = torch.randn(40, 5, generator=torch.Generator().manual_seed(1))
    net = Counting()
    first = reference_stats(x, net, split="val", feature_hash="abc", cache_dir=tmp_path)
    assert net.seen == 40 and first.n == 40 and first.features is not None
    mu, sigma = feature_statistics(net(x).detach())
    net.seen = 0
    again = reference_stats(x, net, split="val", feature_hash="abc", cache_dir=tmp_path)
    assert net.seen == 0  # from the cache
    assert torch.allclose(again.mu, mu) and torch.allclose(again.sigma, sigma)
    assert torch.equal(again.features, first.features)
    # any part of the key computes again: split, weights, samples (n)
    for kwargs, data in (({"split": "train", "feature_hash": "abc"}, x),
                         ({"split": "val", "feature_hash": "abd"}, x),
                         ({"split": "val", "feature_hash": "abc"}, x[:39])):
        net.seen = 0
        reference_stats(data, net, cache_dir=tmp_path, **kwargs)
        assert net.seen == len(data)
    # no identity: never cached
    net.seen = 0
    reference_stats(x, net, split="val", feature_hash=None, cache_dir=tmp_path)
    reference_stats(x, net, split="val", feature_hash=None, cache_dir=tmp_path)
    assert net.seen == 80


def test_a_damaged_cache_entry_is_recomputed(tmp_path: Path) -> None:
    x = torch.randn(10, 5)
    net = Counting()
    reference_stats(x, net, split="val", feature_hash="h", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("stats-*.npz")
    entry.write_bytes(b"garbage")
    net.seen = 0
    with pytest.warns(RuntimeWarning, match="unreadable statistics cache"):
        stats = reference_stats(x, net, split="val", feature_hash="h", cache_dir=tmp_path)
    assert net.seen == 10 and stats.n == 10


def test_save_and_load_round_trip_in_pytorch_fid_layout(tmp_path: Path) -> None:
    feats = torch.randn(30, 4, dtype=torch.float64)
    stats = ReferenceStats.of(feats)
    path = tmp_path / "s.npz"
    save_stats(path, stats, {"feature_net": "x"})
    with np.load(path) as f:
        assert {"mu", "sigma"} <= set(f.files)
        assert np.allclose(f["mu"], feats.mean(0).numpy())
        assert np.allclose(f["sigma"], np.cov(feats.numpy(), rowvar=False))
    loaded, protocol = load_stats(path)
    assert protocol == {"feature_net": "x"} and loaded.n == 30 and loaded.features is None
    assert torch.allclose(loaded.mu, stats.mu) and torch.allclose(loaded.sigma, stats.sigma)


@pytest.mark.parametrize(("arrays", "match"), [
    ({"m": np.zeros(3), "s": np.eye(3)}, r"has \['m', 's'\], not mu and sigma"),
    ({"mu": np.zeros(3), "sigma": np.eye(4)}, r"mu \(3,\) and sigma \(4, 4\)"),
    ({"mu": np.full(3, np.nan), "sigma": np.eye(3)}, "it needs finite mu"),
])
def test_bad_statistics_files_are_refused(tmp_path: Path, arrays, match: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(GankitError, match=match):
        load_stats(path)


def test_missing_and_unreadable_statistics_files(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="does not exist"):
        load_stats(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(GankitError, match="cannot read statistics file"):
        load_stats(bad)


def _protocol(**changes: object) -> Protocol:
    fields = {"feature_net": "inception-v3-fid-2015-12-05", "feature_hash": "ab", "n_real": 10,
              "n_generated": 10, "real_split": "val", "resize": "tf1", "seed": 0,
              "gankit_version": "0.1.0"}
    fields.update(changes)
    return Protocol(**fields)  # type: ignore[arg-type]


def test_protocols_compare_field_by_field() -> None:
    a = _protocol()
    assert Protocol.from_dict(a.as_dict()) == a
    check_comparable(a, _protocol())
    with pytest.raises(GankitError, match=r"different protocols \(resize: tf1 vs pytorch-fid; "
                                          r"seed: 0 vs 1\)"):
        check_comparable(a, _protocol(resize="pytorch-fid", seed=1))
    with pytest.raises(GankitError, match="missing seed, gankit_version"):
        Protocol.from_dict({k: v for k, v in a.as_dict().items()
                            if k not in ("seed", "gankit_version")})
