"""A run built to be hard to resume exactly; test_resume.py runs it in and out of process.

Usage: python resume_script.py OUT ITERATIONS [--resume]
Writes OUT/final.pt (every parameter and optimizer tensor) and OUT/final_log.json.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import gankit
from gankit.extensions import LogReport, LRScheduler, ObserveLR, Snapshot
from gankit.training import PRIORITY_EDITOR, MinValueTrigger, make_extension
from testsupport import run_and_save, script_main

EPOCH_LEN = 5  # batches per epoch
LOG_EVERY = 4  # iterations; resume points in the test are not multiples of it


class EpochSampler(torch.utils.data.Sampler[int]):
    """A shuffle that depends only on (seed, epoch), like DistributedSampler."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class NoisyDistill(gankit.Updater):
    """Consumes the torch (dropout, randn), numpy and python random streams every step."""

    def update_core(self, batch: Any) -> None:
        x, y = batch
        teacher, student = self.models["teacher"], self.models["student"]
        noise = torch.from_numpy(np.random.standard_normal(x.shape).astype(np.float32))
        x = x + 0.05 * noise + 0.01 * torch.randn_like(x)
        loss_t = nn.functional.mse_loss(teacher(x), y) * (0.5 + random.random())
        self.step("teacher", loss_t)
        with torch.no_grad():
            target = teacher(x)
        loss_s = nn.functional.mse_loss(student(x), target)
        self.step("student", loss_s)
        gankit.report({"loss": loss_t}, "teacher")
        gankit.report({"loss": loss_s, "noise": noise.mean()}, "student")


def build(out: str | Path, iterations: int) -> gankit.Trainer:
    """The same trainer every time; the seeds are set here so processes agree."""
    torch.set_num_threads(1)  # the same reduction order in every process
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(EPOCH_LEN * 8, 4, generator=g) * 4 - 2
    y = torch.sin(x).sum(1, keepdim=True)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8,
                                         sampler=EpochSampler(len(x), seed=3))
    teacher = nn.Sequential(nn.Linear(4, 32), nn.Dropout(0.2), nn.Tanh(), nn.Linear(32, 1))
    student = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.1), nn.Tanh(), nn.Linear(16, 1))
    opt_t = torch.optim.Adam(teacher.parameters(), 3e-3)
    opt_s = torch.optim.Adam(student.parameters(), 3e-3)
    updater = NoisyDistill(models={"teacher": teacher, "student": student},
                           optimizers={"teacher": opt_t, "student": opt_s}, loaders=loader)
    trainer = gankit.Trainer(updater, (iterations, "iteration"), out=out)
    trainer.extend(LogReport(trigger=(LOG_EVERY, "iteration"), filename=None))
    trainer.extend(LRScheduler(torch.optim.lr_scheduler.StepLR(opt_s, 3, gamma=0.8),
                               trigger=(2, "iteration")))
    trainer.extend(ObserveLR("student"))

    # A stateful trigger: the mean of a key over each epoch, fired on a new best.
    @make_extension(trigger=MinValueTrigger("teacher/loss", (1, "epoch")), name="best",
                    priority=PRIORITY_EDITOR)  # before LogReport, which logs best_at
    def best(t: gankit.Trainer) -> None:
        gankit.report({"best_at": float(t.updater.iteration)})

    trainer.extend(best)
    # Snapshot when the stop trigger is about to end the run: the first part's last iteration.
    trainer.extend(Snapshot(n_retains=2, trigger=lambda t: t.stop_trigger(t)))
    return trainer


def final_state(trainer: gankit.Trainer) -> dict[str, Any]:
    u = trainer.updater
    return {
        "models": {k: m.state_dict() for k, m in u.raw_models.items()},
        "optimizers": {k: o.state_dict()["state"] for k, o in u.optimizers.items()},
    }


def run(out: str | Path, iterations: int, resume: bool = False) -> gankit.Trainer:
    return run_and_save(build(out, iterations), out, resume, final_state)


if __name__ == "__main__":
    sys.exit(script_main(run))
