"""``stackedmnist:DIR``: three MNIST digits as channels, labelled by their mode 0..999."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.data import load_dataset, load_mnist_idx
from gankit.data.stackedmnist import (
    STACKED_MODES,
    STACKED_TRAIN,
    STACKED_VAL,
    is_stacked_mnist,
    load_stacked_mnist,
    mode_digits,
    write_mnist_idx,
)
from gankit.errors import GankitError
from testsupport import digits_as_mnist_idx


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return digits_as_mnist_idx(tmp_path_factory.mktemp("mnist"), side=8)


def _channel_sources(stack: torch.Tensor, digits: torch.Tensor) -> list[int]:
    """Index in ``digits`` (N, 1, H, W) of each channel of one stacked image (3, H, W)."""
    flat = digits[:, 0].flatten(1)
    found = []
    for c in range(3):
        hits = (flat == stack[c].flatten()).all(dim=1).nonzero().flatten()
        assert len(hits) >= 1
        found.append(int(hits[0]))
    return found


def test_each_channel_is_a_digit_and_the_label_its_mode(mnist_dir: Path) -> None:
    ds = load_dataset(f"stackedmnist:{mnist_dir}", "train", seed=0)
    digits = load_mnist_idx(mnist_dir, "train")
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (STACKED_TRAIN, 3, 8, 8)
    assert ds.n_classes == STACKED_MODES and (ds.low, ds.high) == (0.0, 255.0)
    assert is_stacked_mnist(ds) and not is_stacked_mnist(digits)
    assert ds.y is not None and digits.y is not None
    for i in (0, 1, 777):
        src = _channel_sources(ds.x[i], digits.x)
        labels = [int(digits.y[j]) for j in src]
        assert int(ds.y[i]) == 100 * labels[0] + 10 * labels[1] + labels[2]
        assert mode_digits(ds.y[i:i + 1]).tolist() == [labels]
    # triples are independent uniform draws: every digit in every channel, modes spread out
    d = mode_digits(ds.y)
    for c in range(3):
        counts = torch.bincount(d[:, c], minlength=10)
        assert counts.min() > 0.07 * len(ds) and counts.max() < 0.13 * len(ds)
    assert len(torch.unique(ds.y)) > 990


def test_deterministic_by_seed_and_val_fixed(mnist_dir: Path) -> None:
    a = load_stacked_mnist(mnist_dir, "train", seed=1, n=500)
    b = load_stacked_mnist(mnist_dir, "train", seed=1, n=500)
    c = load_stacked_mnist(mnist_dir, "train", seed=2, n=500)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    v1 = load_stacked_mnist(mnist_dir, "val", seed=1)
    v2 = load_dataset(f"stackedmnist:{mnist_dir}", "val", seed=5)
    assert len(v1) == STACKED_VAL and torch.equal(v1.x, v2.x) and torch.equal(v1.y, v2.y)


def test_val_draws_from_the_held_out_digits(mnist_dir: Path) -> None:
    val = load_stacked_mnist(mnist_dir, "val", n=50)
    held_out = load_mnist_idx(mnist_dir, "val")
    for i in range(0, 50, 7):
        _channel_sources(val.x[i], held_out.x)  # asserts each channel is found
    both = load_stacked_mnist(mnist_dir, "all", n=20)
    assert len(both) == 40 and both.split == "all"


def test_image_size_resizes(mnist_dir: Path) -> None:
    ds = load_dataset(f"stackedmnist:{mnist_dir}", "val", image_size=32)
    assert ds.shape == (3, 32, 32) and ds.x.dtype == torch.uint8
    assert is_stacked_mnist(ds)


def test_errors_name_the_problem(tmp_path: Path, mnist_dir: Path) -> None:
    with pytest.raises(GankitError, match="does not exist"):
        load_dataset(f"stackedmnist:{tmp_path / 'nope'}")
    with pytest.raises(GankitError, match="no path after 'stackedmnist:'"):
        load_dataset("stackedmnist:")
    with pytest.raises(GankitError, match="lazy"):
        load_dataset(f"stackedmnist:{mnist_dir}", mode="lazy")
    with pytest.raises(GankitError, match="at least 1"):
        load_stacked_mnist(mnist_dir, n=0)
    labels = np.arange(6) * 3  # labels up to 15: not digits
    write_mnist_idx(tmp_path / "letters", (np.zeros((6, 4, 4)), labels),
                    (np.zeros((6, 4, 4)), labels))
    with pytest.raises(GankitError, match=r"labelled 0\.\.9"):
        load_stacked_mnist(tmp_path / "letters")
    with pytest.raises(GankitError, match="one label per image"):
        write_mnist_idx(tmp_path / "bad", (np.zeros((3, 4, 4)), np.arange(2)),
                        (np.zeros((3, 4, 4)), np.arange(3)))


def test_cli_trains_r3gan_resumes_bitwise_and_reports_modes(
        tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.cli import main
    from gankit.data import stackedmnist
    from gankit.extensions.log_report import read_log
    from gankit.metrics import scoring, stacked_modes
    from gankit.training.checkpoint import load_state
    from testsupport import flatten

    # small splits, classifiers and sample counts: the protocol's sizes are tested above
    monkeypatch.setattr(stackedmnist, "STACKED_TRAIN", 600)
    monkeypatch.setattr(stackedmnist, "STACKED_VAL", 200)
    monkeypatch.setattr(scoring, "STACKED_SAMPLES", 500)
    monkeypatch.setitem(scoring.CLASSIFIER_OPTIONS, "max_steps", 10)
    monkeypatch.setitem(stacked_modes.DIGIT_CLASSIFIER_OPTIONS, "max_steps", 30)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))

    def train(out: Path, iterations: int) -> int:
        return main(["train", "--data", f"stackedmnist:{mnist_dir}", "--arch", "r3gan",
                     "--loss", "rpgan", "--penalty", "r1r2", "--width", "4", "--z-dim", "8",
                     "--batch-size", "8", "--out", str(out),
                     "--iterations", str(iterations), "--log-every", "2",
                     "--snapshot-every", "2", "--sample-every", "4", "--device", "cpu",
                     "--quiet"])

    assert train(tmp_path / "straight", 4) == 0
    assert train(tmp_path / "split", 2) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--iterations", "4",
                 "--quiet"]) == 0
    a = flatten(load_state(tmp_path / "straight" / "snapshot_iter_4.pt")["updater"])
    b = flatten(load_state(tmp_path / "split" / "snapshot_iter_4.pt")["updater"])
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
    log = read_log(tmp_path / "straight" / "log.json")
    assert {"dis/r1", "dis/r2", "gen/loss", "dis/loss"} <= set(log[0])
    last = [e for e in log if "val/modes" in e][-1]
    assert 1 <= last["val/modes"] <= 1000 and 0 <= last["val/kl"] <= np.log(1000) + 1e-9
    assert 0 <= last["val/kl_digits"] <= last["val/kl"] + 1e-9  # the dependence is >= 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "straight")]) == 0
    out = capsys.readouterr().out
    assert "mode KL" in out and "digit KL" in out and "digit SmallCNN" in out
    npy = tmp_path / "samples.npy"
    assert main(["sample", str(tmp_path / "straight"), "-n", "5", "-o", str(npy)]) == 0
    samples = np.load(npy)
    assert samples.shape == (5, 3, 8, 8) and np.isfinite(samples).all()  # the 8 x 8 digits
    assert samples.min() >= 0 and samples.max() <= 255  # the data's range
