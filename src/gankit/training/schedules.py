"""Schedules: a hyperparameter as a function of training progress.

One mechanism for every value that changes over a run: a regulariser's weight, a learning
rate, Adam's beta2, the EMA's half-life, an augmentation probability. A ``Schedule`` maps the
progress (updates done, or thousands of real images shown) to a value; it holds no state,
so a resumed run, whose progress is restored from the snapshot, computes exactly the values
the uninterrupted run did.

    from gankit.training.schedules import Ramp
    gamma = Ramp(0.05, 0.005, 20_000, unit="kimg")   # the cosine ramp over 20 Mimg
    gamma(0.0), gamma(10_000.0), gamma(30_000.0)      # 0.05, 0.0275, 0.005
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import torch

from gankit.errors import GankitError
from gankit.training.extension import PRIORITY_EDITOR, Extension

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer
    from gankit.training.updater import Updater

#: what a schedule's progress counts
UNITS = ("iteration", "kimg")
#: the shapes of a ramp
SHAPES = ("cosine", "linear")


class Progress(Protocol):
    """What a schedule reads its progress from (an Updater)."""

    iteration: int
    images_seen: int


class Schedule:
    """A value as a function of progress in ``unit`` ("iteration" or "kimg")."""

    unit: str = "iteration"

    def __call__(self, progress: float) -> float:
        raise NotImplementedError

    def at(self, updater: Progress) -> float:
        """The value at ``updater``'s progress."""
        return self(progress_of(updater, self.unit))


class Constant(Schedule):
    """The same value throughout."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, progress: float) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"Constant({self.value!r})"


class Ramp(Schedule):
    """From ``start`` to ``end`` over ``length`` units of progress, then ``end``.

    ``shape="cosine"`` follows half a cosine (flat at both ends: ``end + (start - end) *
    (1 + cos(pi * t / length)) / 2``), ``"linear"`` a straight line. ``delay`` units at
    ``start`` come first.
    """

    def __init__(self, start: float, end: float, length: float, *, unit: str = "iteration",
                 shape: str = "cosine", delay: float = 0.0) -> None:
        if unit not in UNITS:
            raise GankitError(f"unknown schedule unit {unit!r}; choose one of: "
                              f"{', '.join(UNITS)}.")
        if shape not in SHAPES:
            raise GankitError(f"unknown ramp shape {shape!r}; choose one of: "
                              f"{', '.join(SHAPES)}.")
        for what, value in (("start", start), ("end", end)):
            if not _is_finite(value):
                raise GankitError(f"a ramp's {what} must be a finite number, got {value!r}.")
        if not (_is_finite(length) and length > 0):
            raise GankitError(f"a ramp's length must be a positive number, got {length!r}.")
        if not (_is_finite(delay) and delay >= 0):
            raise GankitError(f"a ramp's delay must be a non-negative number, got {delay!r}.")
        self.start, self.end, self.length = float(start), float(end), float(length)
        self.unit, self.shape, self.delay = unit, shape, float(delay)

    def __call__(self, progress: float) -> float:
        t = min(max(progress - self.delay, 0.0) / self.length, 1.0)
        if self.shape == "linear":
            return self.start + (self.end - self.start) * t
        return self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * t))

    def __repr__(self) -> str:
        return (f"Ramp({self.start!r}, {self.end!r}, {self.length!r}, unit={self.unit!r}, "
                f"shape={self.shape!r}, delay={self.delay!r})")


#: a hyperparameter: a number, or a schedule of one
Scheduled: TypeAlias = float | Schedule


def progress_of(updater: Progress, unit: str) -> float:
    """``updater``'s progress in ``unit``: updates done, or thousands of images shown."""
    if unit == "iteration":
        return float(updater.iteration)
    if unit == "kimg":
        return updater.images_seen / 1000.0
    raise GankitError(f"unknown schedule unit {unit!r}; choose one of: {', '.join(UNITS)}.")


