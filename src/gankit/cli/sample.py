"""``gankit sample RUN``: draw samples from a trained run into .npy or .png."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from gankit.cli.runs import load_run
from gankit.errors import GankitError


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.extensions.sample_grid import save_image_grid, save_scatter

    output = Path(args.output)
    if output.suffix not in (".npy", ".png"):
        raise GankitError(f"output {output} must end in .npy or .png.")
    if not output.parent.is_dir():
        raise GankitError(f"the folder of {output} does not exist; create it first.")
    _, recipe, trainer, train, _ = load_run(args.run, args.device)
    samples = recipe.sample(trainer, args.n, args.seed).cpu()
    if output.suffix == ".npy":
        arr = train.denormalize(samples) if train.kind == "image" else samples.numpy()
        np.save(output, arr)
    elif samples.dim() == 2:
        save_scatter(samples, output, train.x[:2500])
    else:
        save_image_grid(samples, output, scale=4)
    print(f"wrote {args.n} samples to {output}", file=sys.stderr)
    return 0
