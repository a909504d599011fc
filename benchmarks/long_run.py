"""Cost of logging and plotting as a run grows: the old whole-file rewrite vs the append-only log.

For logs of 100, 1,000 and 10,000 entries (17 keys each, as a GAN run with an evaluator
logs), it times writing one more entry and drawing one plot, with the old algorithm (the
whole log re-serialised and rewritten atomically per entry; every point redrawn) measured
in this same run as the baseline, and LogReport / PlotReport as they are now. It also
gives the bytes written to disk over a 10,000-entry run by each.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/long_run.py
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gankit.extensions import LogReport, PlotReport
from gankit.training.checkpoint import write_atomic

KEYS = [f"key{i}/loss" for i in range(14)]  # + epoch, iteration, elapsed_time = 17
PLOT_KEYS = KEYS[:4]
SIZES = (100, 1_000, 10_000)
REPEATS = 5


def entry(i: int) -> dict[str, float]:
    e = {k: 0.5 + 0.001 * ((i * 7 + j) % 97) for j, k in enumerate(KEYS)}
    e.update(epoch=i // 10, iteration=(i + 1) * 100, elapsed_time=i * 1.7)
    return e


def old_write(log: list[dict[str, float]], path: Path) -> int:
    """What LogReport did: the whole log, rewritten atomically, at every entry."""
    text = "[\n" + ",\n".join(json.dumps(e) for e in log) + "\n]\n"
    data = text.encode()
    write_atomic(path, data, durable=False)
    return len(data)


def old_plot(log: list[dict[str, float]], path: Path) -> None:
    """What PlotReport did: every entry of every key drawn at every call."""
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key in PLOT_KEYS:
        points = [(e["iteration"], e[key]) for e in log if key in e]
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, label=key)
    ax.legend(loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue(), durable=False)


class _Trainer(SimpleNamespace):
    def get_extension(self, name: str) -> Any:
        return self.extensions[name]


def new_setup(out: Path, n: int) -> tuple[_Trainer, LogReport, PlotReport]:
    log = LogReport(trigger=(1, "iteration"))
    plot = PlotReport(PLOT_KEYS, trigger=(1, "iteration"))
    updater = SimpleNamespace(iteration=0, epoch=0, is_new_epoch=False)
    trainer = _Trainer(out=out, observation={}, updater=updater, elapsed_time=0.0,
                       is_main_process=True, extensions={"LogReport": log})
    log.initialize(trainer)
    for i in range(n):
        append_new(trainer, log, i)
    plot(trainer)  # takes in the log so far (and draws it once, outside the clock)
    return trainer, log, plot


def append_new(trainer: _Trainer, log: LogReport, i: int) -> None:
    e = entry(i)
    trainer.updater.iteration = int(e["iteration"])
    trainer.updater.epoch = int(e["epoch"])
    trainer.observation = {k: e[k] for k in KEYS}
    log(trainer)


def per_call(fn: Any, repeats: int = REPEATS) -> float:
    """Median milliseconds per call (the machine is shared: the median ignores a stall)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1000


def measure(n: int, folder: Path) -> tuple[int, float, float, float, float]:
    """(n, old entry ms, new entry ms, old plot ms, new plot ms) with ``n`` entries logged."""
    folder.mkdir()
    old_log = [entry(i) for i in range(n)]
    old_entry_ms = per_call(lambda: old_write(old_log, folder / "old_log.json"))
    old_plot_ms = per_call(lambda: old_plot(old_log, folder / "old_loss.png"))
    trainer, log, plot = new_setup(folder, n)
    counter = iter(range(n, n + 200))
    new_entry_ms = per_call(lambda: append_new(trainer, log, next(counter)), 200)
    new_plot_ms = per_call(lambda: plot(trainer))
    return n, old_entry_ms, new_entry_ms, old_plot_ms, new_plot_ms


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(n, Path(tmp) / str(n)) for n in SIZES]
        # Bytes over a whole 10,000-entry run: the old rewrite writes the log once per entry.
        n = SIZES[-1]
        sizes = [len(json.dumps(entry(i))) + 2 for i in range(n)]
        old_bytes, running = 0, 3
        for s in sizes:
            running += s
            old_bytes += running
        (Path(tmp) / "bytes").mkdir()
        trainer, log, _ = new_setup(Path(tmp) / "bytes", 0)
        start = time.perf_counter()
        for i in range(n):
            append_new(trainer, log, i)
        append_total_s = time.perf_counter() - start
        new_bytes = (Path(tmp) / "bytes" / "log.json").stat().st_size

    print(f"{'entries':>8}  {'entry old ms':>12}  {'entry new ms':>12}  {'ratio':>7}  "
          f"{'plot old ms':>11}  {'plot new ms':>11}  {'ratio':>7}")
    for n, oe, ne, op, np_ in rows:
        print(f"{n:>8}  {oe:>12.3f}  {ne:>12.3f}  {oe / ne:>6.0f}x  {op:>11.1f}  {np_:>11.1f}  "
              f"{op / np_:>6.1f}x")
    print(f"bytes written for {n} entries: old {old_bytes / 1e6:.1f} MB, new "
          f"{new_bytes / 1e6:.2f} MB ({old_bytes / new_bytes:.0f}x less); "
          f"10,000 appends took {append_total_s:.2f} s in all")
    growth = rows[-1][2] / rows[0][2]
    print(f"new per-entry cost at {SIZES[-1]} vs {SIZES[0]} entries: {growth:.2f}x "
          "(flat: it does not grow with the log)")


if __name__ == "__main__":
    main()
