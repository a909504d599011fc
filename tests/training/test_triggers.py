"""Triggers over a fake trainer whose counters advance like the Updater's."""

from __future__ import annotations

import io
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from gankit.training import (
    IntervalTrigger,
    ManualScheduleTrigger,
    MaxValueTrigger,
    MinValueTrigger,
    StopTrigger,
    Trigger,
    get_trigger,
)
from gankit.training.triggers import get_stop_trigger


class FakeRun:
    """Counters of an updater over an epoch of ``epoch_len`` batches, and an observation."""

    def __init__(self, epoch_len: int, values: list[float | None] | None = None) -> None:
        self.epoch_len = epoch_len
        self.values = values or []
        self.updater = SimpleNamespace(iteration=0, epoch=0, is_new_epoch=False)
        self.observation: dict[str, Any] = {}

    def advance(self) -> None:
        u = self.updater
        u.iteration += 1
        u.epoch = u.iteration // self.epoch_len
        u.is_new_epoch = u.iteration % self.epoch_len == 0
        i = u.iteration - 1
        value = self.values[i] if i < len(self.values) else None
        self.observation = {} if value is None else {"val/loss": torch.tensor(value)}


def fired(trigger: Trigger, run: FakeRun, iterations: int) -> list[int]:
    """The iterations (1-based) after which ``trigger`` fired."""
    out = []
    for _ in range(iterations):
        run.advance()
        if trigger(run):  # type: ignore[arg-type]
            out.append(run.updater.iteration)
    return out


# (trigger factory, epoch length, iterations run, iterations where it fires)
TABLE: list[tuple[Callable[[], Trigger], int, int, list[int]]] = [
    (lambda: IntervalTrigger(3, "iteration"), 4, 12, [3, 6, 9, 12]),
    (lambda: IntervalTrigger(1, "iteration"), 4, 3, [1, 2, 3]),
    (lambda: IntervalTrigger(1, "epoch"), 4, 13, [4, 8, 12]),
    (lambda: IntervalTrigger(2, "epoch"), 3, 13, [6, 12]),
    (lambda: get_trigger((5, "iteration")), 3, 12, [5, 10]),
    (lambda: get_trigger((1, "epoch")), 5, 11, [5, 10]),
    (lambda: ManualScheduleTrigger([2, 7], "iteration"), 4, 10, [2, 7]),
    (lambda: ManualScheduleTrigger(2, "epoch"), 3, 10, [6]),
    (lambda: ManualScheduleTrigger([1, 3], "epoch"), 2, 8, [2, 6]),
    (lambda: get_trigger(lambda t: t.updater.iteration in (1, 4)), 2, 6, [1, 4]),
]


@pytest.mark.parametrize(("make", "epoch_len", "iterations", "expected"), TABLE)
def test_trigger_table(make, epoch_len, iterations, expected):
    assert fired(make(), FakeRun(epoch_len), iterations) == expected


@pytest.mark.parametrize(
    ("trigger", "epoch_len", "first_true"),
    [
        (StopTrigger(5, "iteration"), 3, 5),
        (StopTrigger(2, "epoch"), 3, 6),
        (get_stop_trigger((3, "epoch")), 4, 12),
        (get_stop_trigger((7, "iteration")), 4, 7),
    ],
)
def test_stop_trigger_turns_true_once_done_and_stays_true(trigger, epoch_len, first_true):
    run = FakeRun(epoch_len)
    states = []
    for _ in range(first_true + 3):
        run.advance()
        states.append(trigger(run))
    assert states == [False] * (first_true - 1) + [True] * 4


def test_stop_trigger_never_misses_a_jump_past_its_period():
    run = FakeRun(4)
    run.updater.iteration = 9  # e.g. a resumed run already past the period
    assert StopTrigger(5, "iteration")(run)


def test_get_stop_trigger_makes_a_stop_trigger_from_a_tuple():
    assert isinstance(get_stop_trigger((2, "epoch")), StopTrigger)
    assert isinstance(get_trigger((2, "epoch")), IntervalTrigger)


