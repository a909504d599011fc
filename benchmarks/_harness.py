"""What every benchmark script shares: the common options, running jobs side by side, JSON out.

A script builds its parser with ``parser(description, ...)``, which adds the options that
mean the same in every script:

- ``--out DIR``: keep the runs (or other files) here; default a temporary directory
  (``out_dir`` gives the path and removes a temporary one at the end);
- ``--jobs N``: how many jobs run side by side (``run_jobs``: threads for subprocesses,
  processes for work in Python);
- ``--seeds S``: ``N`` for seeds 0 .. N-1, or a comma-separated list (``0,2`` or ``3,`` for
  seed 3 alone), read by ``parse_seeds``;
- ``--json FILE``: also write the script's figures to FILE (``write_json``).

Only the standard library is imported here, so a script can spawn children that import torch
and gankit inside their own clock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

T = TypeVar("T")
R = TypeVar("R")


def parser(description: str, *, out: bool = True, out_default: str | None = None,
           jobs: int | None = None, seeds: str | None = None,
           json_out: bool = True) -> argparse.ArgumentParser:
    """An ArgumentParser with the shared options: ``--out`` (default ``out_default``, else a
    temporary directory) and ``--json`` unless turned off, ``--jobs`` when given its default,
    ``--seeds`` when given its default (as typed)."""
    p = argparse.ArgumentParser(description=description)
    if out:
        where = out_default or "a temporary directory"
        p.add_argument("--out", default=out_default, help=f"keep the runs here (default: {where})")
    if jobs is not None:
        p.add_argument("--jobs", type=positive_int, default=jobs,
                       help=f"jobs run side by side (default {jobs})")
    if seeds is not None:
        p.add_argument("--seeds", type=parse_seeds, default=parse_seeds(seeds),
                       help=f"N for seeds 0..N-1, or a list such as 0,2 or 3, (default {seeds})")
    if json_out:
        p.add_argument("--json", default=None, metavar="FILE",
                       help="also write the figures to this JSON file")
    return p


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> [0, 1, 2]; ``"0,2"`` -> [0, 2]; ``"3,"`` -> [3]. Seeds are non-negative,
    listed once each."""
    text = text.strip()
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds {text!r}: give a count N (seeds 0..N-1) or a list such as 0,2 or 3,"
        ) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"seeds {text!r}: give at least one seed, none negative, none twice")
    return seeds


@contextlib.contextmanager
def out_dir(path: str | None) -> Iterator[Path]:
    """``path`` created if needed, or a temporary directory removed at the end."""
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def run_jobs(fn: Callable[[T], R], items: Iterable[T], jobs: int, *,
             processes: bool = False) -> Iterator[R]:
    """``fn(item)`` for every item, ``jobs`` at a time, yielded in the items' order as they
    finish. Threads suit an ``fn`` that waits on a subprocess; ``processes=True`` runs ``fn``
    (a module-level function) in worker processes, for work done in Python. The first
    failure is raised."""
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    pool_type = ProcessPoolExecutor if processes else ThreadPoolExecutor
    with pool_type(max_workers=jobs) as pool:
        yield from pool.map(fn, items)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: one thread unless set, and this checkout's
    ``src`` first on the path."""
    env = dict(os.environ, **extra)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    return env


def gankit_command(*args: str) -> list[str]:
    """``python -m gankit ARGS`` with this interpreter."""
    return [sys.executable, "-m", "gankit", *args]


def run(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a child with ``child_env()``; a failure raises with the end of its stderr."""
    kwargs.setdefault("env", child_env())
    done = subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def write_json(path: str | None, figures: Any) -> None:
    """Write ``figures`` to ``path`` as indented JSON (nothing when ``path`` is None)."""
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(figures, indent=1, default=str) + "\n")


def parse_value(text: str) -> Any:
    """``--set key=value``'s value: an int, else a float, else the text."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def mean_se(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (0 for one value)."""
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, se
