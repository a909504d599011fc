"""Triggers decide when an extension runs and when training stops.

Interval and schedule triggers are pure functions of the updater's counters, so a resumed
run fires them exactly where the uninterrupted run would, with no trigger state to save.
Only the best-value triggers keep state (the best value so far), and they save it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, Union, cast

from gankit.errors import GankitError
from gankit.training.reporter import DictSummary

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer

Unit = Literal["iteration", "epoch"]
UNITS = ("iteration", "epoch")
TriggerLike = Union["Trigger", tuple[int, str], Callable[["Trainer"], bool]]


class Trigger:
    """Base class: ``__call__(trainer) -> bool``; stateful triggers override the state methods."""

    def __call__(self, trainer: Trainer) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _check_unit(unit: str) -> Unit:
    if unit not in UNITS:
        raise GankitError(f"trigger unit must be 'iteration' or 'epoch', got {unit!r}.")
    return cast(Unit, unit)


class IntervalTrigger(Trigger):
    """Fires every ``period`` iterations, or at the end of every ``period``-th epoch."""

    def __init__(self, period: int, unit: Unit = "iteration") -> None:
        _check_unit(unit)
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise GankitError(f"trigger period must be a positive integer, got {period!r}.")
        self.period = period
        self.unit = unit

    def __call__(self, trainer: Trainer) -> bool:
        u = trainer.updater
        if self.unit == "iteration":
            return u.iteration > 0 and u.iteration % self.period == 0
        return u.is_new_epoch and u.epoch % self.period == 0

    def __repr__(self) -> str:
        return f"IntervalTrigger({self.period}, {self.unit!r})"


class StopTrigger(Trigger):
    """True once ``period`` iterations or epochs are done (``>=``, so it never misses)."""

    def __init__(self, period: int, unit: Unit = "epoch") -> None:
        IntervalTrigger(period, unit)  # same validation
        self.period = period
        self.unit = unit

    def __call__(self, trainer: Trainer) -> bool:
        u = trainer.updater
        done = u.iteration if self.unit == "iteration" else u.epoch
        return done >= self.period

    def __repr__(self) -> str:
        return f"StopTrigger({self.period}, {self.unit!r})"


class ManualScheduleTrigger(Trigger):
    """Fires at the listed iterations (or at the end of the listed epochs)."""

    def __init__(self, points: int | Iterable[int], unit: Unit = "iteration") -> None:
        _check_unit(unit)
        points = [points] if isinstance(points, int) else list(points)
        if not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in points):
            raise GankitError(f"schedule points must be positive integers, got {points!r}.")
        self.points = frozenset(points)
        self.unit = unit

    def __call__(self, trainer: Trainer) -> bool:
        u = trainer.updater
        if self.unit == "iteration":
            return u.iteration in self.points
        return u.is_new_epoch and u.epoch in self.points


class BestValueTrigger(Trigger):
    """Fires when the mean of ``key`` over the last interval beats the best so far.

    Use it to keep the best model: ``trainer.extend(snapshot(...),
    trigger=MinValueTrigger("val/fid", (1, "epoch")))``.
    """

    def __init__(
        self,
        key: str,
        compare: Callable[[float, float], bool],
        trigger: TriggerLike = (1, "epoch"),
    ) -> None:
        self.key = key
        self._compare = compare
        self._interval = get_trigger(trigger)
        self._summary = DictSummary()
        self.best: float | None = None

    def __call__(self, trainer: Trainer) -> bool:
        if self.key in trainer.observation:
            self._summary.add({self.key: trainer.observation[self.key]})
        if not self._interval(trainer):
            return False
        value = self._summary.compute_mean().get(self.key)
        self._summary = DictSummary()
        if value is None or (self.best is not None and not self._compare(value, self.best)):
            return False
        self.best = value
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "summary": self._summary.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self._summary.load_state_dict(state["summary"])


class MinValueTrigger(BestValueTrigger):
    def __init__(self, key: str, trigger: TriggerLike = (1, "epoch")) -> None:
        super().__init__(key, operator.lt, trigger)


class MaxValueTrigger(BestValueTrigger):
    def __init__(self, key: str, trigger: TriggerLike = (1, "epoch")) -> None:
        super().__init__(key, operator.gt, trigger)


class _CallableTrigger(Trigger):
    def __init__(self, fn: Callable[[Trainer], bool]) -> None:
        self.fn = fn

    def __call__(self, trainer: Trainer) -> bool:
        return bool(self.fn(trainer))


def get_trigger(trigger: TriggerLike) -> Trigger:
    """Turn ``(period, unit)`` or a callable into a Trigger."""
    if isinstance(trigger, Trigger):
        return trigger
    if isinstance(trigger, tuple):
        if len(trigger) != 2:
            raise GankitError(f"a trigger tuple is (period, unit), got {trigger!r}.")
        return IntervalTrigger(trigger[0], _check_unit(trigger[1]))
    if callable(trigger):
        return _CallableTrigger(trigger)
    raise TypeError(
        f"a trigger is a (period, 'iteration'|'epoch') tuple or a callable, got {trigger!r}."
    )


def get_stop_trigger(trigger: TriggerLike) -> Trigger:
    """Like ``get_trigger``, but ``(N, unit)`` means 'stop once N are done'."""
    if isinstance(trigger, tuple) and len(trigger) == 2:
        return StopTrigger(trigger[0], _check_unit(trigger[1]))
    return get_trigger(trigger)
