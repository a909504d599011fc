"""The shared test helpers compare what they claim to: bitwise, not approximately."""

from __future__ import annotations

import pytest
import torch

from testsupport import assert_bitwise_equal, assert_runs_equal, differing, run_state


def test_bitwise_means_bits():
    x = torch.tensor([0.0, float("nan"), 1.0])
    assert_bitwise_equal({"a": [x, 3]}, {"a": [x.clone(), 3]})  # the same NaN is the same
    assert differing({"a": x}, {"a": torch.tensor([-0.0, float("nan"), 1.0])}) == ["/a"]
    assert differing({"a": x}, {"a": x.double()}) == ["/a"]  # the dtype counts
    assert differing({"a": x}, {"a": x + 1e-7}) == ["/a"]  # close is not equal
    assert differing({"n": 1}, {"n": 1.0}) == ["/n"]
    assert differing({"t": torch.ones(2)}, {"t": 1}) == ["/t"]
    with pytest.raises(AssertionError):
        assert_bitwise_equal({"a": 1}, {"b": 1})  # another layout


def test_runs_compare_the_parts_named(tmp_path):
    a = {"updater": {"w": torch.ones(2)}, "rng": {"torch": torch.zeros(3)}, "elapsed_time": 1.0}
    b = {"updater": {"w": torch.ones(2)}, "rng": {"torch": torch.ones(3)}, "elapsed_time": 2.0}
    assert_runs_equal(a, b)  # the updater alone by default
    with pytest.raises(AssertionError, match="1 leaves differ"):
        assert_runs_equal(a, b, "updater", "rng")
    torch.save(a, tmp_path / "snap.pt")
    assert list(run_state(tmp_path / "snap.pt", "rng/torch")) == ["rng/torch"]
