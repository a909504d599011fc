"""Every ```python block of the README and of docs/ runs exactly as shown.

Each block runs in a fresh interpreter (its own subprocess, the working directory a new
temporary folder, PYTHONPATH inherited) within a small budget of CPU time: blocks must be
quick (tiny data, few iterations; today's take 3-7 CPU seconds each, imports included). The
budget counts CPU seconds, not wall time, so a loaded machine does not fail a quick block; a
generous wall-clock limit catches a block that waits. A block that is deliberately not
runnable is fenced as something else (```text). Shell blocks are not run. The blocks run two
at a time, once per session.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CPU_BUDGET_S = 20  # CPU seconds per block
WALL_LIMIT_S = 300  # a block that sleeps or waits
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(first line number, code) of each ```python block of ``path``."""
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


BLOCKS = {f"{path.relative_to(ROOT)}:{line}": code
          for path in documents() for line, code in python_blocks(path)}


def limit_cpu() -> None:
    """In the child: SIGXCPU (then SIGKILL) past the CPU budget."""
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_BUDGET_S, CPU_BUDGET_S + 5))


def run_block(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory() as cwd:
        (Path(cwd) / "block.py").write_text(code)
        try:
            done = subprocess.run([sys.executable, "block.py"], cwd=cwd, env=env, text=True,
                                  capture_output=True, timeout=WALL_LIMIT_S,
                                  preexec_fn=limit_cpu)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, -9, "", f"over {WALL_LIMIT_S} s")
        if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            done.stderr += f"\nover the budget of {CPU_BUDGET_S} CPU seconds"
        return done


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(BLOCKS, pool.map(run_block, BLOCKS.values()), strict=True))


def test_the_readme_and_the_guide_have_python_blocks():
    assert any(k.startswith("README.md:") for k in BLOCKS)
    assert sum(k.startswith("docs/") for k in BLOCKS) >= 5


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_block_runs_as_written(block, results):
    done = results[block]
    assert done.returncode == 0, f"{block} failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"


def test_a_failing_block_is_reported():
    """The check itself can fail: a block that raises exits non-zero, one that computes past
    the budget is stopped."""
    assert run_block("raise SystemExit('broken example')").returncode != 0
    assert run_block("import gankit\nprint(gankit.__version__)").returncode == 0


def test_a_block_past_the_cpu_budget_is_stopped(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "CPU_BUDGET_S", 1)
    done = run_block("while True:\n    pass\n")
    assert done.returncode == -signal.SIGXCPU
    assert "budget of 1 CPU seconds" in done.stderr


def test_blocks_are_found_as_fenced():
    text = "a\n```python\nx = 1\n```\n```text\nnot run\n```\n```sh\nls\n```\n"
    path = Path(tempfile.mkdtemp()) / "doc.md"
    path.write_text(text)
    assert python_blocks(path) == [(3, "x = 1\n")]
