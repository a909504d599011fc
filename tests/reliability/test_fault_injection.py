"""Every write interrupted at every step: a run killed at each file-system operation of each of
its writes (snapshots, plots, sample grids, log.json's appended lines, config.json) leaves only
whole files under the names readers trust (the log: whole entries, a torn last line skipped
with a notice), and resumes to bitwise the end state of an uninterrupted run; the files
written outside a run (metrics.json, val_protocol.json, best.safetensors, archives of gankit
prepare, the classifier feature cache, the reference statistics cache) read as the old or the
new whole file, or are written again by the same call.

``checkpoint.fault_hook`` names each operation just before it happens; a forked child trains
and SIGKILLs itself at the chosen one, then this process inspects what it left and resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli.runs import saved_config
from gankit.extensions import LogReport, PlotReport, SampleGrid, Snapshot
from gankit.extensions.log_report import read_log
from gankit.training import Trainer, checkpoint
from gankit.training.checkpoint import list_snapshots, load_state, remove_stale_files
from testsupport import differing

STOP = 6
DURABLE_STEPS = {"unlink", "open", "write", "fsync", "replace", "fsync_dir"}
FAST_STEPS = {"open", "write", "replace"}  # write_atomic(durable=False): plots
APPEND_STEPS = ["open", "write"]  # append_line: a log.json entry


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


def _grid(trainer: Trainer) -> torch.Tensor:
    """Images that show the toy model's weights: a grid changes as the model trains."""
    weight = trainer.updater.models["net"][0].weight
    return torch.tanh(weight).reshape(1, 1, 1, 3).expand(4, 1, 2, 3)


def _train(make_trainer: Callable[..., Trainer], out: Path, grids: bool = False) -> Trainer:
    trainer = make_trainer(stop=(STOP, "iteration"), out=out)
    if grids:
        trainer.extend(SampleGrid(_grid, trigger=(2, "iteration"), keep=2))
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
    return state["updater"]["models"], _without_times(log)


