"""BestModel: the generator a run would keep, written as a generator file when it fires."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from gankit.errors import GankitError
from gankit.export import GeneratorInfo, GeneratorSpec, save_generator
from gankit.extensions.ema import EMA, sampling_model
from gankit.training.extension import PRIORITY_SNAPSHOT, Extension
from gankit.training.triggers import TriggerLike

if TYPE_CHECKING:
    from gankit.metrics.protocol import Protocol
    from gankit.training.trainer import Trainer


class BestModel(Extension):
    """Writes model ``source`` (its EMA average when an EMA tracks it) to ``out/filename``.

    The file is a generator file (:mod:`gankit.export`): the weights, ``spec`` (what
    rebuilds the module), ``data`` (its kind and value range), where it comes from (``run``
    plus the iteration, epoch and whether the weights are an EMA average), the
    ``prefix/*`` scores in the trainer's observation at that iteration and the protocol of
    ``evaluator`` (anything with a ``protocol`` attribute, such as a GANEvaluator). It is
    written atomically, by the main process only, and is an output, not state: nothing is
    read back on resume. Give it a best-value trigger (``MinValueTrigger("val/fid", ...)``)
    to keep the best model; that trigger's best value travels in snapshots as every
    trigger's state does.
    """

    priority = PRIORITY_SNAPSHOT
    name = "BestModel"

    def __init__(self, spec: GeneratorSpec, data: dict[str, Any], *,
                 run: dict[str, Any] | None = None, filename: str = "best.safetensors",
                 source: str = "gen", evaluator: Any = None, prefix: str = "val",
                 trigger: TriggerLike | None = None, name: str | None = None) -> None:
        self.spec, self.data, self.run = spec, dict(data), dict(run or {})
        self.filename, self.source, self.evaluator, self.prefix = (filename, source, evaluator,
                                                                   prefix)
        if trigger is not None:
            self.trigger = trigger
        if name is not None:
            self.name = name
        self._checked = False  # the spec is checked against the weights at the first write

    def __call__(self, trainer: Trainer) -> None:
        if not trainer.is_main_process:
            return
        gen = sampling_model(trainer, self.source)
        ema = any(isinstance(e, EMA) and e.average is gen for e in trainer.extensions.values())
        metrics = {}
        for key, value in trainer.observation.items():
            if key.startswith(self.prefix + "/"):
                number = float(value.item() if isinstance(value, torch.Tensor) else value)
                if math.isfinite(number):
                    metrics[key] = number
        protocol: Protocol | None = getattr(self.evaluator, "protocol", None)
        u = trainer.updater
        info = GeneratorInfo(
            self.spec, self.data,
            run={**self.run, "iteration": u.iteration, "epoch": u.epoch, "ema": ema,
                 "model": self.source},
            metrics=metrics, protocol=None if protocol is None else protocol.as_dict())
        path = trainer.out / self.filename
        try:
            save_generator(path, gen, info, check=not self._checked)
        except OSError as exc:
            raise GankitError(f"cannot write the best model {path} ({exc.strerror or exc}); "
                              "free disk space or fix permissions, then resume the run.") from None
        self._checked = True
