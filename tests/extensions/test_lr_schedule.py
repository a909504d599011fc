"""lr_factor and LRSchedule: warm-up, linear decay to exactly 0, and a resume that matches."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from gankit.extensions import LogReport, LRSchedule, ObserveLR, lr_factor
from gankit.training import Trainer


def test_linear_decay_reaches_exactly_zero_at_the_last_update() -> None:
    total = 10
    factors = [lr_factor(i, total, decay="linear") for i in range(1, total + 1)]
    assert factors == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    assert factors[-1] == 0.0  # exactly, not approximately
    assert all(a > b for a, b in itertools.pairwise(factors))


def test_decay_start_holds_the_full_rate_first() -> None:
    total = 10
    factors = [lr_factor(i, total, decay="linear", decay_start=0.6) for i in range(1, 11)]
    assert factors == pytest.approx([1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 0.0])


def test_warmup_ramps_up_then_holds() -> None:
    factors = [lr_factor(i, 8, warmup=4) for i in range(1, 9)]
    assert factors == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 1, 1])
    both = [lr_factor(i, 8, warmup=4, decay="linear") for i in range(1, 9)]
    assert both == pytest.approx([0.25 * 7 / 8, 0.5 * 6 / 8, 0.75 * 5 / 8, 4 / 8, 3 / 8,
                                  2 / 8, 1 / 8, 0.0])


def test_no_schedule_is_the_constant_rate() -> None:
    assert [lr_factor(i, 5) for i in range(1, 6)] == [1.0] * 5


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(iteration=0, total=5), "outside the run"),
    (dict(iteration=6, total=5), "outside the run"),
    (dict(iteration=1, total=5, decay="cosine"), "unknown lr decay 'cosine'"),
    (dict(iteration=1, total=5, decay="linear", decay_start=1.0), "decay_start=1.0"),
])
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lr_factor(**kwargs)


def _run(make_trainer: Callable[..., Trainer], stop: int, **kwargs: Any) -> Trainer:
    trainer = make_trainer(stop=(stop, "iteration"), n_batches=4)
    trainer.extend(LRSchedule(10, **kwargs))
    trainer.extend(ObserveLR("net"))
    trainer.extend(LogReport(trigger=(1, "iteration"), filename=None))
    return trainer


def test_the_rates_each_update_used(make_trainer: Callable[..., Trainer]) -> None:
    trainer = _run(make_trainer, 10, warmup=2, decay="linear", decay_start=0.5)
    trainer.run()
    lrs = [e["net/lr"] for e in trainer.get_extension("LogReport").log]
    expected = [0.05 * lr_factor(i, 10, warmup=2, decay="linear", decay_start=0.5)
                for i in range(1, 11)]
    assert lrs == pytest.approx(expected)
    assert lrs[0] == pytest.approx(0.025) and lrs[-1] == 0.0
    group = trainer.updater.optimizers["net"].param_groups[0]
    assert group["lr"] == 0.0 and group["initial_lr"] == 0.05


def test_resume_continues_the_same_rates_and_weights(
        make_trainer: Callable[..., Trainer]) -> None:
    whole = _run(make_trainer, 10, decay="linear")
    whole.run()
    first = _run(make_trainer, 6, decay="linear")
    first.run()
    state = first.state_dict()
    rest = _run(make_trainer, 10, decay="linear")
    rest.load_state_dict(state)  # a fresh optimizer: its lr is the base rate again
    rest.run()
    lrs = [e["net/lr"] for e in rest.get_extension("LogReport").log]
    assert lrs[-4:] == [e["net/lr"] for e in whole.get_extension("LogReport").log][-4:]
    for p, q in zip(whole.updater.raw_models["net"].parameters(),
                    rest.updater.raw_models["net"].parameters(), strict=True):
        assert p.equal(q)


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="total=0"):
        LRSchedule(0)
    with pytest.raises(ValueError, match="warmup=-1"):
        LRSchedule(5, warmup=-1)
    with pytest.raises(ValueError, match="unknown lr decay"):
        LRSchedule(5, decay="step")
