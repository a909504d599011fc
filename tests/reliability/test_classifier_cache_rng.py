"""The feature classifier, trained or loaded from the cache, leaves the global RNG as it was.

A cache hit used to build the network from the global stream, so a training run drew
different noise depending on whether an earlier run had filled the cache (found by the
stop/resume test: the resumed run loads what the uninterrupted one trained).
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.data import load_dataset
from gankit.metrics.features import cached_classifier


def test_cache_miss_and_hit_leave_the_global_rng_alone(tmp_path: Path) -> None:
    train = load_dataset("digits", "train", seed=0)
    val = load_dataset("digits", "val", seed=0)
    args = (train.x[:64], train.y[:64], val.x[:32], val.y[:32])
    for _ in range(2):  # a miss (trains, caches), then a hit (loads)
        torch.manual_seed(123)
        expected = torch.get_rng_state()
        cached_classifier(*args, n_classes=10, cache_dir=tmp_path, epochs=1, width=4,
                          feature_dim=8)
        assert torch.equal(torch.get_rng_state(), expected)
    assert len(list(tmp_path.glob("classifier-*.pt"))) == 1
