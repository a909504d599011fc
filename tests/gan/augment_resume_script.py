"""A GAN run with ADA, LeCam and bCR; test_augment_resume.py stops and resumes it.

Usage: python augment_resume_script.py OUT ITERATIONS [--resume]
Writes OUT/final.pt (the updater's whole state: models, optimizers, ADA, LeCam anchors) and
OUT/final_log.json (aug/p and aug/rt at every iteration).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import gankit
from gankit.data import load_dataset, make_loader, take_fraction
from gankit.extensions import LogReport, Snapshot
from gankit.gan import ADA, BCR, GANUpdater, LeCam
from gankit.models import DCGANDiscriminator, DCGANGenerator
from testsupport import run_and_save, script_main


def build(out: str | Path, iterations: int) -> gankit.Trainer:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train = take_fraction(load_dataset("digits", "train"), 0.1)  # 150 images: 9 batches
    gen = DCGANGenerator(8, train.shape, 8)
    dis = DCGANDiscriminator(train.shape, 8, norm="batch")
    # kimg=0.5 and p=0.5: p moves by ±0.128 every 4 steps, mostly inside (0, 1).
    updater = GANUpdater(
        gen, dis, torch.optim.Adam(gen.parameters(), 1e-3, betas=(0.5, 0.999)),
        torch.optim.Adam(dis.parameters(), 1e-3, betas=(0.5, 0.999)),
        make_loader(train, 16, seed=1), augment=ADA(p=0.5, kimg=0.5),
        dis_terms=[LeCam(0.3), BCR(1.0)])
    trainer = gankit.Trainer(updater, (iterations, "iteration"), out=out)
    trainer.extend(LogReport(trigger=(1, "iteration"), filename=None))
    trainer.extend(Snapshot(n_retains=2, trigger=lambda t: t.stop_trigger(t)))
    return trainer


def run(out: str | Path, iterations: int, resume: bool = False) -> gankit.Trainer:
    return run_and_save(build(out, iterations), out, resume, lambda t: t.updater.state_dict(),
                        log_keys=("aug/", "dis/", "gen/", "iteration"))


if __name__ == "__main__":
    sys.exit(script_main(run))
