"""LogReport, PrintReport, ProgressBar and PlotReport."""

from __future__ import annotations

import builtins
import gc
import io
import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from matplotlib.figure import Figure
from PIL import Image

import gankit
from gankit.extensions import LogReport, PlotReport, PrintReport, ProgressBar
from gankit.extensions.log_report import read_log
from gankit.training import PRIORITY_READER, PRIORITY_WRITER


def report_iteration(trainer: gankit.Trainer) -> None:
    """Reports the iteration number itself, so interval means are known exactly."""
    it = trainer.updater.iteration
    gankit.report({"it": float(it), "half": it / 2})
    if it % 2 == 0:
        gankit.report({"even": float(it)})


def test_log_report_means_over_each_interval(make_trainer):
    trainer = make_trainer(stop=(10, "iteration"), n_batches=4)
    trainer.extend(report_iteration, name="rep", priority=PRIORITY_WRITER)
    trainer.extend(LogReport(trigger=(3, "iteration")))
    trainer.run()
    log = trainer.get_extension("LogReport").log
    assert [(e["iteration"], e["epoch"]) for e in log] == [(3, 0), (6, 1), (9, 2)]
    assert [e["it"] for e in log] == [2.0, 5.0, 8.0]
    assert [e["half"] for e in log] == [1.0, 2.5, 4.0]
    assert [e["even"] for e in log] == [2.0, 5.0, 8.0]  # (2), (4+6)/2, (8)
    assert all(e["loss"] > 0 for e in log)
    assert [e["elapsed_time"] for e in log] == sorted(e["elapsed_time"] for e in log)


def test_log_report_keys_filter(make_trainer):
    trainer = make_trainer(stop=(4, "iteration"))
    trainer.extend(report_iteration, name="rep", priority=PRIORITY_WRITER)
    trainer.extend(LogReport(keys=["it"], trigger=(2, "iteration"), filename=None))
    trainer.run()
    log = trainer.get_extension("LogReport").log
    assert [set(e) for e in log] == [{"it", "epoch", "iteration", "elapsed_time"}] * 2
    assert not (trainer.out / "log.json").exists()


def test_log_json_is_appended_one_line_per_entry(make_trainer, monkeypatch):
    trainer = make_trainer(stop=(9, "iteration"))
    trainer.extend(report_iteration, name="rep", priority=PRIORITY_WRITER)
    trainer.extend(LogReport(trigger=(2, "iteration")))
    path = trainer.out / "log.json"
    lengths = []

    def read(t: gankit.Trainer) -> None:
        lengths.append(len(read_log(path)) if path.exists() else 0)

    trainer.extend(read, priority=PRIORITY_READER)
    modes: list[str] = []
    real_open = builtins.open

    def spy_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if Path(str(file)).name == "log.json" and any(c in mode for c in "wax+"):
            modes.append(mode)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    trainer.run()
    monkeypatch.undo()
    assert lengths == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert read_log(path) == trainer.get_extension("LogReport").log
    assert modes == ["a"] * 4  # appended, never rewritten
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == trainer.get_extension("LogReport").log
    assert [p.name for p in trainer.out.iterdir()] == ["log.json"]


def test_a_resume_trims_entries_written_after_the_snapshot_and_a_torn_line(make_trainer):
    trainer = make_trainer(stop=(4, "iteration"))
    trainer.extend(report_iteration, name="rep", priority=PRIORITY_WRITER)
    trainer.extend(LogReport(trigger=(2, "iteration")))
    trainer.run()
    state = trainer.state_dict()
    assert state["extensions"]["LogReport"]["extension"]["entries"] == 2
    assert "log" not in state["extensions"]["LogReport"]["extension"]  # bounded
    path = trainer.out / "log.json"
    with open(path, "a") as f:  # what a killed run appended after its snapshot
        f.write(json.dumps({"iteration": 6, "epoch": 1}) + "\n" + '{"iteration": 8, "ep')
    resumed = make_trainer(stop=(6, "iteration"))
    resumed.out = trainer.out
    resumed.extend(report_iteration, name="rep", priority=PRIORITY_WRITER)
    resumed.extend(LogReport(trigger=(2, "iteration")))
    resumed.load_state_dict(state)
    resumed.run()
    assert [e["iteration"] for e in read_log(path)] == [2, 4, 6]
    assert read_log(path) == resumed.get_extension("LogReport").log
    assert path.read_text().endswith("}\n")


def test_a_fresh_run_empties_an_old_log(make_trainer):
    trainer = make_trainer(stop=(2, "iteration"))
    trainer.out.mkdir(parents=True, exist_ok=True)
    (trainer.out / "log.json").write_text('{"iteration": 99}\n')
    trainer.extend(LogReport(trigger=(2, "iteration")))
    trainer.run()
    assert [e["iteration"] for e in read_log(trainer.out / "log.json")] == [2]


def test_log_report_state_round_trip(make_trainer):
    trainer = make_trainer(stop=(5, "iteration"))
    trainer.extend(report_iteration, name="rep", priority=PRIORITY_WRITER)
    trainer.extend(LogReport(trigger=(2, "iteration"), filename=None))
    trainer.run()
    state = trainer.get_extension("LogReport").state_dict()
    assert len(state["log"]) == 2 and state["summary"]["counts"]["it"] == 1
    other = LogReport()
    other.load_state_dict(state)
    assert other.log == state["log"] and other.log is not state["log"]


