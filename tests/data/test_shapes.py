"""shapes32: generated, deterministic, balanced, with a fixed held-out split."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from gankit.data import load_dataset
from gankit.data.shapes import SHAPES_TRAIN_PER_CLASS, SHAPES_VAL_PER_CLASS, _draw


def test_shapes32_splits_are_balanced_rgb_and_labelled() -> None:
    train, val = load_dataset("shapes32", "train"), load_dataset("shapes32", "val")
    assert train.shape == val.shape == (3, 32, 32) and train.n_classes == 16
    assert len(train) == 16 * SHAPES_TRAIN_PER_CLASS and len(val) == 16 * SHAPES_VAL_PER_CLASS
    assert torch.equal(torch.bincount(train.y), torch.full((16,), SHAPES_TRAIN_PER_CLASS))
    assert torch.equal(torch.bincount(val.y), torch.full((16,), SHAPES_VAL_PER_CLASS))
    assert train.x.min() >= -1 and train.x.max() <= 1 and (train.low, train.high) == (0, 255)
    assert len(load_dataset("shapes32", "all")) == len(train) + len(val)
    # No held-out image is also a training image.
    train_rows = {hashlib.sha1(x.numpy().tobytes()).digest() for x in train.x}
    assert not any(hashlib.sha1(x.numpy().tobytes()).digest() in train_rows for x in val.x)


def test_shapes32_is_the_same_in_every_process_and_for_every_run_seed() -> None:
    import subprocess
    import sys

    a = load_dataset("shapes32", "val", seed=0)
    b = load_dataset("shapes32", "val", seed=5)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    code = ("import hashlib, torch; from gankit.data import load_dataset; "
            "torch.manual_seed(123); d = load_dataset('shapes32', 'val'); "
            "print(hashlib.sha256(d.x.numpy().tobytes() + d.y.numpy().tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == hashlib.sha256(a.x.numpy().tobytes() + a.y.numpy().tobytes()).hexdigest()


def test_shapes32_resizes_on_request() -> None:
    assert load_dataset("shapes32", "val", image_size=16).shape == (3, 16, 16)


def test_shape_colour_is_what_the_label_says() -> None:
    # The shape is the saturated part of a muted background: its most saturated pixels
    # must have the label's colour.
    labels = np.arange(16).repeat(4)
    imgs = _draw(labels, np.random.default_rng(0)).astype(np.float32)
    for img, label in zip(imgs, labels, strict=True):
        sat = img.max(0) - img.min(0)
        r, g, b = img[:, sat >= np.quantile(sat, 0.95)].mean(1)
        want = {0: r > g and r > b, 1: g > r and g > b, 2: b > r and b > g,
                3: r > b and g > b}[int(label) % 4]  # red, green, blue, yellow
        assert want, (label, (r, g, b))


@pytest.mark.parametrize("split", ["nope", "test"])
def test_shapes32_rejects_unknown_splits(split: str) -> None:
    from gankit.errors import GankitError

    with pytest.raises(GankitError, match="unknown split"):
        load_dataset("shapes32", split)
