"""What a StyleGAN2 training step costs against the DCGAN baseline, measured in the same run.

Each variant trains through ``GANUpdater`` at batch 64 on 3x32x32 random images, in its own
subprocess (so the peak resident memory, ``ru_maxrss``, is that variant's alone):

- dcgan:            DCGANGenerator/DCGANDiscriminator, base 64, ns loss (the baseline);
- stylegan2:        the CPU-default StyleGAN2 widths (channel_base 2048, cap 128), ns loss,
                    style mixing 0.9, no regularisers;
- stylegan2+reg:    the same with lazy R1 (gamma 0.01, every 16) and the path-length
                    regulariser (weight 2, every 4), lr/betas rescaled for the intervals.

Each row also gives the multiply-accumulates of one image's forward pass through G (eval
mode, so the mapping network runs once) and through D: the conv2d, conv_transpose2d and
linear calls, counted from their operands' shapes (elementwise ops, StyleGAN2's
demodulation matmul and bilinear interpolation are left out).

Steps/s is the median over ``--repeats`` timed blocks of ``--steps`` steps after one warm-up
block, by wall clock and by the process's CPU time (one thread, so CPU time is what other
jobs on a shared machine disturb least); every figure is printed next to the baseline's
ratio. Run:

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/stylegan2_cost.py --steps 8 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from gankit.models.macs import CountMACs

BATCH = 64
SHAPE = (3, 32, 32)
VARIANTS = ("dcgan", "stylegan2", "stylegan2+reg")


def forward_macs(gen: torch.nn.Module, dis: torch.nn.Module) -> tuple[int, int]:
    """MACs of one image through G (in eval mode) and D."""
    z_dim = int(getattr(gen, "z_dim"))  # noqa: B009 (a module attribute)
    was_training = gen.training
    gen.eval()
    with torch.no_grad(), CountMACs() as g:
        img = gen(torch.randn(1, z_dim))
    with torch.no_grad(), CountMACs() as d:
        dis(img)
    gen.train(was_training)
    return g.total, d.total


def measure(variant: str, steps: int, repeats: int) -> dict[str, float]:
    from gankit.gan import R1, GANUpdater, PathLength
    from gankit.models import (
        DCGANDiscriminator,
        DCGANGenerator,
        StyleGAN2Discriminator,
        StyleGAN2Generator,
    )

    torch.manual_seed(0)
    torch.set_num_threads(1)
    loader = [torch.rand(BATCH, *SHAPE) * 2 - 1 for _ in range(4)]
    kw: dict[str, object] = {}
    gen: torch.nn.Module
    dis: torch.nn.Module
    if variant == "dcgan":
        gen, dis = DCGANGenerator(128, SHAPE), DCGANDiscriminator(SHAPE)
        opt_g = torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(dis.parameters(), 2e-4, betas=(0.5, 0.999))
    else:
        gen, dis = StyleGAN2Generator(128, SHAPE), StyleGAN2Discriminator(SHAPE)
        opt_g = torch.optim.Adam(gen.parameters(), 2.5e-3, betas=(0.0, 0.99))
        opt_d = torch.optim.Adam(dis.parameters(), 2.5e-3, betas=(0.0, 0.99))
        if variant == "stylegan2+reg":  # the updater rescales the lazy optimizers
            kw = {"dis_terms": [R1(0.01, every=16)], "gen_terms": [PathLength(2.0, every=4)]}
    g_macs, d_macs = forward_macs(gen, dis)
    updater = GANUpdater(gen, dis, opt_g, opt_d, loader, **kw)  # type: ignore[arg-type]
    rates, cpu_rates = [], []
    for block in range(repeats + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            updater.update()
        if block:  # the first block warms up
            rates.append(steps / (time.perf_counter() - start))
            cpu_rates.append(steps / (time.process_time() - cpu_start))
    params = sum(p.numel() for m in (gen, dis) for p in m.parameters())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return {"steps_per_s": statistics.median(rates),
            "cpu_steps_per_s": statistics.median(cpu_rates), "peak_mib": peak, "params": params,
            "g_macs": g_macs, "d_macs": d_macs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:  # the child: one variant, its figures as JSON
        print(json.dumps(measure(args.variant, args.steps, args.repeats)))
        return
    results = {}
    for variant in VARIANTS:
        done = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--steps", str(args.steps),
             "--repeats", str(args.repeats)],
            capture_output=True, text=True, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    base = results["dcgan"]
    side = f"{SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}"
    print(f"batch {BATCH}, {side}, CPU, 1 thread, torch {torch.__version__}")
    print("| arch | G+D params | G / D fwd MMAC per image | steps/s (wall) | vs dcgan "
          "| steps/s (CPU time) | vs dcgan | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for variant, r in results.items():
        print(f"| {variant} | {r['params']:,} | {r['g_macs'] / 1e6:.1f} / "
              f"{r['d_macs'] / 1e6:.1f} | {r['steps_per_s']:.3f} | "
              f"{r['steps_per_s'] / base['steps_per_s']:.2f}x | {r['cpu_steps_per_s']:.3f} | "
              f"{r['cpu_steps_per_s'] / base['cpu_steps_per_s']:.2f}x | {r['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
