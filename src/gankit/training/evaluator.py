"""The Evaluator: scores several models on held-out data (the article's Point 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gankit.training.extension import PRIORITY_WRITER, Extension
from gankit.training.reporter import DictSummary, report, report_scope
from gankit.training.stop import StopRequested, check_stop
from gankit.training.updater import to_device

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class Evaluator(Extension):
    """Runs ``eval_fn(batch)`` over a validation loader and reports the means.

    Every model is put in eval mode under ``torch.no_grad()`` and given back its previous
    mode afterwards. Whatever ``eval_fn`` reports (``gen/loss``) lands in the observation
    under the prefix (``val/gen/loss``), averaged over the whole loader, so LogReport,
    PrintReport and best-value triggers see it. Subclass and override ``evaluate`` to report
    values that are not per-batch means (FID, say).

    A stop signal abandons the evaluation at the next batch (long ``evaluate`` overrides
    should call :func:`gankit.training.stop.check_stop` in their loops): nothing is reported
    and the global RNG streams are put back, so the resumed run redoes it identically.

    Args:
        loader: the held-out data; iterated once per evaluation.
        models: the models to switch to eval mode; defaults to the updater's models.
        eval_fn: called with each batch (moved to the updater's device).
    """

    trigger = (1, "epoch")
    priority = PRIORITY_WRITER
    name = "Evaluator"

    def __init__(
        self,
        loader: Iterable[Any] | None,
        eval_fn: Callable[[Any], None] | None = None,
        *,
        models: Mapping[str, nn.Module] | None = None,
        prefix: str = "val",
    ) -> None:
        self.loader = loader
        self.eval_fn = eval_fn
        self.models = dict(models) if models is not None else None
        self.prefix = prefix

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """Mean of each reported value over the loader."""
        if self.loader is None or self.eval_fn is None:
            raise NotImplementedError("give a loader and eval_fn, or override evaluate().")
        summary = DictSummary()
        device = trainer.updater.device
        for batch in self.loader:
            check_stop()  # a pending SIGTERM abandons the evaluation within a batch
            observation: dict[str, Any] = {}
            with report_scope(observation):
                self.eval_fn(to_device(batch, device))
            summary.add(observation)
        return summary.compute_mean()

    def __call__(self, trainer: Trainer) -> None:
        models = self.models if self.models is not None else trainer.updater.raw_models
        # Per submodule, not per model: a frozen BatchNorm inside a training model must stay
        # in eval mode, and ``model.train(True)`` would flip it.
        modes = [(sub, sub.training) for m in models.values() for sub in m.modules()]
        from gankit.training.trainer import _rng_state, _set_rng_state

        rng = _rng_state()
        try:
            for m in models.values():
                m.eval()
            with torch.no_grad(), trainer.updater.autocast():
                result = self.evaluate(trainer)
        except StopRequested:
            _set_rng_state(rng)  # as if this evaluation never started
            raise
        finally:
            for sub, mode in modes:  # parents first, so each child's own call wins
                sub.train(mode)
        report(result, prefix=self.prefix)
