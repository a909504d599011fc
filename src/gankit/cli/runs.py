"""Building a run from its configuration: seeding, the device, and a stopped run rebuilt."""

from __future__ import annotations

import argparse
import os
import random
from typing import Any

import numpy as np
import torch

from gankit.training.updater import resolve_device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_threads() -> int:
    """Set torch's intra-op thread count, unless OMP_NUM_THREADS already says; return it.

    torch's default (every core) makes two jobs on one machine thrash: beside another torch
    job on 2 cores, the digits demo's epochs took ~23 s instead of ~0.45 s. Half the cores
    this process may use (at least 1, at most 8) leaves room for a neighbour and loses little
    on the small networks of the recipes.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    threads = max(1, min(8, cores // 2))
    torch.set_num_threads(threads)
    return threads


def load_run(run_dir: str, device: str = "auto") -> tuple[Any, Any, Any, Any]:
    """Rebuild a finished or stopped run from its directory: (cfg, recipe, trainer, train)."""
    from gankit.cli.recipes import get_recipe
    from gankit.cli.train import resolve_config
    from gankit.data import load_dataset, take_fraction
    from gankit.training import Trainer

    args = argparse.Namespace(resume=run_dir)
    configure_threads()
    cfg, _ = resolve_config(args)
    cfg = cfg.merged({"device": str(resolve_device(device))})
    recipe = get_recipe(cfg.recipe)
    train = load_dataset(cfg.data, "train", image_size=cfg.image_size, seed=cfg.seed,
                         mode=cfg.data_mode)
    val = load_dataset(cfg.data, "val", image_size=cfg.image_size, seed=cfg.seed,
                       mode=cfg.data_mode)
    updater = recipe.build(cfg, take_fraction(train, cfg.train_fraction))
    metadata = {"recipe": cfg.recipe, "data": cfg.data, "shape": list(train.shape)}
    trainer = Trainer(updater, cfg.stop_trigger(), cfg.out, metadata=metadata)
    for ext in recipe.extensions(cfg, updater, train, val):
        trainer.extend(ext)
    trainer.resume(cfg.out)
    return cfg, recipe, trainer, train
