"""Steps/s and samples/s of one GAN update in 1 and N processes on the CPU (gloo DDP).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/scaling.py --procs 1 2

Each row launches its processes through torchrun's launcher (gankit.cli.launch), one
thread each; the per-process batch is fixed, so N processes train on N times the samples per
step. The 1-process row has no DDP at all (torchrun with a world of 1), so the ratio column
includes everything data parallelism costs: gradient all-reduces, the extra process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from gankit.cli.launch import launch
from gankit.data import load_dataset, make_loader
from gankit.gan.updaters import GANUpdater
from gankit.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from gankit.training.distributed import (
    barrier,
    init_distributed,
    prepare_updater,
    rank_and_world_size,
    seed_rank,
)


def build(data: str, batch: int, width: int) -> GANUpdater:
    rank, world_size = rank_and_world_size()
    train = load_dataset(data, "train", seed=0)
    torch.manual_seed(0)
    if train.kind == "points":
        gen, dis = MLPGenerator(2, 2, width), MLPDiscriminator(2, width)
    else:
        gen, dis = DCGANGenerator(32, train.shape, width), DCGANDiscriminator(train.shape, width)
    loader = make_loader(train, batch, seed=0, rank=rank, world_size=world_size)
    updater = GANUpdater(gen, dis, torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.5, 0.999)),
                         torch.optim.Adam(dis.parameters(), 2e-4, betas=(0.5, 0.999)), loader)
    prepare_updater(updater)
    seed_rank(0)
    return updater


def worker(args: argparse.Namespace) -> None:
    init_distributed("cpu")
    rank, world_size = rank_and_world_size()
    updater = build(args.data, args.batch, args.width)
    for _ in range(args.warmup):
        updater.update()
    barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        updater.update()
    barrier()  # the slowest rank sets the pace
    seconds = time.perf_counter() - start
    if rank == 0:
        Path(args.worker).write_text(json.dumps({"world": world_size, "seconds": seconds}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--data", default="digits", choices=["digits", "ring8"])
    p.add_argument("--batch", type=int, default=64, help="per process")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for n in args.procs:
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            argv = [f"--data={args.data}", f"--batch={args.batch}", f"--width={args.width}",
                    f"--steps={args.steps}", f"--warmup={args.warmup}", f"--worker={result}"]
            if launch(argv, n, script=__file__) != 0:
                sys.exit(f"the {n}-process run failed")
            rows.append((n, json.loads(result.read_text())["seconds"]))
    print(f"\n{args.data}, {args.steps} steps after {args.warmup} warm-up, batch {args.batch} "
          f"per process, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    print(f"{'processes':>9}  {'global batch':>12}  {'steps/s':>8}  {'samples/s':>9}  "
          f"{'samples/s vs 1':>14}")
    single = [seconds for n, seconds in rows if n == 1]
    base = args.steps / single[0] * args.batch if single else None  # samples/s of 1 process
    for n, seconds in rows:
        steps = args.steps / seconds
        samples = steps * args.batch * n
        ratio = f"{samples / base:.2f}x" if base else "-"
        print(f"{n:>9}  {args.batch * n:>12}  {steps:>8.1f}  {samples:>9.0f}  {ratio:>14}")


if __name__ == "__main__":
    main()
