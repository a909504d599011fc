"""Building a run from its configuration: seeding, the device, and a stopped run rebuilt."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from gankit.cli.config import TrainConfig
from gankit.errors import GankitError
from gankit.training.updater import resolve_device

if TYPE_CHECKING:
    from gankit.cli.recipes import Recipe
    from gankit.data import ArrayDataset
    from gankit.training import Trainer


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


def saved_config(run: Path) -> TrainConfig:
    """The configuration a run directory's config.json holds."""
    cfg_file = run / "config.json"
    try:
        saved = json.loads(cfg_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GankitError(f"{cfg_file} cannot be read ({exc}); it is damaged.") from None
    return TrainConfig.from_dict(saved, str(cfg_file))


class Run(NamedTuple):
    """A run assembled from its configuration."""

    cfg: TrainConfig
    recipe: Recipe
    trainer: Trainer
    train: ArrayDataset
    val: ArrayDataset


# The data library's words for an argument, and the CLI's option for them: its messages name
# no flags, so the CLI says them in its own terms.
_FLAG_WORDS = (("pass an image size", "pass --image-size SIZE"),
               ("leave the image size unset", "leave --image-size out"),
               ("leave the image size out", "leave --image-size out"))


def _with_flags(message: str) -> str:
    """A data library message with the CLI's option names in place of its words."""
    for words, flag in _FLAG_WORDS:
        message = message.replace(words, flag)
    return message


def load_data(cfg: TrainConfig) -> tuple[ArrayDataset, ArrayDataset]:
    """The run's training and held-out splits, each loaded once."""
    from gankit.data import LazyImages, load_dataset

    try:
        train, val = (load_dataset(cfg.dataset.data, split, image_size=cfg.dataset.image_size,
                                   seed=cfg.run.seed, mode=cfg.dataset.data_mode)
                      for split in ("train", "val"))
    except GankitError as exc:
        raise GankitError(_with_flags(str(exc))) from None
    for data in (train, val):  # what the evaluator reads skips what the loader skips
        if isinstance(data, LazyImages):
            data.skip_corrupt = cfg.dataset.skip_corrupt
    return train, val


def build_run(cfg: TrainConfig, train: ArrayDataset, val: ArrayDataset, *,
              for_training: bool = False) -> Run:
    """The one assembly of a run from its resolved configuration, for ``gankit train`` and
    for ``gankit eval``/``sample``: the recipe's networks and updater, the trainer, and the
    recipe's extensions and schedule. ``for_training`` also prepares the updater for its
    devices (DDP, compile) and gives each rank its own noise; ``gankit train`` then adds the
    logs, prints and snapshots."""
    from gankit.cli.recipes import get_recipe, lr_schedule
    from gankit.data import take_fraction
    from gankit.training import Trainer
    from gankit.training.distributed import prepare_updater, seed_rank

    recipe = get_recipe(cfg.model.recipe)
    seed_everything(cfg.run.seed)
    # --train-fraction trains on part of the split; evaluators keep the whole split as the
    # reference for their feature network and floor, so runs at any fraction share one scale.
    updater = recipe.build(cfg, take_fraction(train, cfg.dataset.train_fraction))
    if for_training:
        # A network regularised through its gradient takes a double backward, which compiled
        # graphs lack.
        twice: set[str] = getattr(updater, "double_backward_models", set())
        prepare_updater(updater, compile=cfg.run.compile and [
            name for name in updater.models if name not in twice])
        seed_rank(cfg.run.seed)  # same weights on every rank, different noise
    metadata = {"recipe": cfg.model.recipe, "data": cfg.dataset.data, "shape": list(train.shape)}
    trainer = Trainer(updater, cfg.stop_trigger(), cfg.run.out, metadata=metadata)
    for ext in [*recipe.extensions(cfg, updater, train, val), *lr_schedule(cfg, updater)]:
        trainer.extend(ext)
    return Run(cfg, recipe, trainer, train, val)


def require_run_dir(run: Path) -> Path:
    """``run`` if it is a gankit run directory (it holds config.json); else the CLI's error."""
    if not (run / "config.json").is_file():
        raise GankitError(
            f"{run} is not a gankit run directory (no config.json); give the --out directory "
            "of an earlier gankit train."
        )
    return run


def load_run(run_dir: str, device: str = "auto") -> Run:
    """Rebuild a finished or stopped run from its directory, at its newest snapshot."""

    configure_threads()
    cfg = saved_config(require_run_dir(Path(run_dir))).merged(
        {"device": str(resolve_device(device)), "out": str(run_dir)})
    run = build_run(cfg, *load_data(cfg))
    if run.trainer.resume(cfg.run.out) is None:
        raise GankitError(f"{run_dir} holds no snapshot_iter_N.pt yet; train the run first, or "
                          "give a run directory that has one.")
    return run
