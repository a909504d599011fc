"""DCGAN at 64x64 on one GPU: steps/s and samples/s for fp32, TF32, bf16, fp16 and compile;
then every ``--arch`` at 32x32 (shapes32, batch 64, paper defaults) in fp32 and bf16.

    PYTHONPATH=src python benchmarks/gpu.py            # all rows, ~5 min with compilation
    PYTHONPATH=src python benchmarks/gpu.py --configs fp32 bf16 --steps 50
    PYTHONPATH=src python benchmarks/gpu.py --configs --archs dcgan resnet biggan  # archs only

The data are the embedded digits upscaled to 64x64 (no download); the networks are the
recipe's DCGAN pair (batch-norm discriminator, non-saturating loss, Adam), fed through the
same loader and Updater as ``gankit train``, in channels-last layout. Each row times
``--steps`` updates after a warm-up (which includes compilation) and prints its ratio to the
fp32 row. Without CUDA it says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from gankit.data import ArrayDataset
    from gankit.training import Updater

CONFIGS = ("fp32", "tf32", "bf16", "fp16", "fp32+compile", "bf16+compile")
ARCHS = ("dcgan", "resnet", "biggan", "stylegan2", "r3gan", "r3gan-cifar10")
#: rows that are an arch at other widths: the R3GAN paper's class-conditional CIFAR-10 preset
PRESETS = {"r3gan-cifar10": ("r3gan", 768)}


def run(config: str, args: argparse.Namespace, train: ArrayDataset) -> tuple[float, float]:
    """(seconds for args.steps updates, peak GiB) for one configuration."""
    from gankit.data import make_loader
    from gankit.gan.updaters import GANUpdater
    from gankit.models import DCGANDiscriminator, DCGANGenerator
    from gankit.training.distributed import prepare_updater

    precision, _, compiled = config.partition("+")
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch._dynamo.reset()
    torch.manual_seed(0)
    gen = DCGANGenerator(args.z_dim, train.shape, args.width)
    dis = DCGANDiscriminator(train.shape, args.width, norm="batch")
    betas = (0.5, 0.999)
    updater = GANUpdater(
        gen, dis, torch.optim.Adam(gen.parameters(), 2e-4, betas=betas),
        torch.optim.Adam(dis.parameters(), 2e-4, betas=betas),
        make_loader(train, args.batch, seed=0, pin_memory=True),
        device="cuda", precision="fp32" if precision == "tf32" else precision,
    )
    prepare_updater(updater, compile=bool(compiled), channels_last=True)
    return timed(updater, args)


def timed(updater: Updater, args: argparse.Namespace) -> tuple[float, float]:
    """(seconds for args.steps updates after args.warmup, peak GiB allocated meanwhile)."""
    for _ in range(args.warmup):
        updater.update()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        updater.update()
    torch.cuda.synchronize()
    return time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**30


def run_arch(arch: str, precision: str, args: argparse.Namespace,
             train: ArrayDataset) -> tuple[float, float, int]:
    """(seconds for args.steps updates, peak GiB, n_dis) for ``--arch arch`` at 32x32."""
    from gankit.cli.config import TrainConfig
    from gankit.cli.recipes.dcgan import DCGANRecipe
    from gankit.cli.train import apply_defaults
    from gankit.training.distributed import prepare_updater

    torch.manual_seed(0)
    recipe = DCGANRecipe()
    arch, width = PRESETS.get(arch, (arch, None))
    cfg = apply_defaults(TrainConfig(data="shapes32", arch=arch, device="cuda",
                                     precision=precision, batch_size=args.arch_batch,
                                     width=width,
                                     conditional=arch == "biggan" or width is not None),
                         recipe, train)
    updater = recipe.build(cfg, train)
    prepare_updater(updater, channels_last=True)
    return (*timed(updater, args), int(cfg.objective.n_dis or 1))


def arch_table(args: argparse.Namespace) -> None:
    from gankit.data import load_dataset

    train = load_dataset("shapes32", "train")
    print(f"\n--arch at 32x32 (shapes32), batch {args.arch_batch}, paper defaults; a step is "
          "one D batch (+ a G step every n_dis)", flush=True)
    print(f"{'arch':<10} {'precision':<9} {'n_dis':>5} {'steps/s':>8} {'vs dcgan fp32':>13} "
          f"{'peak GiB':>9}", flush=True)
    base = None
    for arch in args.archs:
        for precision in ("fp32", "bf16"):
            try:
                seconds, peak, n_dis = run_arch(arch, precision, args, train)
            except Exception as exc:  # one failing row must not end the table
                print(f"{arch:<10} {precision:<9} failed: {type(exc).__name__}: "
                      f"{str(exc).splitlines()[0]}", flush=True)
                continue
            steps = args.steps / seconds
            if base is None and arch == "dcgan" and precision == "fp32":
                base = steps
            ratio = f"{steps / base:.3f}x" if base else "-"
            print(f"{arch:<10} {precision:<9} {n_dis:>5} {steps:>8.1f} {ratio:>13} "
                  f"{peak:>9.2f}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--archs", nargs="*", default=list(ARCHS), choices=ARCHS,
                   help="archs for the 32x32 table (none: skip it)")
    p.add_argument("--arch-batch", type=int, default=64)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--z-dim", type=int, default=100)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=30)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here; run it on a machine with a GPU.")
        return 0

    from gankit.data import load_dataset

    train = load_dataset("digits", "train", image_size=64, seed=0)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; DCGAN width "
          f"{args.width}, {tuple(train.shape)} images, batch {args.batch}, {args.steps} steps "
          f"after {args.warmup} warm-up", flush=True)
    print(f"{'config':<14} {'steps/s':>8} {'samples/s':>10} {'vs fp32':>8} {'peak GiB':>9}",
          flush=True)
    base = None
    for config in args.configs:
        try:
            seconds, peak = run(config, args, train)
        except Exception as exc:  # one failing row (a compiler error, say) must not end the table
            print(f"{config:<14} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                  flush=True)
            continue
        steps = args.steps / seconds
        if config == "fp32":
            base = steps
        ratio = f"{steps / base:.2f}x" if base else "-"
        print(f"{config:<14} {steps:>8.1f} {steps * args.batch:>10.0f} {ratio:>8} {peak:>9.2f}",
              flush=True)
    if args.archs:
        arch_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
