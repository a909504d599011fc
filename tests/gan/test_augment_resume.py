"""ADA's p, LeCam's anchors and the augmentation RNG continue bitwise after a resume."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from testsupport import assert_bitwise_equal, differing, load_module, run_script

SCRIPT = Path(__file__).with_name("augment_resume_script.py")
N = 14  # mid-epoch (9 batches) and mid-ADA-interval (14 % 4 == 2)


script = load_module(SCRIPT, "gankit_augment_resume_script")


def test_resumed_run_continues_ada_p_and_lecam_bitwise(tmp_path: Path) -> None:
    straight_dir, split_dir = tmp_path / "straight", tmp_path / "split"
    script.run(straight_dir, 2 * N)
    first = script.run(split_dir, N)
    p_mid = first.updater.augment.p.item()
    done = run_script(SCRIPT, str(split_dir), str(2 * N), "--resume")
    assert done.returncode == 0, done.stderr[-3000:]

    straight = torch.load(straight_dir / "final.pt", weights_only=True)
    resumed = torch.load(split_dir / "final.pt", weights_only=True)
    assert_bitwise_equal(resumed, straight)
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
