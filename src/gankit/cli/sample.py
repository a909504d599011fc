"""``gankit sample RUN``: draw samples from a trained run (or a generator file that
``gankit export`` wrote) into .npy or .png."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gankit.cli.export import is_generator_file, sample_file
from gankit.cli.runs import load_run
from gankit.errors import GankitError
from gankit.extensions.ema import sampling_model

if TYPE_CHECKING:
    from gankit.training import Trainer


def truncate(trainer: Trainer, psi: float) -> None:
    """Sample with StyleGAN2's truncation ``psi`` (the generator's ``truncation_psi``)."""
    gen = sampling_model(trainer, "gen") if "gen" in trainer.updater.raw_models else None
    if gen is None or not hasattr(gen, "truncation_psi"):
        raise GankitError("--truncation applies to a style-based generator (--arch stylegan2); "
                          "this run has none, so leave --truncation out.")
    setattr(gen, "truncation_psi", psi)  # noqa: B010 (nn.Module's __setattr__ is typed for tensors)


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.extensions.sample_grid import save_image_grid, save_scatter

    output = Path(args.output)
    if output.suffix not in (".npy", ".png"):
        raise GankitError(f"output {output} must end in .npy or .png.")
    if not output.parent.is_dir():
        raise GankitError(f"the folder of {output} does not exist; create it first.")
    if args.truncation is not None and not 0 <= args.truncation <= 1:
        raise GankitError(f"--truncation must be a psi in [0, 1] (1: off), got {args.truncation}.")
    if is_generator_file(args.run):  # a model file written by gankit export
        samples, train = sample_file(args.run, args.n, args.seed, args.device, args.truncation)
    else:
        _, recipe, trainer, train, _ = load_run(args.run, args.device)
        if args.truncation is not None:
            truncate(trainer, args.truncation)
        samples = recipe.sample(trainer, args.n, args.seed).cpu()
    if output.suffix == ".npy":
        arr = train.denormalize(samples) if train.kind == "image" else samples.numpy()
        np.save(output, arr)
    elif samples.dim() == 2:
        save_scatter(samples, output, train.x[:2500] if len(train) else None)
    else:
        save_image_grid(samples, output, scale=4)
    print(f"wrote {args.n} samples to {output}", file=sys.stderr)
    return 0
