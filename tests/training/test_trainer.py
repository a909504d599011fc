"""The Trainer: the loop, extension order, hooks, names and bad arguments."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from gankit.training import (
    PRIORITY_READER,
    PRIORITY_WRITER,
    Extension,
    IntervalTrigger,
    Updater,
    make_extension,
)


class Recorder(Extension):
    """Appends its name (and the iteration) to a shared list when called."""

    def __init__(self, tag: str, calls: list[Any], priority: int | None = None) -> None:
        self.tag = tag
        self.calls = calls
        if priority is not None:
            self.priority = priority

    def __call__(self, trainer) -> None:
        self.calls.append(self.tag)


def test_extensions_run_by_priority_then_registration_order(make_trainer):
    trainer = make_trainer(stop=(1, "iteration"))
    calls: list[Any] = []
    trainer.extend(Recorder("zero_a", calls, priority=0))
    trainer.extend(Recorder("reader_a", calls))  # class default: PRIORITY_READER
    trainer.extend(Recorder("neg", calls, priority=-5))
    trainer.extend(Recorder("writer", calls, priority=PRIORITY_WRITER))
    trainer.extend(Recorder("zero_b", calls), priority=0)  # overrides the class's 100
    trainer.extend(Recorder("reader_b", calls))
    trainer.extend(Recorder("one", calls), priority=1)
    trainer.extend(make_extension(priority=0)(lambda t: calls.append("fn_zero")), name="f")
    trainer.run()
    assert calls == ["writer", "reader_a", "reader_b", "one", "zero_a", "zero_b", "fn_zero",
                     "neg"]


@pytest.mark.parametrize("priority", [0, -1, 1])
def test_explicit_priority_is_not_swallowed(make_trainer, priority):
    trainer = make_trainer(stop=(1, "iteration"))
    calls: list[Any] = []
    trainer.extend(Recorder("default", calls, priority=priority + 1))
    trainer.extend(Recorder("mine", calls), priority=priority)
    trainer.extend(Recorder("later", calls, priority=priority))
    trainer.run()
    assert calls == ["default", "mine", "later"]


def test_function_extension_attributes_are_defaults(make_trainer):
    trainer = make_trainer(stop=(6, "iteration"))
    seen: list[int] = []

    def every_third(t) -> None:
        seen.append(t.updater.iteration)

    every_third.trigger = (3, "iteration")  # type: ignore[attr-defined]
    trainer.extend(every_third)
    assert "every_third" in trainer.extensions
    trainer.run()
    assert seen == [3, 6]


def test_make_extension_sets_trigger_priority_and_name(make_trainer):
    seen: list[int] = []

    @make_extension(trigger=(2, "iteration"), priority=7, name="evens")
    def ext(t) -> None:
        seen.append(t.updater.iteration)

    assert (ext.priority, ext.default_name) == (7, "evens")
    trainer = make_trainer(stop=(5, "iteration"))
    trainer.extend(ext)
    trainer.run()
    assert seen == [2, 4]


def test_extend_trigger_overrides_the_extension_default(make_trainer):
    trainer = make_trainer(stop=(2, "epoch"), n_batches=3)
    calls: list[Any] = []
    trainer.extend(lambda t: calls.append(t.updater.iteration), name="epochly",
                   trigger=(1, "epoch"))
    trainer.extend(lambda t: calls.append(-t.updater.iteration), name="manual",
                   trigger=IntervalTrigger(4, "iteration"))
    trainer.run()
    assert calls == [3, -4, 6]


def test_duplicate_names_get_suffixes(make_trainer):
    trainer = make_trainer()
    calls: list[Any] = []
    for tag in "abc":
        trainer.extend(Recorder(tag, calls))
    trainer.extend(Recorder("d", calls), name="Recorder_1")
    trainer.extend(Recorder("e", calls), name="mine")
    trainer.extend(Recorder("f", calls), name="mine")
    names = list(trainer.extensions)
    assert names == ["Recorder", "Recorder_1", "Recorder_2", "Recorder_1_1", "mine", "mine_1"]
    assert [trainer.get_extension(n).tag for n in names] == list("abcdef")


def test_get_extension_unknown_name(make_trainer):
    trainer = make_trainer()
    trainer.extend(Recorder("a", []))
    with pytest.raises(KeyError, match=r"no extension named 'Nope'; have \['Recorder'\]"):
        trainer.get_extension("Nope")


@pytest.mark.parametrize(
    ("extension", "kwargs", "error", "match"),
    [
        (42, {}, TypeError, r"takes an Extension or a function of the trainer, got 42"),
        ("LogReport", {}, TypeError, r"got 'LogReport'"),
        (Recorder("a", []), {"priority": True}, TypeError, r"priority must be an int, got True"),
        (Recorder("a", []), {"priority": "high"}, TypeError, r"got 'high'"),
        (Recorder("a", []), {"priority": 1.0}, TypeError, r"got 1\.0"),
        (Recorder("a", []), {"trigger": (1, "epochs")}, ValueError, r"got 'epochs'"),
        (Recorder("a", []), {"trigger": (0, "epoch")}, ValueError, r"positive integer, got 0"),
        (Recorder("a", []), {"trigger": (1,)}, ValueError, r"\(period, unit\), got \(1,\)"),
        (Recorder("a", []), {"trigger": "epoch"}, TypeError, r"got 'epoch'"),
        (Recorder("a", []), {"name": ""}, ValueError, r"non-empty string, got ''"),
        (Recorder("a", []), {"name": 3}, ValueError, r"non-empty string, got 3"),
    ],
)
def test_extend_rejects_bad_arguments(make_trainer, extension, kwargs, error, match):
    trainer = make_trainer()
    with pytest.raises(error, match=match):
        trainer.extend(extension, **kwargs)
    assert trainer.extensions == {}  # nothing half-registered


def test_extend_during_run_is_rejected(make_trainer):
    trainer = make_trainer(stop=(3, "iteration"))
    trainer.extend(lambda t: t.extend(Recorder("late", [])), name="sneaky")
    with pytest.raises(RuntimeError, match=r"extend\(\) was called while the trainer runs"):
        trainer.run()
    assert list(trainer.extensions) == ["sneaky"]
    assert trainer.updater.iteration == 1


class Hooks(Extension):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def initialize(self, trainer) -> None:
        self.log.append(("initialize", trainer.updater.iteration))

    def __call__(self, trainer) -> None:
        self.log.append(("call", trainer.updater.iteration))

    def on_error(self, trainer, exc: BaseException) -> None:
        self.log.append(("on_error", exc))

    def finalize(self, trainer) -> None:
        self.log.append(("finalize", trainer.updater.iteration))


class FailingUpdater(Updater):
    def update_core(self, batch: Any) -> None:
        if self.iteration == 2:
            raise ArithmeticError("boom at the third update")


def test_hooks_on_a_normal_run(make_trainer):
    trainer = make_trainer(stop=(2, "iteration"))
    log: list[Any] = []
    trainer.extend(Hooks(log))
    trainer.run()
    assert log == [("initialize", 0), ("call", 1), ("call", 2), ("finalize", 2)]


def test_finalize_runs_and_on_error_gets_the_exception_when_update_raises(make_trainer):
    trainer = make_trainer(stop=(10, "iteration"), updater_cls=FailingUpdater)
    first: list[Any] = []
    second: list[Any] = []
    trainer.extend(Hooks(first))
    trainer.extend(Hooks(second), priority=-1)
    with pytest.raises(ArithmeticError, match="boom") as info:
        trainer.run()
    for log in (first, second):
        assert [entry[0] for entry in log] == ["initialize", "call", "call", "on_error",
                                               "finalize"]
        assert log[3][1] is info.value
        assert log[4] == ("finalize", 2)
    with pytest.raises(ArithmeticError):  # not "already running": a failed run can rerun
        trainer.run()


def test_finalize_runs_when_an_extension_raises(make_trainer):
    trainer = make_trainer(stop=(5, "iteration"))
    log: list[Any] = []
    trainer.extend(Hooks(log))

    def explode(t) -> None:
        if t.updater.iteration == 3:
            raise OSError("disk full")

    trainer.extend(explode, priority=PRIORITY_READER - 1)
    with pytest.raises(OSError, match="disk full"):
        trainer.run()
    assert log[-2][0] == "on_error" and isinstance(log[-2][1], OSError)
    assert log[-1] == ("finalize", 3)


def test_run_stops_at_the_stop_trigger(make_trainer):
    trainer = make_trainer(stop=(2, "epoch"), n_batches=3)
    trainer.run()
    u = trainer.updater
    assert (u.iteration, u.epoch) == (6, 2)
    assert trainer.out.is_dir()
    assert trainer.elapsed_time > 0


def test_a_second_run_continues_to_a_new_stop(make_trainer):
    trainer = make_trainer(stop=(3, "iteration"))
    trainer.run()
    elapsed = trainer.elapsed_time
    trainer.stop_trigger = IntervalTrigger(5, "iteration")
    trainer.run()
    assert trainer.updater.iteration == 5
    assert trainer.elapsed_time > elapsed


def test_observation_is_fresh_each_iteration(make_trainer):
    trainer = make_trainer(stop=(3, "iteration"))
    seen: list[dict[str, Any]] = []
    trainer.extend(lambda t: seen.append(dict(t.observation)), name="peek")
    trainer.run()
    assert [set(obs) for obs in seen] == [{"loss"}] * 3
    assert len({id(obs["loss"]) for obs in seen}) == 3


def test_sigint_stops_cleanly_after_the_current_iteration(make_trainer):
    trainer = make_trainer(stop=(50, "iteration"))
    log: list[Any] = []
    trainer.extend(Hooks(log))
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(t) -> None:
        if t.updater.iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)

    trainer.extend(interrupt, priority=PRIORITY_WRITER)
    trainer.run()
    assert trainer.stop_reason == "signal"
    assert trainer.updater.iteration == 3
    assert log[-1] == ("finalize", 3)
    assert signal.getsignal(signal.SIGINT) is previous  # the handler is given back


def test_state_dict_tree(make_trainer):
    trainer = make_trainer(stop=(2, "iteration"))
    trainer.metadata["recipe"] = "toy"
    trainer.extend(Recorder("a", []))
    trainer.run()
    state = trainer.state_dict()
    from gankit import __version__

    assert state["gankit_version"] == __version__
    assert state["metadata"] == {"recipe": "toy"}
    assert state["updater"]["iteration"] == 2
    assert set(state["extensions"]) == {"Recorder"}
    assert set(state["rng"]) >= {"python", "numpy", "torch"}


def test_resume_with_nothing_to_resume_starts_fresh(make_trainer, tmp_path):
    """``trainer.resume(out)`` before ``run()`` is right on a first run too (the README's)."""
    from gankit.extensions import Snapshot

    out = tmp_path / "runs" / "mine"  # not created yet
    first = make_trainer(stop=(4, "iteration"), out=out)
    first.extend(Snapshot(trigger=(2, "iteration")))
    assert first.resume(out) is None
    first.run()
    second = make_trainer(stop=(6, "iteration"), out=out)
    second.extend(Snapshot(trigger=(2, "iteration")))
    assert second.resume(out) == out / "snapshot_iter_4.pt"
    assert second.updater.iteration == 4


def test_resume_from_a_missing_snapshot_file_is_an_error(make_trainer, tmp_path):
    from gankit.errors import GankitError

    with pytest.raises(GankitError, match=r"snapshot .*snapshot_iter_5\.pt does not exist; give "
                                          r"an existing snapshot file, or the run directory"):
        make_trainer().resume(tmp_path / "run" / "snapshot_iter_5.pt")
