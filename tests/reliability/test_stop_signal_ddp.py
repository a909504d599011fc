"""Two gloo ranks: SIGTERM to one rank during an evaluation stops both within seconds, at the
same poll, with a snapshot; the resumed run ends exactly as an uninterrupted one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gankit.training.distributed as gd
from gankit.training.checkpoint import list_snapshots, load_state

WORKER = Path(__file__).with_name("stop_ddp_worker.py")
SRC = Path(gd.__file__).parents[2]
DISTRIBUTED = Path(__file__).parents[1] / "distributed"


def _launch(scenario: str, out: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k not in gd._TORCHRUN_VARS}
    # the worker imports its PairUpdater from tests/distributed/ddp_worker.py
    env.update(PYTHONPATH=os.pathsep.join([str(SRC), str(DISTRIBUTED)]), OMP_NUM_THREADS="1")
    code = ("import sys; from gankit.cli.launch import launch; "
            f"sys.exit(launch([{scenario!r}, {str(out)!r}], 2, script={str(WORKER)!r}))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=300,
                          capture_output=True, text=True)
    return proc, time.time()


@pytest.mark.multiprocess
def test_sigterm_to_one_rank_during_evaluation_stops_both_and_resumes_exactly(
        tmp_path: Path) -> None:
    ref, _ = _launch("reference", tmp_path)
    assert ref.returncode == 0, ref.stderr
    stopped, ended = _launch("stop", tmp_path)
    sent = float((tmp_path / "sent").read_text())
    ranks = [torch.load(tmp_path / f"stop.rank{r}.pt", weights_only=True) for r in (0, 1)]
    # Each rank is done (snapshot written, process group left) within 5 s of the signal;
    # torchrun's agent then needs a moment more to notice and to exit.
    for r, s in enumerate(ranks):
        assert s["ended"] - sent < 5.0, f"rank {r}: {s['ended'] - sent:.1f} s after SIGTERM"
    assert ended - sent < 15.0, stopped.stderr
    # Both ranks abandoned the first evaluation (iteration 3) and exited 128 + SIGTERM.
    assert [(s["reason"], s["signal"], s["iteration"]) for s in ranks] == [("signal", 15, 3)] * 2
    assert stopped.returncode != 0
    state = load_state(list_snapshots(tmp_path / "stop")[-1])
    assert state["updater"]["iteration"] == 3 and state["pending"]["name"] == "Evaluator"
    resumed, _ = _launch("resume", tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    for r in (0, 1):
        want = torch.load(tmp_path / f"reference.rank{r}.pt", weights_only=True)
        got = torch.load(tmp_path / f"resume.rank{r}.pt", weights_only=True)
        assert got["iteration"] == want["iteration"] == 9
        assert torch.equal(got["params"], want["params"])
