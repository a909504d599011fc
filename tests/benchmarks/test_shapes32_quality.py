"""benchmarks/shapes32_quality.py: the budget -> iterations arithmetic and the width options."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "shapes32_quality.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))  # the scripts import benchmarks/_harness.py
    spec = importlib.util.spec_from_file_location("shapes32_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_iterations_fill_the_budget(bench):
    assert bench.iterations_for_budget(360.0, 0.25) == 1440
    assert bench.iterations_for_budget(360.0, 0.7) == 514  # rounded down
    # whole n_dis rounds: 514 -> 510
    assert bench.iterations_for_budget(360.0, 0.7, multiple=5) == 510
    # never fewer than the minimum, even if one step costs more than the budget
    assert bench.iterations_for_budget(1.0, 10.0, multiple=5, minimum=5) == 5
    for cost in (0.27, 0.37, 1.66):
        n = bench.iterations_for_budget(480.0, cost)
        assert n * cost <= 480.0 < (n + 1) * cost


@pytest.mark.parametrize("budget,cost", [(0.0, 1.0), (10.0, 0.0), (-1.0, 1.0),
                                         (math.inf, 1.0), (10.0, math.nan)])
def test_iterations_refuse_bad_numbers(bench, budget, cost):
    with pytest.raises(ValueError, match="positive and finite"):
        bench.iterations_for_budget(budget, cost)


def test_iterations_refuse_a_bad_multiple(bench):
    with pytest.raises(ValueError, match="multiple"):
        bench.iterations_for_budget(10.0, 1.0, multiple=0)


def test_step_cost_adds_the_lazy_penalty_share(bench):
    assert bench.step_cost([1.0, 2.0, 3.0], None, 1) == pytest.approx(2.0)
    # a penalty step of 5 s every 16 adds (5 - 2) / 16 to the plain 2 s
    assert bench.step_cost([1.0, 2.0, 3.0], 5.0, 16) == pytest.approx(2.0 + 3.0 / 16)
    # a penalty step timed faster than the plain mean (noise) adds nothing
    assert bench.step_cost([2.0], 1.5, 16) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        bench.step_cost([], None, 1)


def test_widths_parse_and_refuse(bench):
    widths = bench.parse_widths(["resnet=32", "stylegan2=8"])
    assert widths == {**bench.WIDTHS, "resnet": 32, "stylegan2": 8}
    assert bench.parse_widths([]) == bench.WIDTHS
    for bad in ("resnet", "resnet=0", "resnet=x", "vgg=16"):
        with pytest.raises(ValueError, match="ARCH=N"):
            bench.parse_widths([bad])


def test_train_options_name_the_arch_width_and_seed(bench):
    import argparse

    args = argparse.Namespace(width=dict(bench.WIDTHS, biggan=8), seed=3, ema=0.99)
    opts = bench.train_options("biggan", args)
    assert opts[:4] == ["--data", "shapes32", "--arch", "biggan"]
    assert "--conditional" in opts
    assert opts[opts.index("--width") + 1] == "8"
    assert opts[opts.index("--seed") + 1] == "3"
    assert "--conditional" not in bench.train_options("resnet", args)
