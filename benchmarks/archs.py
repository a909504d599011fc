"""Per-arch cost on CPU: steps/s and peak memory at batch 64, 32x32 RGB, against DCGAN.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/archs.py              # ~10 min on 2 cores
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/archs.py --steps 3 --archs dcgan resnet

Each arch trains on shapes32 with the networks and paper defaults ``gankit train --arch A``
resolves (widths, z, n_dis, loss, Adam betas), through the same GANUpdater, in its own
subprocess so that peak memory (max resident set) is its own. A "step" is one
``updater.update()``, i.e. one discriminator step, plus a generator step every ``n_dis``:
so steps/s is per discriminator batch. "CPU steps/s" divides by the process's CPU time
instead of wall time, and "CPU G+D/s" divides that by n_dis: on a machine other jobs share it is
the figure to compare (with one thread it equals the wall figure on an idle machine). Ratios
are against the DCGAN row measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ARCHS = ("dcgan", "resnet", "biggan", "stylegan2", "r3gan")


def measure(arch: str, steps: int, warmup: int, batch: int) -> dict[str, float]:
    """One arch in this process: its timing and this process's peak RSS."""
    import torch

    from gankit.cli.config import TrainConfig
    from gankit.cli.recipes.dcgan import DCGANRecipe
    from gankit.cli.train import apply_defaults
    from gankit.data import load_dataset

    torch.manual_seed(0)
    train = load_dataset("shapes32", "train")
    recipe = DCGANRecipe()
    cfg = apply_defaults(TrainConfig(data="shapes32", arch=arch, device="cpu", batch_size=batch,
                                     conditional=arch == "biggan"), recipe, train)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    updater = recipe.build(cfg, train)
    params = {name: sum(p.numel() for p in m.parameters())
              for name, m in updater.raw_models.items()}
    for _ in range(warmup):
        updater.update()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        updater.update()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"steps_per_s": steps / seconds, "cpu_steps_per_s": steps / cpu_seconds,
            "n_dis": cfg.objective.n_dis, "peak_mib": peak / 1024,
            "growth_mib": (peak - rss0) / 1024, "gen_params": params["gen"],
            "dis_params": params["dis"], "width": cfg.model.width, "z_dim": cfg.model.z_dim}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one arch, print JSON
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps, args.warmup, args.batch)))
        return 0
    archs = list(args.archs)
    if "dcgan" not in archs:
        archs.insert(0, "dcgan")  # the baseline of the ratios
    print(f"CPU, {os.environ.get('OMP_NUM_THREADS', 'all')} thread(s); shapes32 32x32x3, batch "
          f"{args.batch}, {args.steps} steps after {args.warmup} warm-up; paper defaults")
    print(f"{'arch':<10} {'G params':>10} {'D params':>10} {'n_dis':>5} {'steps/s':>8} "
          f"{'vs dcgan':>8} {'CPU steps/s':>11} {'vs dcgan':>8} {'CPU G+D/s':>12} "
          f"{'peak MiB':>9} {'vs dcgan':>8}", flush=True)
    base: dict[str, float] | None = None
    for arch in archs:
        cmd = [sys.executable, __file__, "--one", arch, "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--batch", str(args.batch)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{arch:<10} failed: {done.stderr.strip().splitlines()[-1]}", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        base = base or r
        print(f"{arch:<10} {r['gen_params']:>10,} {r['dis_params']:>10,} {r['n_dis']:>5} "
              f"{r['steps_per_s']:>8.3f} {r['steps_per_s'] / base['steps_per_s']:>7.3f}x "
              f"{r['cpu_steps_per_s']:>11.3f} "
              f"{r['cpu_steps_per_s'] / base['cpu_steps_per_s']:>7.3f}x "
              f"{r['cpu_steps_per_s'] / r['n_dis']:>12.3f} {r['peak_mib']:>9.0f} "
              f"{r['peak_mib'] / base['peak_mib']:>7.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
