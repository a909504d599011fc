"""examples/vaegan_digits.py and examples/custom_gan.py run, briefly, and produce results."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import pytest
import torch

from testsupport import load_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    return load_module(EXAMPLES / f"{name}.py", f"example_{name}")


def test_vaegan_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 23 iterations are one epoch of digits: the evaluator and the log fire once.
    trainer = load("vaegan_digits").main(["--iterations", "23", "--out", str(tmp_path)])
    (entry,) = trainer.get_extension("LogReport").log
    assert entry["epoch"] == 1 and math.isfinite(entry["val/rec"])
    assert {"enc/kl", "enc/llike", "dec/loss", "dis/loss"} <= set(entry)
    assert "val/rec" in capsys.readouterr().out  # the PrintReport table


def test_custom_gan_spreads_over_the_ring(tmp_path: Path) -> None:
    # 200 iterations (of the default 3000) already reach several of the 8 modes; the
    # untrained generator's samples sit in one small blob.
    coverage = load("custom_gan").main(["--iterations", "200", "--out", str(tmp_path)])
    assert coverage["modes"] >= 3


@pytest.mark.parametrize(("a", "b"), [([0.0], [0.0]), ([2.0, 0.0], [1.0, -1.0]), ([-3.0], [4.0])])
def test_relativistic_loss_is_minus_log_sigmoid_of_the_margin(a: list[float],
                                                              b: list[float]) -> None:
    ta, tb = torch.tensor(a), torch.tensor(b)
    expected = -torch.log(torch.sigmoid(ta - tb.mean())).mean()
    assert load("custom_gan").relativistic(ta, tb).item() == pytest.approx(expected.item())
