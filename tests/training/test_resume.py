"""Exact resume: N iterations + snapshot + a new process that resumes to 2N equals 2N straight.

The run (resume_script.py) consumes torch, numpy and python random streams every step, uses
dropout, Adam, a step LR schedule, a stateful best-value trigger and an epoch-seeded shuffle;
resume points are mid-epoch and mid-log-interval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from testsupport import assert_bitwise_equal, differing, load_module, run_script

SCRIPT = Path(__file__).with_name("resume_script.py")


script = load_module(SCRIPT, "gankit_resume_script")


def without_time(log: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in entry.items() if k != "elapsed_time"} for entry in log]


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[Any]]:
    """The uninterrupted run of 2N = 26 iterations (5 batches per epoch, log every 4)."""
    out = tmp_path_factory.mktemp("straight")
    trainer = script.run(out, 26)
    assert trainer.updater.iteration == 26
    return torch.load(out / "final.pt", weights_only=True), trainer.get_extension(
        "LogReport").log


def test_resume_in_a_new_process_is_bitwise_exact(straight, tmp_path):
    n = 13  # mid-epoch (13 % 5 == 3) and mid-log-interval (13 % 4 == 1)
    first = script.run(tmp_path, n)
    assert (first.updater.iteration, first.updater.epoch) == (13, 2)
    assert (tmp_path / "snapshot_iter_13.pt").is_file()

    done = run_script(SCRIPT, str(tmp_path), "26", "--resume", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    resumed = torch.load(tmp_path / "final.pt", weights_only=True)
    resumed_log = json.loads((tmp_path / "final_log.json").read_text())
    expected_state, expected_log = straight
    assert_bitwise_equal(resumed, expected_state)
    assert without_time(resumed_log) == without_time(expected_log)
    assert [e["iteration"] for e in resumed_log] == [4, 8, 12, 16, 20, 24]
    assert any("best_at" in e for e in resumed_log[3:])  # the stateful trigger still fires
    assert resumed_log[-1]["student/lr"] < resumed_log[0]["student/lr"]  # the schedule moved


@pytest.mark.parametrize("n", [10, 7])
def test_resume_into_a_fresh_trainer_in_process(straight, tmp_path, n):
    """Epoch-aligned (10) and early (7) resume points, same process, fresh objects."""
    script.run(tmp_path, n)
    script.run(tmp_path, 26, resume=True)
    resumed = torch.load(tmp_path / "final.pt", weights_only=True)
    assert_bitwise_equal(resumed, straight[0])
    assert without_time(json.loads((tmp_path / "final_log.json").read_text())) == \
        without_time(straight[1])


def test_a_run_that_does_not_restore_rng_differs(straight, tmp_path, monkeypatch):
    """The comparison is sharp: skipping the RNG restore alone breaks equality."""
    script.run(tmp_path, 13)
    from gankit.training import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "set_rng_state", lambda state: None)
    script.run(tmp_path, 26, resume=True)
    resumed = torch.load(tmp_path / "final.pt", weights_only=True)
    assert differing(resumed, straight[0]) != []