def value_at(value: Scheduled, updater: Progress) -> float:
    """A plain number as it is, a schedule at ``updater``'s progress."""
    return value.at(updater) if isinstance(value, Schedule) else value


def check_scheduled(value: Any, what: str, *, low: float = 0.0,
                    high: float = math.inf) -> Scheduled:
    """``value`` if it is a number in [low, high) or a Schedule, else a GankitError."""
    if isinstance(value, Schedule):
        return value
    if not (_is_finite(value) and low <= value < high):
        bounds = f"in [{low:g}, {high:g})" if math.isfinite(high) else f">= {low:g}"
        raise GankitError(f"{what} must be a number {bounds} or a Schedule, got {value!r}.")
    return float(value)


def _is_finite(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


class ScheduleHyperparameters(Extension):
    """Sets hyperparameters from schedules before each update.

    ``targets`` maps ``"OPTIMIZER/lr"``, ``"OPTIMIZER/beta1"``, ``"OPTIMIZER/beta2"`` or
    ``"OPTIMIZER/weight_decay"`` (every param group of that optimizer takes the value), or a
    dotted attribute of the updater such as ``"augment.p"`` (a tensor there is filled in
    place, on its device, without a host sync), to a Schedule. The values are recomputed from
    the updater's progress (which snapshots carry), so the extension has no state of its own
    and a resumed run continues exactly.
    """

    trigger = (1, "iteration")
    priority = PRIORITY_EDITOR
    name = "ScheduleHyperparameters"

    PARAMS = ("lr", "beta1", "beta2", "weight_decay")

    def __init__(self, targets: Mapping[str, Schedule]) -> None:
        self.targets: dict[tuple[str, str], Schedule] = {}
        for key, schedule in targets.items():
            opt, slash, param = key.partition("/")
            if not slash and "." in key and all(key.split(".")):
                opt, param = "", key  # an attribute of the updater
            elif param not in self.PARAMS or not opt:
                raise GankitError(f"schedule target {key!r} is not OPTIMIZER/PARAM with PARAM "
                                  f"one of {', '.join(self.PARAMS)}, nor an attribute of the "
                                  "updater such as augment.p.")
            if not isinstance(schedule, Schedule):
                raise GankitError(f"the schedule of {key!r} must be a Schedule, got "
                                  f"{schedule!r}.")
            self.targets[(opt, param)] = schedule

    def apply(self, updater: Updater) -> None:
        """Set every target to its value at ``updater``'s progress."""
        for (opt, param), schedule in self.targets.items():
            if not opt:
                _set_attribute(updater, param, schedule.at(updater))
                continue
            try:
                groups = updater.optimizers[opt].param_groups
            except KeyError:
                raise GankitError(f"no optimizer named {opt!r} to schedule; the updater has "
                                  f"{', '.join(sorted(updater.optimizers))}.") from None
            value = schedule.at(updater)
            for group in groups:
                if param in ("beta1", "beta2"):
                    betas = list(group["betas"])
                    betas[1 if param == "beta2" else 0] = value
                    group["betas"] = tuple(betas)
                else:
                    group[param] = value

    def initialize(self, trainer: Trainer) -> None:
        self.apply(trainer.updater)

    def __call__(self, trainer: Trainer) -> None:
        self.apply(trainer.updater)


def _set_attribute(root: Any, path: str, value: float) -> None:
    *parents, last = path.split(".")
    owner = root
    for name in parents:
        owner = getattr(owner, name, None)
        if owner is None:
            raise GankitError(f"the updater has no {path!r} to schedule; check the target.")
    current = getattr(owner, last, None)
    if isinstance(current, torch.Tensor):
        current.fill_(value)
    elif isinstance(current, (int, float)) and not isinstance(current, bool):
        setattr(owner, last, value)
    else:
        raise GankitError(f"the updater's {path} is {current!r}, not a number to schedule.")
