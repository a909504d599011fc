"""Every write interrupted at every step: a run killed at each file-system operation of each of
its atomic writes (snapshots, plots, config.json) leaves only whole files under the
names readers trust, and resumes to bitwise the end state of an uninterrupted run.

``checkpoint.fault_hook`` names each operation just before it happens; a forked child trains
and SIGKILLs itself at the chosen one, then this process inspects what it left and resumes.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gankit.cli.runs import saved_config
from gankit.extensions import LogReport, PlotReport, Snapshot
from gankit.training import Trainer, checkpoint
from gankit.training.checkpoint import list_snapshots, load_state, remove_stale_files
from testsupport import differing

STOP = 6
DURABLE_STEPS = {"unlink", "open", "write", "fsync", "replace", "fsync_dir"}
FAST_STEPS = {"open", "write", "replace"}  # write_atomic(durable=False): plots


def _killed_at(point: int, work: Callable[[], None]) -> bool:
    """Run ``work`` in a forked child that SIGKILLs itself before file operation ``point``
    (1-based, counted over all writes). True when the child was killed (False: ``work``
    finished with fewer operations)."""
    pid = os.fork()
    if pid == 0:
        count = 0

        def hook(step: str, path: Path) -> None:
            nonlocal count
            count += 1
            if count == point:
                os.kill(os.getpid(), signal.SIGKILL)

        checkpoint.fault_hook = hook
        try:
            work()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)


def _points(work: Callable[[], None]) -> list[tuple[str, str]]:
    """The (step, file name) of every file operation ``work`` performs, in order."""
    seen: list[tuple[str, str]] = []
    checkpoint.fault_hook = lambda step, path: seen.append((step, path.name))
    try:
        work()
    finally:
        checkpoint.fault_hook = None
    return seen


def _train(make_trainer: Callable[..., Trainer], out: Path) -> Trainer:
    trainer = make_trainer(stop=(STOP, "iteration"), out=out)
    trainer.extend(LogReport(trigger=(1, "iteration")))
    trainer.extend(PlotReport(["loss"], trigger=(3, "iteration")))
    trainer.extend(Snapshot(n_retains=2), trigger=(2, "iteration"))
    remove_stale_files(out)  # as gankit train does before it resumes
    if list_snapshots(out):
        trainer.resume(out)
    trainer.run()
    return trainer


def _end_state(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state = load_state(out / f"snapshot_iter_{STOP}.pt")
    log = [json.loads(line) for line in (out / "log.json").read_text().splitlines()]
    # Wall-clock values differ between runs: the elapsed time and the evaluator's phase times.
    return state["updater"]["models"], [
        {k: v for k, v in e.items()
         if k != "elapsed_time" and not k.startswith("val_time/")} for e in log]


def test_a_run_killed_at_every_step_of_every_write_resumes_bitwise(
        make_trainer: Callable[..., Trainer], tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    points = _points(lambda: _train(make_trainer, reference))
    snapshot_points = [p for p in points if p[1].startswith("snapshot_iter_")]
    assert {s for s, _ in snapshot_points} == DURABLE_STEPS
    assert len(snapshot_points) == 3 * len(DURABLE_STEPS)  # iterations 2, 4, 6
    plot_points = [p for p in points if p[1] == "loss.png"]
    assert {s for s, _ in plot_points} == FAST_STEPS
    assert len(plot_points) == 2 * len(FAST_STEPS)  # iterations 3 and 6
    ref_models, ref_log = _end_state(reference)

    for point in range(1, len(points) + 1):
        out = tmp_path / f"killed_at_{point}"
        assert _killed_at(point, lambda out=out: _train(make_trainer, out)), point
        # Under the names readers trust, every file is whole (the old one or the new one).
        for snap in list_snapshots(out):
            load_state(snap)
        if (out / "loss.png").exists():
            with Image.open(out / "loss.png") as png:
                png.load()  # decodes whole
        _train(make_trainer, out)  # the same run again: resumes, or starts if nothing was kept
        models, log = _end_state(out)
        assert log == ref_log, point
        assert differing(models, ref_models) == [], point
    assert len(points) == len(snapshot_points) + len(plot_points)


def test_config_json_killed_at_every_step_is_read_whole(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    old = {"recipe": "dcgan", "seed": 1, "out": str(run)}
    new = {**old, "seed": 2}

    def write() -> None:
        checkpoint.write_atomic(run / "config.json", json.dumps(new, indent=1).encode())

    points = _points(write)
    checkpoint.write_atomic(run / "config.json", json.dumps(old).encode())
    assert {s for s, _ in points} == DURABLE_STEPS - {"unlink"}
    for point in range(1, len(points) + 1):
        checkpoint.write_atomic(run / "config.json", json.dumps(old).encode())
        assert _killed_at(point, write)
        assert saved_config(run).run.seed in (1, 2)  # old or new, never a torn file
        remove_stale_files(run)
        assert sorted(p.name for p in run.iterdir()) == ["config.json"]
        write()  # the same command again
        assert saved_config(run).run.seed == 2
    assert not _killed_at(len(points) + 1, write)  # every point was inside the write


@pytest.fixture(autouse=True)
def _no_hook_left() -> Any:
    yield
    checkpoint.fault_hook = None
