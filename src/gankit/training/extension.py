"""Extensions: everything around the loop (logging, printing, plots, snapshots).

Extensions run after an update, in order of priority (higher first) and then of
registration. Writers (evaluators) put values into the observation, editors change the
model or optimizer, readers (logs, prints, plots) see the final observation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer
    from gankit.training.triggers import TriggerLike

PRIORITY_WRITER = 300  # puts values into the observation (evaluators)
PRIORITY_EDITOR = 200  # changes models or optimizers (EMA, learning-rate schedules)
PRIORITY_LOG = 150  # LogReport: readers below read its log
PRIORITY_READER = 100  # prints, plots, sample grids
PRIORITY_SNAPSHOT = -100  # last, so a snapshot holds everything the iteration did


class Extension:
    """Base class. Override ``__call__``; the class attributes are defaults for ``extend``."""

    trigger: TriggerLike = (1, "iteration")
    priority: int = PRIORITY_READER
    name: str | None = None

    @property
    def default_name(self) -> str:
        return self.name or type(self).__name__

    def __call__(self, trainer: Trainer) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def initialize(self, trainer: Trainer) -> None:
        """Called once before the first update (also after a resume)."""

    def finalize(self, trainer: Trainer) -> None:
        """Called once when training ends, normally or not."""

    def on_error(self, trainer: Trainer, exc: BaseException) -> None:
        """Called when the loop raises, before ``finalize``."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class FunctionExtension(Extension):
    """A plain function of the trainer as an extension (what ``make_extension`` and
    ``Trainer.extend`` of a function make)."""

    def __init__(self, fn: Callable[[Trainer], None], trigger: TriggerLike, priority: int,
                 name: str | None) -> None:
        self._fn = fn
        self.trigger = trigger
        self.priority = priority
        self.name = name or getattr(fn, "__name__", None)

    def __call__(self, trainer: Trainer) -> None:
        self._fn(trainer)


def make_extension(
    trigger: TriggerLike = (1, "iteration"),
    priority: int = PRIORITY_WRITER,
    name: str | None = None,
) -> Callable[[Callable[[Trainer], None]], Extension]:
    """Decorator that turns ``def f(trainer)`` into an extension.

    The default priority is ``PRIORITY_WRITER``: what the function reports is in the
    iteration's observation before LogReport, PrintReport and the plots read it. A function
    that reads the log (not one that reports) should pass ``priority=PRIORITY_READER``.
    """

    def wrap(fn: Callable[[Trainer], None]) -> Extension:
        return FunctionExtension(fn, trigger, priority, name)

    return wrap
