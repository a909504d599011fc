"""CPU cost of ``--arch r3gan`` against ``--arch resnet`` at their default widths, 32x32.

    PYTHONPATH=src python benchmarks/r3gan_cost.py              # ~2 min on one thread
    PYTHONPATH=src python benchmarks/r3gan_cost.py --archs r3gan resnet --widths 64 128

For each arch: parameter counts, then the seconds of one forward + backward of G and of D on
a batch of ``--batch`` 32x32 RGB images, and of one ``GANUpdater`` step with the arch's
defaults (``gankit train``'s, so resnet's step is a D step with a G step every 5th). The
archs are timed in turn, ``--repeats`` rounds interleaved, and the minimum of each is kept
(the least disturbed by other work on the machine), on ``--threads`` threads. Times are the
process's CPU seconds, not wall seconds, so other jobs on a shared machine do not count.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import torch


def _timed(fn: Callable[[], Any], n: int) -> float:
    # CPU time of this process: on a shared machine, wall time counts the other jobs too.
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def build(arch: str, width: int | None, batch: int) -> dict[str, Any]:
    """Networks, an updater with the arch's defaults, and the three timed steps."""
    from gankit.cli.config import TrainConfig
    from gankit.cli.recipes.dcgan import DCGANRecipe
    from gankit.cli.train import apply_defaults
    from gankit.data import load_dataset

    torch.manual_seed(0)
    train = load_dataset("shapes32", "train")
    recipe = DCGANRecipe()
    cfg = apply_defaults(TrainConfig(data="shapes32", arch=arch, device="cpu",
                                     batch_size=batch, width=width), recipe, train)
    updater = recipe.build(cfg, train)
    gen, dis = updater.raw_models["gen"], updater.raw_models["dis"]
    z = gen.sample_z(batch)
    x = train.unit(slice(0, batch))

    def g_step() -> None:
        gen.zero_grad(set_to_none=True)
        gen(z).square().mean().backward()

    def d_step() -> None:
        dis.zero_grad(set_to_none=True)
        dis(x).mean().backward()

    return dict(cfg=cfg, gen=gen, dis=dis, steps=(g_step, d_step, updater.update))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=["r3gan", "resnet"])
    p.add_argument("--widths", nargs="+", type=int, default=None,
                   help="one per arch (default: each arch's own)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iters", type=int, default=3, help="timed calls per round")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    widths = args.widths or [None] * len(args.archs)
    if len(widths) != len(args.archs):
        p.error("give one --widths value per arch")
    runs = {a: build(a, w, args.batch) for a, w in zip(args.archs, widths, strict=True)}
    best: dict[str, list[float]] = {a: [float("inf")] * 3 for a in runs}
    for run in runs.values():  # warm-up
        for step in run["steps"]:
            step()
    for _ in range(args.repeats):
        for arch, run in runs.items():
            for i, step in enumerate(run["steps"]):
                best[arch][i] = min(best[arch][i], _timed(step, args.iters))
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, 32x32 RGB "
          f"(shapes32), CPU seconds, min of {args.repeats} rounds of {args.iters}")
    print(f"{'arch':<8} {'width':>5} {'n_dis':>5} {'G params':>10} {'D params':>10} "
          f"{'G f+b s':>8} {'D f+b s':>8} {'step s':>7}")
    for arch, run in runs.items():
        cfg = run["cfg"]
        n_g = sum(t.numel() for t in run["gen"].parameters())
        n_d = sum(t.numel() for t in run["dis"].parameters())
        g, d, step = best[arch]
        print(f"{arch:<8} {cfg.model.width:>5} {cfg.objective.n_dis:>5} {n_g:>10,} "
              f"{n_d:>10,} {g:>8.3f} {d:>8.3f} {step:>7.3f}")
    if len(runs) == 2:
        a, b = runs
        print(f"{a} / {b}: G {best[a][0] / best[b][0]:.2f}x, D {best[a][1] / best[b][1]:.2f}x, "
              f"step {best[a][2] / best[b][2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
