"""ADA's p, LeCam's anchors and the augmentation RNG continue bitwise after a resume."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

SCRIPT = Path(__file__).with_name("augment_resume_script.py")
SRC = Path(__file__).resolve().parents[2] / "src"
N = 14  # mid-epoch (9 batches) and mid-ADA-interval (14 % 4 == 2)


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("gankit_augment_resume_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}/{k}"))
        return out
    return {prefix: tree}


def differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    fa, fb = flatten(a), flatten(b)
    assert fa.keys() == fb.keys()
    return [k for k in fa if not (torch.equal(fa[k], fb[k]) if isinstance(fa[k], torch.Tensor)
                                  else fa[k] == fb[k])]


def test_resumed_run_continues_ada_p_and_lecam_bitwise(tmp_path: Path) -> None:
    straight_dir, split_dir = tmp_path / "straight", tmp_path / "split"
    script.run(straight_dir, 2 * N)
    first = script.run(split_dir, N)
    p_mid = first.updater.augment.p.item()
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(SCRIPT), str(split_dir), str(2 * N), "--resume"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    straight = torch.load(straight_dir / "final.pt", weights_only=True)
    resumed = torch.load(split_dir / "final.pt", weights_only=True)
    assert differing(resumed, straight) == []
    log_straight = json.loads((straight_dir / "final_log.json").read_text())
    log_resumed = json.loads((split_dir / "final_log.json").read_text())
    assert log_resumed == log_straight  # LogReport keeps the first part in the snapshot
    assert [e["iteration"] for e in log_resumed] == list(range(1, 2 * N + 1))
    ps = [e["aug/p"] for e in log_straight]
    assert len(set(ps)) > 3 and 0 < p_mid < 1  # p really moved, and was mid-way at the stop
    assert straight["augment"]["steps"] == (2 * N) % 4


def test_the_comparison_is_sharp_a_resume_that_forgets_p_differs(tmp_path: Path) -> None:
    straight_dir, split_dir = tmp_path / "straight", tmp_path / "split"
    script.run(straight_dir, 2 * N)
    script.run(split_dir, N)
    trainer = script.build(split_dir, 2 * N)
    trainer.resume(split_dir)
    trainer.updater.augment.load_state_dict(script.ADA(p=0.5).state_dict())  # p lost
    trainer.run()
    assert "/augment/p" in differing(trainer.updater.state_dict(),
                                      torch.load(straight_dir / "final.pt", weights_only=True))
