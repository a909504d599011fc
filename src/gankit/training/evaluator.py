"""The Evaluator: scores several models on held-out data (the article's Point 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gankit.training.eval_mode import eval_mode
from gankit.training.extension import PRIORITY_WRITER, Extension
from gankit.training.reporter import DictSummary, report, report_scope
from gankit.training.stop import StopRequested, check_stop
from gankit.training.updater import to_device

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer
    from gankit.training.triggers import TriggerLike


class Evaluator(Extension):
    """Runs ``eval_fn(models, batch)`` over a validation loader and reports the means.

    Every model is put in eval mode under ``torch.no_grad()`` and given back its previous
    mode afterwards. Whatever ``eval_fn`` reports (``gen/loss``) lands in the observation
    under the prefix (``val/gen/loss``), averaged over the whole loader, so LogReport,
    PrintReport and best-value triggers see it. Subclass and override ``evaluate`` to report
    values that are not per-batch means (FID, say).

    The arguments follow Chainer's ``Evaluator(iterator, target, eval_func)``, so the article's
    ``Evaluator(val_loader, {"gen": G, "dis": D}, eval_fn)`` ports as it is. Calling it takes
    the trainer, unlike Chainer's ``evaluator()``: ``evaluator(trainer)`` evaluates at once,
    reports and returns the means under the prefix (``{"val/gen/loss": ...}``); the trainer
    gives the device, the precision and the default models.

    A stop signal abandons the evaluation at the next batch (long ``evaluate`` overrides
    should call :func:`gankit.training.stop.check_stop` in their loops): nothing is reported
    and the global RNG streams are put back, so the resumed run redoes it identically.

    Args:
        loader: the held-out data; iterated once per evaluation.
        models: a module or a dict of named modules, switched to eval mode and given to
            ``eval_fn``; defaults to the updater's (plain, unwrapped) models.
        eval_fn: ``eval_fn(models, batch)`` with the dict of models and each batch (moved to
            the updater's device); it reports what it measures with ``gankit.report``.
        prefix: prepended to every reported name.
        trigger: when to evaluate (default: every epoch); ``trainer.extend`` may override it.
    """

    trigger: TriggerLike = (1, "epoch")
    priority = PRIORITY_WRITER
    name = "Evaluator"

    def __init__(
        self,
        loader: Iterable[Any] | None,
        models: nn.Module | Mapping[str, nn.Module] | None = None,
        eval_fn: Callable[[dict[str, nn.Module], Any], None] | None = None,
        *,
        prefix: str = "val",
        trigger: TriggerLike | None = None,
    ) -> None:
        if models is not None and not isinstance(models, (nn.Module, Mapping)):
            raise TypeError(
                f"Evaluator's second argument is the models (a module or a dict of them), got "
                f"{type(models).__name__}; pass the function as eval_fn=."
            )
        self.loader = loader
        self.eval_fn = eval_fn
        self.models: dict[str, nn.Module] | None = (
            {"main": models} if isinstance(models, nn.Module)
            else dict(models) if models is not None else None)
        self.prefix = prefix
        if trigger is not None:
            self.trigger = trigger

    def target(self, trainer: Trainer) -> dict[str, nn.Module]:
        """The models this evaluator scores: its own, or the updater's plain modules."""
        return self.models if self.models is not None else trainer.updater.raw_models

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """Mean of each reported value over the loader."""
        if self.loader is None or self.eval_fn is None:
            raise NotImplementedError("give a loader and eval_fn, or override evaluate().")
        summary = DictSummary()
        device = trainer.updater.device
        models = self.target(trainer)
        for batch in self.loader:
            check_stop()  # a pending SIGTERM abandons the evaluation within a batch
            observation: dict[str, Any] = {}
            with report_scope(observation, models):
                self.eval_fn(models, to_device(batch, device))
            summary.add(observation)
        return summary.compute_mean()

    def __call__(self, trainer: Trainer) -> dict[str, float]:  # type: ignore[override]
        """Evaluate now, report the result under the prefix and return it (the trainer is
        required: it gives the device, the precision and the default models)."""
        from gankit.training.trainer import _rng_state, _set_rng_state

        rng = _rng_state()
        try:
            with eval_mode(*self.target(trainer).values()), torch.no_grad(), \
                    trainer.updater.autocast():
                result = self.evaluate(trainer)
        except StopRequested:
            _set_rng_state(rng)  # as if this evaluation never started
            raise
        report(result, self.prefix)
        return {f"{self.prefix}/{k}" if self.prefix else k: v for k, v in result.items()}
