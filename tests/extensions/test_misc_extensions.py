"""FailOnNonFinite, LRScheduler, ObserveLR and TensorBoard."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.extensions import (
    FailOnNonFinite,
    LogReport,
    LRScheduler,
    NonFiniteError,
    ObserveLR,
    TensorBoard,
)
from gankit.training import PRIORITY_WRITER


def reporter(bad: dict[str, tuple[int, Any]]):
    """An extension reporting 1.0 for each key, and ``value`` from iteration ``start`` on."""

    def rep(trainer: gankit.Trainer) -> None:
        it = trainer.updater.iteration
        values = {}
        for key, (start, value) in bad.items():
            v = value if it >= start else 1.0
            values[key] = torch.tensor(v) if key.startswith("t_") else v
        gankit.report(values)

    return rep


@pytest.mark.parametrize(
    ("bad", "check_interval", "raised_at", "match"),
    [
        # A bad tensor is found at the next check, naming the iteration it first went bad.
        ({"t_loss": (7, math.nan)}, 5, 10, r"'t_loss' became NaN/Inf at iteration 7"),
        ({"t_loss": (3, math.inf)}, 3, 3, r"'t_loss' became NaN/Inf at iteration 3"),
        # The earliest bad key wins; later finite values do not hide it.
        ({"t_b": (6, math.nan), "t_a": (4, -math.inf)}, 8, 8, r"'t_a' .* iteration 4"),
        # A Python float is checked at once.
        ({"f_lr": (4, math.nan)}, 50, 4, r"'f_lr' became NaN/Inf at iteration 4"),
    ],
)
def test_fail_on_non_finite(make_trainer, bad, check_interval, raised_at, match):
    trainer = make_trainer(stop=(12, "iteration"))
    trainer.extend(reporter(bad), name="rep", priority=PRIORITY_WRITER + 1)
    trainer.extend(FailOnNonFinite(check_interval=check_interval))
    with pytest.raises(NonFiniteError, match=match + r"; the last snapshot before it is kept"):
        trainer.run()
    assert trainer.updater.iteration == raised_at


def test_fail_on_non_finite_passes_a_finite_run(make_trainer):
    trainer = make_trainer(stop=(12, "iteration"))
    trainer.extend(reporter({"t_loss": (1, 0.5)}), name="rep", priority=PRIORITY_WRITER + 1)
    ext = FailOnNonFinite(check_interval=4)
    trainer.extend(ext)
    trainer.run()
    assert trainer.updater.iteration == 12
    assert ext._pending == []  # finalize drops the held values


def test_fail_on_non_finite_checks_parameters(make_trainer):
    trainer = make_trainer(stop=(12, "iteration"))

    def poison(t: gankit.Trainer) -> None:
        if t.updater.iteration == 6:  # after the update: its loss is still finite
            with torch.no_grad():
                t.updater.models["net"][0].weight[0, 1] = math.nan

    trainer.extend(poison, priority=PRIORITY_WRITER + 1)
    trainer.extend(FailOnNonFinite(check_interval=3))
    with pytest.raises(NonFiniteError, match=r"model 'net' has NaN/Inf in '0\.weight' at "
                                             r"iteration 6"):
        trainer.run()


def test_lr_scheduler_steps_at_its_trigger_and_saves_its_state(make_trainer):
    trainer = make_trainer(stop=(3, "epoch"), n_batches=2)
    opt = trainer.updater.optimizers["net"]
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    trainer.extend(LRScheduler(sched))  # default trigger: each epoch
    trainer.extend(ObserveLR("net"))
    trainer.extend(LogReport(trigger=(1, "epoch"), filename=None))
    trainer.run()
    # ObserveLR (a writer) reads the lr before the scheduler (an editor) steps.
    assert [e["net/lr"] for e in trainer.get_extension("LogReport").log] == pytest.approx(
        [0.05, 0.025, 0.0125])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 / 8)
    state = trainer.state_dict()["extensions"]["LRScheduler"]["extension"]
    assert state["last_epoch"] == 3

    other = make_trainer(stop=(3, "epoch"), n_batches=2)
    other_sched = torch.optim.lr_scheduler.StepLR(other.updater.optimizers["net"], 1, 0.5)
    other.extend(LRScheduler(other_sched))
    other.load_state_dict(trainer.state_dict())
    assert other_sched.last_epoch == 3


def test_lr_scheduler_custom_trigger(make_trainer):
    trainer = make_trainer(stop=(6, "iteration"))
    sched = torch.optim.lr_scheduler.StepLR(trainer.updater.optimizers["net"], 1, 0.1)
    trainer.extend(LRScheduler(sched, trigger=(2, "iteration")))
    trainer.run()
    assert sched.last_epoch == 3


def test_observe_lr_key(make_trainer):
    trainer = make_trainer(stop=(1, "iteration"))
    seen = []
    trainer.extend(ObserveLR("net", key="lr/main"))
    trainer.extend(lambda t: seen.append(dict(t.observation)), name="peek")
    trainer.run()
    assert seen[0]["lr/main"] == 0.05


def test_tensorboard_writes_log_entries(make_trainer):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(stop=(6, "iteration"))
    trainer.extend(LogReport(trigger=(2, "iteration"), filename=None))
    trainer.extend(TensorBoard(logdir="tb"))
    trainer.run()
    events = EventAccumulator(str(trainer.out / "tb"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"loss", "elapsed_time"}
    steps = [e.step for e in events.Scalars("loss")]
    assert steps == [2, 4, 6]
    log = trainer.get_extension("LogReport").log
    assert [e.value for e in events.Scalars("loss")] == pytest.approx([e["loss"] for e in log])


def test_tensorboard_missing_package_is_a_clear_error(make_trainer, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    trainer = make_trainer(stop=(1, "iteration"))
    trainer.extend(LogReport(filename=None))
    trainer.extend(TensorBoard())
    with pytest.raises(GankitError, match=r"needs the tensorboard package; install it with"):
        trainer.run()
