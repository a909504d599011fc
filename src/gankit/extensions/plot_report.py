"""PlotReport: a PNG plot of log keys, drawn without pyplot so no figure is ever left open."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError
from gankit.extensions.log_report import LogReport
from gankit.training.checkpoint import write_atomic
from gankit.training.extension import PRIORITY_READER, Extension
from gankit.training.triggers import TriggerLike

if TYPE_CHECKING:
    from gankit.training.trainer import Trainer


class _Series:
    """At most ``cap`` points: each the mean of ``stride`` consecutive log entries.

    When full, neighbouring points are merged and the stride doubles, so memory and drawing
    cost stay bounded however long the run, and the curve keeps its shape (means, not
    dropped points).
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.stride = 1
        self.xs: list[float] = []
        self.ys: list[float] = []
        self._acc = [0.0, 0.0, 0]  # the bucket being filled: sum x, sum y, count

    def add(self, x: float, y: float) -> None:
        self._acc[0] += x
        self._acc[1] += y
        self._acc[2] += 1
        if self._acc[2] < self.stride:
            return
        n = self._acc[2]
        self.xs.append(self._acc[0] / n)
        self.ys.append(self._acc[1] / n)
        self._acc = [0.0, 0.0, 0]
        if len(self.xs) > self.cap:
            pairs = len(self.xs) // 2
            self.xs = [(self.xs[2 * i] + self.xs[2 * i + 1]) / 2 for i in range(pairs)]
            self.ys = [(self.ys[2 * i] + self.ys[2 * i + 1]) / 2 for i in range(pairs)]
            self.stride *= 2

    def points(self) -> tuple[list[float], list[float]]:
        xs, ys = list(self.xs), list(self.ys)
        if self._acc[2]:  # the newest entries, so the plot reaches the end of the run
            xs.append(self._acc[0] / self._acc[2])
            ys.append(self._acc[1] / self._acc[2])
        return xs, ys

    def state_dict(self) -> dict[str, Any]:
        return {"stride": self.stride, "xs": list(self.xs), "ys": list(self.ys),
                "acc": list(self._acc)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stride, self.xs, self.ys = state["stride"], list(state["xs"]), list(state["ys"])
        self._acc = list(state["acc"])


class PlotReport(Extension):
    """Plots ``y_keys`` against ``x_key`` from the LogReport into ``out/filename``.

    It keeps its own series, at most ``max_points`` per key (means of consecutive entries,
    see ``_Series``), and reads only the log entries added since its last call, so a plot
    costs the same at the end of a long run as at its start; give it a slower trigger than
    the log's. It draws once more at the end of the run. ``subplots=True`` gives each key
    its own panel (metrics on different scales: FID, precision, modes); otherwise the keys
    share one axis with the legend outside the curves.

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
        *,
        max_points: int = 400,
        subplots: bool = False,
    ) -> None:
        if max_points < 2:
            raise GankitError(f"max_points must be at least 2, got {max_points}.")
        self.y_keys = list(y_keys)
        self.x_key = x_key
        self.filename = filename
        self.trigger = trigger
        self.log_report = log_report
        self.max_points = max_points
        self.subplots = subplots
        self._series = {key: _Series(max_points) for key in self.y_keys}
        self._seen = 0  # log entries already taken into the series

    def _log(self, trainer: Trainer) -> LogReport:
        ext = trainer.get_extension(self.log_report)
        if not isinstance(ext, LogReport):
            raise TypeError(f"extension {self.log_report!r} is not a LogReport.")
        return ext

    def _consume(self, trainer: Trainer) -> None:
        log = self._log(trainer).log
        self._seen = min(self._seen, len(log))
        for entry in log[self._seen:]:
            x = entry.get(self.x_key)
            if x is None:
                continue
            for key, series in self._series.items():
                if key in entry:
                    series.add(float(x), float(entry[key]))
        self._seen = len(log)

    def __call__(self, trainer: Trainer) -> None:
        self._consume(trainer)
        if trainer.is_main_process:
            self.draw(trainer.out / self.filename)

    def finalize(self, trainer: Trainer) -> None:
        if trainer.is_main_process and self._seen < len(self._log(trainer).log):
            self(trainer)

    def draw(self, path: Any) -> None:
        """Draw the current series into ``path`` (written atomically)."""
        keys = [k for k in self.y_keys if self._series[k].points()[0]] if self.subplots \
            else self.y_keys
        rows = max(1, len(keys)) if self.subplots else 1
        # matplotlib is imported here, not at module level: it costs ~0.5 s to import.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 2.2 * rows if self.subplots else 4), dpi=100)
        FigureCanvasAgg(fig)
        axes = [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]
        for i, key in enumerate(keys):
            ax = axes[i if self.subplots else 0]
            xs, ys = self._series[key].points()
            if xs:
                ax.plot(xs, ys, marker="." if len(xs) < 50 else None, label=key)
            if self.subplots:
                ax.set_ylabel(key)
        for ax in axes:
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel(self.x_key)
        # Fixed margins rather than a layout engine, which costs more than drawing the lines.
        fig.subplots_adjust(left=0.1, right=0.72 if not self.subplots else 0.97,
                            bottom=0.12 if not self.subplots else 0.3 / rows, top=0.95,
                            hspace=0.35)
        if not self.subplots and axes[0].lines:
            # Outside the axes, so it never hides the curves.
            axes[0].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                           fontsize="small")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        write_atomic(path, buffer.getvalue(), durable=False)

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self._seen, "series": {k: s.state_dict() for k, s in self._series.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._seen = int(state["seen"])
        for key, saved in state["series"].items():
            if key in self._series:
                self._series[key].load_state_dict(saved)
