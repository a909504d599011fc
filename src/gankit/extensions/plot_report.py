"""PlotReport: a PNG plot of log keys, drawn without pyplot so no figure is ever left open."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from gankit.extensions.log_report import LogReport
from gankit.training.checkpoint import write_atomic
from gankit.training.extension import PRIORITY_READER, Extension
from gankit.training.triggers import TriggerLike

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class PlotReport(Extension):
    """Plots ``y_keys`` against ``x_key`` from the LogReport into ``out/filename``.

    A bare ``Figure`` with an Agg canvas is not registered with pyplot, so it is freed with
    its last reference; the article's ``plt.close('all')`` is not needed and cannot be
    forgotten.
    """

    priority = PRIORITY_READER
    name = "PlotReport"

    def __init__(
        self,
        y_keys: list[str],
        x_key: str = "iteration",
        filename: str = "loss.png",
        trigger: TriggerLike = (1, "epoch"),
        log_report: str = "LogReport",
    ) -> None:
        self.y_keys = list(y_keys)
        self.x_key = x_key
        self.filename = filename
        self.trigger = trigger
        self.log_report = log_report

    def __call__(self, trainer: Trainer) -> None:
        if not trainer.is_main_process:
            return
        ext = trainer.get_extension(self.log_report)
        assert isinstance(ext, LogReport)
        # matplotlib is imported here, not at module level: it costs ~0.5 s to import.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for key in self.y_keys:
            points = [(e[self.x_key], e[key]) for e in ext.log if key in e and self.x_key in e]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="." if len(points) < 50 else None, label=key)
        ax.set_xlabel(self.x_key)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        write_atomic(trainer.out / self.filename, buffer.getvalue(), durable=False)
