"""What gankit's Trainer costs over a hand-written PyTorch loop doing the same update.

Both variants run the same two-model step (a teacher fits a target, a student distils the
teacher: two MLPs, two Adam optimizers, batch 64, the same shuffled DataLoader and seed):

- plain:   a ``for`` loop that keeps the interval mean of both losses on the device and
           prints one line every ``--log-every`` iterations (what LogReport + PrintReport do);
- trainer: ``gankit.Trainer`` with LogReport (writing log.json), PrintReport and ProgressBar
           (``force=True`` into a null stream, so the bar does its work without a terminal).

They alternate for ``--rounds`` rounds (plain, trainer, trainer, plain, ...) and the median
steps/s of each is compared, so drifts in machine load hit both alike; wall and CPU (process)
time are both reported, CPU time being the one other processes on a shared machine disturb
least. Run:

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/overhead.py --rounds 15 --iterations 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

import gankit
from gankit.extensions import LogReport, PrintReport, ProgressBar

BATCH = 64
IN = 32


class Distill(gankit.Updater):
    def update_core(self, batch: Any) -> None:
        x, y = batch
        teacher, student = self.models["teacher"], self.models["student"]
        loss_teacher = nn.functional.mse_loss(teacher(x), y)
        self.step("teacher", loss_teacher)
        with torch.no_grad():
            target = teacher(x)
        loss_student = nn.functional.mse_loss(student(x), target)
        self.step("student", loss_student)
        gankit.report({"teacher/loss": loss_teacher, "student/loss": loss_student})


def build(seed: int = 0) -> tuple[nn.Module, nn.Module, Any, Any, Any]:
    """Models, optimizers and loader, identical for every round and both variants."""
    torch.manual_seed(seed)
    x = torch.randn(BATCH * 64, IN)
    y = torch.sin(x[:, :8]).sum(1, keepdim=True)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH,
                                         shuffle=True, drop_last=True)
    teacher = nn.Sequential(nn.Linear(IN, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                            nn.Linear(256, 1))
    student = nn.Sequential(nn.Linear(IN, 64), nn.ReLU(), nn.Linear(64, 1))
    return (teacher, student, torch.optim.Adam(teacher.parameters(), 1e-3),
            torch.optim.Adam(student.parameters(), 1e-3), loader)


class Clock:
    """Wall and CPU seconds of a block. CPU time is what a shared machine cannot inflate:
    other processes' load stretches the wall clock of whichever variant it happens to hit."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def run_plain(iterations: int, log_every: int, out: TextIO) -> Clock:
    """Wall and CPU seconds for ``iterations`` steps of the hand-written loop."""
    teacher, student, opt_t, opt_s, loader = build()
    sums = torch.zeros(2)
    count = it = 0
    with Clock() as clock:
        while it < iterations:
            for x, y in loader:
                loss_t = nn.functional.mse_loss(teacher(x), y)
                opt_t.zero_grad(set_to_none=True)
                loss_t.backward()
                opt_t.step()
                with torch.no_grad():
                    target = teacher(x)
                loss_s = nn.functional.mse_loss(student(x), target)
                opt_s.zero_grad(set_to_none=True)
                loss_s.backward()
                opt_s.step()
                sums += torch.stack([loss_t.detach(), loss_s.detach()])
                count += 1
                it += 1
                if it % log_every == 0:
                    mean_t, mean_s = (sums / count).tolist()
                    print(f"{it:<12d}  {mean_t:<12.6g}  {mean_s:<12.6g}", file=out)
                    sums.zero_()
                    count = 0
                if it >= iterations:
                    break
    return clock


def run_trainer(iterations: int, log_every: int, out: TextIO, folder: Path) -> Clock:
    """Wall and CPU seconds for ``iterations`` steps through gankit's Trainer."""
    teacher, student, opt_t, opt_s, loader = build()
    updater = Distill(models={"teacher": teacher, "student": student},
                      optimizers={"teacher": opt_t, "student": opt_s}, loaders=loader)
    trainer = gankit.Trainer(updater, (iterations, "iteration"), out=folder)
    trainer.extend(LogReport(trigger=(log_every, "iteration")))
    trainer.extend(PrintReport(["iteration", "teacher/loss", "student/loss"], out=out))
    trainer.extend(ProgressBar(out=out, force=True))
    with Clock() as clock:
        trainer.run()
    return clock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rates: dict[tuple[str, str], list[float]] = {
        (v, c): [] for v in ("plain", "trainer") for c in ("wall", "cpu")}
    with open(os.devnull, "w") as null, tempfile.TemporaryDirectory() as tmp:
        # Warm-up: first-call costs (lazy imports, allocator) are no part of either loop.
        run_plain(50, args.log_every, null)
        run_trainer(50, args.log_every, null, Path(tmp, "warmup"))
        for r in range(args.rounds):
            # ABBA order: a drift in machine load over the session favours neither variant.
            order = ("plain", "trainer") if r % 2 == 0 else ("trainer", "plain")
            clocks = {}
            for variant in order:
                clocks[variant] = (run_plain(args.iterations, args.log_every, null)
                                   if variant == "plain" else
                                   run_trainer(args.iterations, args.log_every, null,
                                               Path(tmp, f"r{r}")))
            for (variant, kind), values in rates.items():
                values.append(args.iterations / getattr(clocks[variant], kind))
            print(f"round {r + 1}/{args.rounds}: steps/s wall plain "
                  f"{rates['plain', 'wall'][-1]:7.1f} trainer {rates['trainer', 'wall'][-1]:7.1f}"
                  f" | cpu plain {rates['plain', 'cpu'][-1]:7.1f} trainer "
                  f"{rates['trainer', 'cpu'][-1]:7.1f}", file=sys.stderr)

    med = {key: statistics.median(values) for key, values in rates.items()}
    ratio = {c: med["trainer", c] / med["plain", c] for c in ("wall", "cpu")}
    # Each pair ran back to back under nearly the same load: the median of the per-round
    # ratios is the steadier figure on a shared machine.
    paired = {c: statistics.median(t / p for t, p in zip(rates["trainer", c], rates["plain", c],
                                                         strict=True)) for c in ("wall", "cpu")}
    for c in ("wall", "cpu"):
        extra_us = 1e6 / med["trainer", c] - 1e6 / med["plain", c]
        print(f"{c:>4} clock: plain {med['plain', c]:.1f} steps/s, trainer "
              f"{med['trainer', c]:.1f} steps/s (medians of {args.rounds} rounds); ratio "
              f"trainer/plain {ratio[c]:.3f}, median per-round ratio {paired[c]:.3f}; "
              f"{extra_us:+.0f} us per step")
    print()
    print("| benchmark | rounds x iterations | clock | plain steps/s | trainer steps/s | ratio "
          "| per-round ratio |")
    print("|---|---|---|---|---|---|---|")
    for c in ("wall", "cpu"):
        print(f"| overhead: 2 MLPs, Adam, batch {BATCH}, CPU, {args.threads} thread | "
              f"{args.rounds} x {args.iterations} | {c} | {med['plain', c]:.1f} | "
              f"{med['trainer', c]:.1f} | {ratio[c]:.3f} | {paired[c]:.3f} |")


if __name__ == "__main__":
    main()
