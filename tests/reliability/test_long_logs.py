"""PlotReport's cost does not grow with the run: bounded series, read incrementally."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gankit.extensions import LogReport, PlotReport


class _Trainer(SimpleNamespace):
    def get_extension(self, name: str) -> Any:
        return self.extensions[name]


def _trainer(tmp_path, n: int) -> _Trainer:
    log = LogReport(filename=None)
    log.log = [{"iteration": float(i + 1), "loss": float(i % 10), "val/fid": 100.0 - i / 10}
               for i in range(n)]
    return _Trainer(out=tmp_path, is_main_process=True, extensions={"LogReport": log})


def test_series_stay_bounded_and_keep_the_curve(tmp_path) -> None:
    trainer = _trainer(tmp_path, 10_000)
    plot = PlotReport(["loss", "val/fid"], max_points=50)
    plot(trainer)
    xs, ys = plot._series["loss"].points()
    assert 25 <= len(xs) <= 51
    assert xs == sorted(xs) and xs[0] < 200 and xs[-1] > 9_800
    # Means of neighbouring entries: the 0..9 saw-tooth averages to 4.5.
    assert sum(ys) / len(ys) == pytest.approx(4.5, abs=0.2)
    _, fid_y = plot._series["val/fid"].points()
    assert fid_y[0] > fid_y[-1]  # the trend survives downsampling
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_each_call_reads_only_new_entries_and_state_is_bounded(tmp_path) -> None:
    trainer = _trainer(tmp_path, 1_000)
    plot = PlotReport(["loss"], max_points=20)
    plot(trainer)
    log = trainer.extensions["LogReport"].log
    seen = []
    real_add = plot._series["loss"].add
    plot._series["loss"].add = lambda x, y: (seen.append(x), real_add(x, y))
    log.append({"iteration": 1001.0, "loss": 1.0})
    plot(trainer)
    assert seen == [1001.0]
    state = plot.state_dict()
    assert state["seen"] == 1001 and len(state["series"]["loss"]["xs"]) <= 21
    other = PlotReport(["loss"], max_points=20)
    other.load_state_dict(state)
    assert other._series["loss"].points() == plot._series["loss"].points()


def test_metrics_panels_skip_keys_never_logged(tmp_path) -> None:
    trainer = _trainer(tmp_path, 30)
    plot = PlotReport(["val/fid", "val/precision"], filename="metrics.png", subplots=True)
    plot(trainer)
    assert (tmp_path / "metrics.png").read_bytes().startswith(b"\x89PNG")