# Per-iteration values of "val/loss"; None: not reported that iteration.
VALUES: list[float | None] = [5, 3, 4, 4, 1, 2, None, 6, 0, 1]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        # interval means: 4, 4, 1.5, 6 (only iteration 8 reported), 0.5
        (lambda: MinValueTrigger("val/loss", (2, "iteration")), [2, 6, 10]),
        (lambda: MaxValueTrigger("val/loss", (2, "iteration")), [2, 8]),
        # means over 5 iterations: 3.4, 2.25
        (lambda: MinValueTrigger("val/loss", (1, "epoch")), [5, 10]),
        (lambda: MaxValueTrigger("val/loss", (1, "epoch")), [5]),
        (lambda: MinValueTrigger("other", (2, "iteration")), []),
    ],
)
def test_best_value_triggers(make, expected):
    assert fired(make(), FakeRun(5, VALUES), len(VALUES)) == expected


def test_best_value_trigger_records_the_best_mean():
    trigger = MinValueTrigger("val/loss", (2, "iteration"))
    fired(trigger, FakeRun(5, VALUES), len(VALUES))
    assert trigger.best == pytest.approx(0.5)


def _roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    """Through torch.save/load(weights_only=True), as a snapshot carries it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


RESUMABLE = [
    lambda: IntervalTrigger(3, "iteration"),
    lambda: IntervalTrigger(1, "epoch"),
    lambda: ManualScheduleTrigger([2, 5, 9], "iteration"),
    lambda: MinValueTrigger("val/loss", (2, "iteration")),
    lambda: MaxValueTrigger("val/loss", (4, "iteration")),
    lambda: MinValueTrigger("val/loss", (1, "epoch")),
]


@pytest.mark.parametrize("make", RESUMABLE)
@pytest.mark.parametrize("stop_at", [3, 5, 7])
def test_resumed_trigger_fires_where_the_uninterrupted_one_does(make, stop_at):
    expected = fired(make(), FakeRun(5, VALUES), len(VALUES))

    run = FakeRun(5, VALUES)
    first = make()
    before = fired(first, run, stop_at)  # stop_at is mid-interval for most triggers
    state = _roundtrip(first.state_dict())

    # A fresh trigger and fresh counters restored to where the first run stopped.
    resumed_run = FakeRun(5, VALUES)
    resumed_run.updater.iteration = stop_at
    second = make()
    second.load_state_dict(state)
    after = fired(second, resumed_run, len(VALUES) - stop_at)
    assert before + after == expected


def test_best_value_state_holds_the_partial_interval():
    trigger = MinValueTrigger("val/loss", (4, "iteration"))
    fired(trigger, FakeRun(5, VALUES), 2)
    state = trigger.state_dict()
    assert state["best"] is None
    assert state["summary"]["counts"] == {"val/loss": 2}
    assert state["summary"]["sums"] == {"val/loss": 8.0}


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ((0, "iteration"), ValueError, r"period must be a positive integer, got 0"),
        ((-2, "epoch"), ValueError, r"positive integer, got -2"),
        ((1.5, "epoch"), ValueError, r"positive integer, got 1\.5"),
        ((True, "iteration"), ValueError, r"positive integer, got True"),
        ((1, "epochs"), ValueError, r"unit must be 'iteration' or 'epoch', got 'epochs'"),
        (("epoch", 1), ValueError, r"unit must be .*got 1"),
        ((1, "epoch", 2), ValueError, r"trigger tuple is \(period, unit\)"),
        ((), ValueError, r"trigger tuple is \(period, unit\)"),
        ("epoch", TypeError, r"a trigger is a \(period.*got 'epoch'"),
        ([1, "epoch"], TypeError, r"got \[1, 'epoch'\]"),
        (None, TypeError, r"got None"),
        (3, TypeError, r"got 3"),
    ],
)
def test_get_trigger_rejects_bad_input(bad, error, match):
    with pytest.raises(error, match=match):
        get_trigger(bad)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: StopTrigger(0, "epoch"), r"positive integer, got 0"),
        (lambda: StopTrigger(3, "step"), r"got 'step'"),
        (lambda: ManualScheduleTrigger([1], "batch"), r"got 'batch'"),
        (lambda: get_stop_trigger((0, "iteration")), r"positive integer, got 0"),
    ],
)
def test_other_triggers_reject_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()
