"""Building a run from its configuration: seeding, the device, and a stopped run rebuilt."""

from __future__ import annotations

import argparse
import random
from typing import Any

import numpy as np
import torch

from gankit.errors import GankitError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GankitError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device {name!r} was asked for but CUDA is not available; use cpu.")
    if device.type not in ("cpu", "cuda"):
        raise GankitError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N.")
    return str(device)


def load_run(run_dir: str, device: str = "auto") -> tuple[Any, Any, Any, Any]:
    """Rebuild a finished or stopped run from its directory: (cfg, recipe, trainer, train)."""
    from gankit.cli.recipes import get_recipe
    from gankit.cli.train import resolve_config
    from gankit.data import load_dataset, take_fraction
    from gankit.training import Trainer

    args = argparse.Namespace(resume=run_dir)
    cfg, _ = resolve_config(args)
    cfg = cfg.merged({"device": _resolve_device(device)})
    recipe = get_recipe(cfg.recipe)
    train = load_dataset(cfg.data, "train", image_size=cfg.image_size, seed=cfg.seed)
    val = load_dataset(cfg.data, "val", image_size=cfg.image_size, seed=cfg.seed)
    updater = recipe.build(cfg, take_fraction(train, cfg.train_fraction))
    metadata = {"recipe": cfg.recipe, "data": cfg.data, "shape": list(train.shape)}
    trainer = Trainer(updater, cfg.stop_trigger(), cfg.out, metadata=metadata)
    for ext in recipe.extensions(cfg, updater, train, val):
        trainer.extend(ext)
    trainer.resume(cfg.out)
    return cfg, recipe, trainer, train
