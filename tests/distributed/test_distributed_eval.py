"""GANEvaluator over two gloo processes scores exactly what one process scores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from eval_worker import N_REAL, N, evaluate

import gankit.training.distributed as gd

WORKER = Path(__file__).with_name("eval_worker.py")
SRC = Path(gd.__file__).parents[2]


@pytest.mark.multiprocess
def test_two_process_evaluation_equals_one_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in gd._TORCHRUN_VARS}
    env.update(PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    code = ("import sys; from gankit.cli.launch import launch; "
            f"sys.exit(launch([{str(tmp_path)!r}], 2, script={str(WORKER)!r}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, timeout=300,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    two = torch.load(tmp_path / "result.pt", weights_only=False)
    one = evaluate(tmp_path / "single")
    assert set(two["scores"]) == set(one["scores"]) >= {"fid", "kid", "precision", "recall",
                                                        "modes", "gen/loss"}
    for key, value in one["scores"].items():
        assert two["scores"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert one["scores"]["fid"] > 0.01  # an untrained generator: the scores are not trivial
    assert two["n_real"] == one["n_real"] == N_REAL
    assert torch.allclose(two["mu"], one["mu"], atol=1e-9)
    assert torch.allclose(two["sigma"], one["sigma"], atol=1e-9)
    assert two["protocol"] == one["protocol"] and one["protocol"].n_generated == N


def test_one_process_shares_are_the_whole_and_match_generate() -> None:
    from gankit.extensions.gan_evaluator import _share
    from gankit.gan.sampling import generate
    from gankit.models import MLPGenerator

    torch.manual_seed(0)
    gen = MLPGenerator(2, 2, 16)
    assert _share(10) == (0, 10)
    whole = generate(gen, 2500, seed=4)
    # three shares across generate's batches of 1000 give generate's own samples
    parts = [generate(gen, 2500, seed=4, part=(lo, hi))
             for lo, hi in ((0, 700), (700, 1900), (1900, 2500))]
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6)