class Values(gankit.Extension):
    """Reports chosen values at each iteration: wide, negative and tiny numbers."""

    priority = PRIORITY_WRITER

    def __init__(self, rows: list[dict[str, float]]) -> None:
        self.rows = rows

    def __call__(self, trainer: gankit.Trainer) -> None:
        gankit.report(self.rows[trainer.updater.iteration - 1])


ROWS = [
    {"gen/loss": -0.000123456789, "dis/loss": 123456789.0, "a_rather_long_key_name": 1.5},
    {"gen/loss": -1.23456e-05, "dis/loss": 2.0, "a_rather_long_key_name": -3.25e-300},
    {"gen/loss": 0.5, "dis/loss": -7.5e20},
]
ENTRIES = ["epoch", "iteration", "gen/loss", "dis/loss", "a_rather_long_key_name"]


def test_print_report_table_is_aligned_with_its_header(make_trainer):
    trainer = make_trainer(stop=(3, "iteration"), n_batches=2)
    trainer.extend(Values(ROWS))
    trainer.extend(LogReport(trigger=(1, "iteration"), filename=None))
    out = io.StringIO()
    trainer.extend(PrintReport(ENTRIES, out=out))
    trainer.run()
    header, *lines = out.getvalue().splitlines()
    rows = [line.ljust(len(header)) for line in lines]  # the last cells may be empty
    assert len(rows) == 3
    starts = [header.index(e) for e in ENTRIES]
    assert starts == sorted(starts)
    for row, expected in zip(rows, ROWS, strict=True):
        # Every cell starts at its header's column, after at least one space.
        cells = [row[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
        for start in starts[1:]:
            assert row[start - 1] == " ", (row, header)
        values = dict(zip(ENTRIES, cells, strict=True))
        for key in ("gen/loss", "dis/loss", "a_rather_long_key_name"):
            if key in expected:
                assert float(values[key]) == pytest.approx(expected[key], rel=1e-5)
            else:
                assert values[key] == ""
        assert values["iteration"] == str(rows.index(row) + 1)
        assert values["epoch"] in {"0", "1"}


def test_print_report_does_not_reprint_old_entries_after_a_resume(make_trainer):
    trainer = make_trainer(stop=(4, "iteration"))
    log = LogReport(trigger=(1, "iteration"), filename=None)
    log.log = [{"iteration": 1.0, "epoch": 0.0}] * 3  # as if loaded from a snapshot
    trainer.extend(log)
    out = io.StringIO()
    trainer.extend(PrintReport(["iteration"], out=out))
    trainer.updater.iteration = 3
    trainer.run()
    assert out.getvalue().splitlines() == ["iteration", "4"]


def test_print_report_needs_a_log_report(make_trainer):
    trainer = make_trainer(stop=(1, "iteration"))
    trainer.extend(lambda t: None, name="LogReport")
    trainer.extend(PrintReport(["iteration"], out=io.StringIO()))
    with pytest.raises(TypeError, match=r"extension 'LogReport' is not a LogReport"):
        trainer.run()


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "force", "shows"),
    [(io.StringIO, False, False), (FakeTTY, False, True), (io.StringIO, True, True)],
)
def test_progress_bar_is_silent_unless_out_is_a_terminal(make_trainer, stream, force, shows):
    trainer = make_trainer(stop=(2, "epoch"), n_batches=5)
    out = stream()
    trainer.extend(ProgressBar(update_interval=3, out=out, force=force))
    trainer.run()
    text = out.getvalue()
    if shows:
        assert "10/10" in text and "it" in text
    else:
        assert text == ""


def test_progress_bar_counts_from_the_resumed_iteration(make_trainer):
    trainer = make_trainer(stop=(8, "iteration"))
    trainer.updater.iteration = 5
    out = FakeTTY()
    trainer.extend(ProgressBar(update_interval=1, out=out))
    trainer.run()
    assert "8/8" in out.getvalue()
    assert "5/8" in out.getvalue()


def _figures() -> int:
    gc.collect()
    return sum(issubclass(type(o), Figure) for o in gc.get_objects())


def test_plot_report_leaves_no_figure_and_writes_a_png(make_trainer):
    import matplotlib.pyplot as plt

    trainer = make_trainer(stop=(20, "iteration"))
    trainer.extend(report_iteration, name="rep", priority=PRIORITY_WRITER)
    trainer.extend(LogReport(trigger=(1, "iteration"), filename=None))
    trainer.extend(PlotReport(["it", "loss", "missing"], trigger=(5, "iteration")))
    before = _figures()
    trainer.run()  # 4 plots (each costs ~0.2 s here)
    trainer.stop_trigger = gankit.training.StopTrigger(40, "iteration")
    trainer.run()  # 4 more
    assert plt.get_fignums() == []
    assert _figures() == before
    data = (trainer.out / "loss.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (700, 400)
    assert [p.name for p in trainer.out.iterdir()] == ["loss.png"]
    assert matplotlib.get_backend()  # pyplot was imported here only to count figures