def _without_times(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wall-clock values differ between runs: the elapsed time and the evaluator's phase
    times."""
    return [{k: v for k, v in e.items() if k != "elapsed_time" and not k.startswith("val_time/")}
            for e in log]


def test_a_run_killed_at_every_step_of_every_write_resumes_bitwise(
        make_trainer: Callable[..., Trainer], tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    points = _points(lambda: _train(make_trainer, reference))
    snapshot_points = [p for p in points if p[1].startswith("snapshot_iter_")]
    assert {s for s, _ in snapshot_points} == DURABLE_STEPS
    # iterations 2, 4, 6, and at 6 the prune of iteration 2's (2 kept)
    assert len(snapshot_points) == 3 * len(DURABLE_STEPS) + 1
    assert snapshot_points[-1] == ("unlink", "snapshot_iter_2.pt")
    plot_points = [p for p in points if p[1] == "loss.png"]
    assert {s for s, _ in plot_points} == FAST_STEPS
    assert len(plot_points) == 2 * len(FAST_STEPS)  # iterations 3 and 6
    log_points = [p for p in points if p[1] == "log.json"]
    assert [s for s, _ in log_points] == APPEND_STEPS * STOP  # an entry every iteration
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
        # The log's reader finds whole entries of the run; a torn last line is skipped with
        # a notice.
        log_file = out / "log.json"
        with warnings.catch_warnings(record=True) as notices:
            warnings.simplefilter("always")
            logged = _without_times(read_log(log_file)) if log_file.exists() else []
        assert logged == ref_log[:len(logged)], point
        torn = log_file.exists() and log_file.read_bytes()[-1:] not in (b"\n", b"")
        assert [str(n.message) for n in notices if "cut short" in str(n.message)] == (
            [f"{log_file}: skipped its last line, cut short by a killed writer; the "
             f"{len(logged)} whole entries are read."] if torn else []), point
        with warnings.catch_warnings(record=True) as notices:
            warnings.simplefilter("always")
            _train(make_trainer, out)  # the same run again: resumes, or starts if nothing was kept
        assert any("cut short by a killed writer" in str(n.message) for n in notices) == torn
        models, log = _end_state(out)
        assert log == ref_log, point
        assert differing(models, ref_models) == [], point
    assert len(points) == len(snapshot_points) + len(plot_points) + len(log_points)


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


def _interrupted_everywhere(write: Callable[[], None], reset: Callable[[], None],
                            check: Callable[[], None], done: Callable[[], None]) -> list[str]:
    """Kill ``write`` at each of its file operations in turn, each time after ``reset`` (the
    old state), then ``check`` what a reader finds, run ``write`` again and ``done`` (the new
    state). Returns the steps interrupted."""
    reset()
    steps = [step for step, _ in _points(write)]
    for point in range(1, len(steps) + 1):
        reset()
        assert _killed_at(point, write), point
        check()
        write()  # the same call again
        done()
    reset()
    assert not _killed_at(len(steps) + 1, write)  # every point was inside the write
    return steps


def test_sample_grids_killed_at_every_step_are_whole_and_written_again(
        make_trainer: Callable[..., Trainer], tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    points = _points(lambda: _train(make_trainer, reference, grids=True))
    grid_points = [p for p in points if p[1].startswith("iter_")]
    # iterations 2, 4, 6, and at 6 the prune of iteration 2's (keep=2)
    assert grid_points == [(s, f"iter_000000{i}.png") for i in (2, 4, 6) for s, _ in _ORDER] + [
        ("unlink", "iter_0000002.png")]
    assert len(points) == 19 + 6 + 12 + len(grid_points)  # snapshots, plots, log, grids
    grids = sorted(p.name for p in (reference / "samples").iterdir())
    assert grids == ["iter_0000004.png", "iter_0000006.png"]  # keep=2
    wanted = {name: (reference / "samples" / name).read_bytes() for name in grids}
    for point in [i + 1 for i, p in enumerate(points) if p in grid_points]:
        out = tmp_path / f"killed_at_{point}"
        assert _killed_at(point, lambda out=out: _train(make_trainer, out, grids=True)), point
        for png in (out / "samples").glob("iter_*.png"):
            with Image.open(png) as image:
                image.load()  # decodes whole
        _train(make_trainer, out, grids=True)
        assert {p.name: p.read_bytes() for p in (out / "samples").iterdir()} == wanted, point


_ORDER = [("open", ""), ("write", ""), ("fsync", ""), ("replace", ""), ("fsync_dir", "")]
WRITE_STEPS = [s for s, _ in _ORDER]  # write_atomic, durable


def test_metrics_and_protocol_json_killed_at_every_step_read_whole(tmp_path: Path) -> None:
    from gankit.cli.eval import _merge_record, _read_records
    from gankit.extensions.gan_evaluator import GANEvaluator

    run = tmp_path / "run"
    run.mkdir()
    metrics = run / "metrics.json"
    old = {"iteration": 10, "protocol": {"seed": 0}, "metrics": {"fid": 3.0}}
    new = {"iteration": 20, "protocol": {"seed": 0}, "metrics": {"fid": 2.0}}

    def write_metrics() -> None:  # as gankit eval adds a record
        records = _merge_record(_read_records(metrics), new)
        checkpoint.write_atomic(metrics, (json.dumps({"records": records}) + "\n").encode())

    def reset_metrics() -> None:
        checkpoint.write_atomic(metrics, json.dumps({"records": [old]}).encode())
        remove_stale_files(run)

    def check_metrics() -> None:
        assert _read_records(metrics) in ([old], [old, new])  # never a torn file

    def done_metrics() -> None:
        assert _read_records(metrics) == [old, new]
        remove_stale_files(run)
        assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]

    steps = _interrupted_everywhere(write_metrics, reset_metrics, check_metrics, done_metrics)
    assert steps == WRITE_STEPS

    protocol = run / "val_protocol.json"
    evaluator = SimpleNamespace(prefix="val", protocol=SimpleNamespace(as_dict=lambda: {"n": 2}))
    trainer = SimpleNamespace(out=run, is_main_process=True)

    def write_protocol() -> None:  # as GANEvaluator records the protocol of its scores
        GANEvaluator._write_protocol(evaluator, trainer, {"fid": 1.0})  # type: ignore[arg-type]

    def reset_protocol() -> None:
        checkpoint.write_atomic(protocol, json.dumps({"keys": [], "protocol": {"n": 1}}).encode())
        remove_stale_files(run)

    def read_protocol(*allowed: dict[str, Any]) -> None:  # as gankit export reads it
        assert json.loads(protocol.read_text())["protocol"] in allowed

    steps = _interrupted_everywhere(write_protocol, reset_protocol,
                                    lambda: read_protocol({"n": 1}, {"n": 2}),
                                    lambda: read_protocol({"n": 2}))
    assert steps == ["open", "write", "replace"]  # durable=False


def test_best_model_killed_at_every_step_loads_old_or_new(tmp_path: Path) -> None:
    from gankit.export import GeneratorInfo, GeneratorSpec, load_generator, save_generator

    spec = GeneratorSpec("dcgan", (2,), 4, 8, norm="none")
    info = GeneratorInfo(spec, {"kind": "points", "low": -1.0, "high": 1.0})
    path = tmp_path / "best.safetensors"
    gens = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        gens.append(spec.build())
    old, new = ({k: v.clone() for k, v in g.state_dict().items()} for g in gens)
    assert differing(old, new) != []

    def loaded() -> dict[str, torch.Tensor]:
        return load_generator(path).state_dict()

    def check() -> None:
        got = loaded()
        assert differing(got, old) == [] or differing(got, new) == []

    def done() -> None:
        assert differing(loaded(), new) == []
        remove_stale_files(tmp_path)
        assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]

    steps = _interrupted_everywhere(lambda: save_generator(path, gens[1], info),
                                    lambda: save_generator(path, gens[0], info), check, done)
    assert steps == WRITE_STEPS
    assert differing(loaded(), new) == []


def _image_folder(root: Path, n: int = 12) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = root / "ab"[i % 2]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(sub / f"{i}.png")


@pytest.mark.parametrize("fmt", ["shards", "zip"])
def test_an_archive_killed_at_every_step_is_absent_or_whole(tmp_path: Path, fmt: str) -> None:
    from gankit.data import load_dataset
    from gankit.data.archive import prepare_folder

    src = tmp_path / "src"
    _image_folder(src)
    out = tmp_path / ("a.zip" if fmt == "zip" else "a")
    want = load_dataset(f"folder:{src}", "all", mode="memory").x

    def write() -> None:
        if not out.exists():  # gankit prepare refuses an existing archive
            prepare_folder(src, out, fmt=fmt, progress=False)

    def reset() -> None:
        shutil.rmtree(out) if out.is_dir() else out.unlink(missing_ok=True)

    def check() -> None:
        if out.exists():
            assert torch.equal(load_dataset(f"{fmt}:{out}", "all").load().x, want)

    def done() -> None:
        check()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["src", out.name])

    steps = _interrupted_everywhere(write, reset, check, done)
    assert steps == WRITE_STEPS


def test_the_classifier_cache_killed_at_every_step_loads_or_retrains(tmp_path: Path) -> None:
    from gankit.metrics.features import cached_classifier

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8, generator=g), torch.arange(16) % 2
    cache = tmp_path / "cache"
    kwargs: dict[str, Any] = {"n_classes": 2, "cache_dir": cache, "epochs": 1, "width": 4,
                              "feature_dim": 8, "max_steps": 2}
    reference, _ = cached_classifier(x, y, x, y, **kwargs)
    want = reference.features(x)

    def check() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unreadable entry would be warned about
            model, _ = cached_classifier(x, y, x, y, **kwargs)
        assert torch.equal(model.features(x), want)

    def reset() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    def done() -> None:
        check()
        entries = [p.name for p in cache.iterdir() if not p.name.startswith(".")]
        assert len(entries) == 1 and entries[0].startswith("classifier-")

    steps = _interrupted_everywhere(lambda: cached_classifier(x, y, x, y, **kwargs), reset,
                                    check, done)
    assert steps == WRITE_STEPS


def test_the_reference_statistics_cache_killed_at_every_step_loads_or_recomputes(
        tmp_path: Path) -> None:
    from gankit.metrics.stats import reference_stats

    x = torch.rand(24, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    calls = []

    def features(batch: torch.Tensor) -> torch.Tensor:
        calls.append(len(batch))
        return batch.flatten(1)[:, :6] * 2.0

    cache = tmp_path / "cache"
    kwargs: dict[str, Any] = {"split": "train", "feature_hash": "toy-v1", "cache_dir": cache}
    want = reference_stats(x, features, **kwargs)

    def check() -> None:
        calls.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unreadable entry would be warned about
            got = reference_stats(x, features, **kwargs)
        assert torch.equal(got.mu, want.mu) and torch.equal(got.sigma, want.sigma)
        assert got.features is not None and want.features is not None
        assert torch.equal(got.features, want.features) and got.n == want.n

    def reset() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    def done() -> None:
        check()
        assert calls == []  # read from the cache, not recomputed
        entries = [p.name for p in cache.iterdir() if not p.name.startswith(".")]
        assert len(entries) == 1 and entries[0].startswith("stats-")

    steps = _interrupted_everywhere(lambda: reference_stats(x, features, **kwargs), reset,
                                    check, done)
    assert steps == WRITE_STEPS


@pytest.fixture(autouse=True)
def _no_hook_left() -> Any:
    yield
    checkpoint.fault_hook = None
