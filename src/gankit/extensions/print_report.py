"""PrintReport: an aligned table of chosen log keys, one row per LogReport entry."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

from gankit.extensions.log_report import LogReport
from gankit.training.extension import PRIORITY_READER, Extension

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class PrintReport(Extension):
    """Prints new LogReport entries as table rows (through tqdm, so bars stay intact)."""

    trigger = (1, "iteration")
    priority = PRIORITY_READER
    name = "PrintReport"

    def __init__(
        self,
        entries: list[str],
        log_report: str = "LogReport",
        out: TextIO | None = None,
    ) -> None:
        self.entries = list(entries)
        self.log_report = log_report
        self.out = out
        # 12 fits any .6g float with a two-digit exponent (-1.23457e-05, -0.000123457), so a
        # value never pushes the columns after it out of line with the header.
        self._widths = [max(12, len(e)) for e in self.entries]
        self._printed = 0

    def _write(self, line: str) -> None:
        tqdm.write(line, file=self.out or sys.stdout)

    def initialize(self, trainer: Trainer) -> None:
        log = self._log_ext = self._log(trainer)  # looked up once, not every iteration
        self._printed = len(log.log)
        if trainer.is_main_process:
            self._write("  ".join(e.ljust(w) for e, w in zip(self.entries, self._widths,
                                                              strict=True)).rstrip())

    def _log(self, trainer: Trainer) -> LogReport:
        ext = trainer.get_extension(self.log_report)
        if not isinstance(ext, LogReport):
            raise TypeError(f"extension {self.log_report!r} is not a LogReport.")
        return ext

    def __call__(self, trainer: Trainer) -> None:
        log = self._log_ext.log
        if len(log) == self._printed or not trainer.is_main_process:
            self._printed = len(log)
            return
        for entry in log[self._printed:]:
            cells = []
            for key, width in zip(self.entries, self._widths, strict=True):
                value = entry.get(key)
                if value is None:
                    cells.append("".ljust(width))
                elif key in ("epoch", "iteration"):
                    cells.append(str(int(value)).ljust(width))
                else:
                    cells.append(f"{value:<{width}.6g}")
            self._write("  ".join(cells).rstrip())
        self._printed = len(log)
