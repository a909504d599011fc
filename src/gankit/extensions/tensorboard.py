"""TensorBoard: LogReport entries as scalars (needs the optional ``tensorboard`` package)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError
from gankit.extensions.log_report import LogReport
from gankit.training.extension import PRIORITY_READER, Extension

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class TensorBoard(Extension):
    """Writes each new LogReport entry to ``out/logdir`` as scalars against the iteration."""

    trigger = (1, "iteration")
    priority = PRIORITY_READER
    name = "TensorBoard"

    def __init__(self, logdir: str = "tb", log_report: str = "LogReport") -> None:
        self.logdir = logdir
        self.log_report = log_report
        self._writer: Any = None
        self._written = 0

    def initialize(self, trainer: Trainer) -> None:
        if not trainer.is_main_process:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GankitError(
                "the TensorBoard extension needs the tensorboard package; "
                "install it with pip install 'gankit[tensorboard]'."
            ) from None
        self._writer = SummaryWriter(str(trainer.out / self.logdir))
        log = trainer.get_extension(self.log_report)
        assert isinstance(log, LogReport)
        self._written = len(log.log)

    def __call__(self, trainer: Trainer) -> None:
        if self._writer is None:
            return
        log = trainer.get_extension(self.log_report)
        assert isinstance(log, LogReport)
        for entry in log.log[self._written:]:
            step = int(entry["iteration"])
            for key, value in entry.items():
                if key not in ("iteration", "epoch"):
                    self._writer.add_scalar(key, value, step)
        self._written = len(log.log)

    def finalize(self, trainer: Trainer) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
