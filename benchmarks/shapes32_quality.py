"""Architectures on shapes32 at equal compute: dcgan, resnet, stylegan2 (and biggan) vs dcgan.

Every arch trains with ``gankit train --data shapes32 --arch A`` (its paper recipe: loss,
Adam betas, n_dis, R1; at CPU-sized widths) for the same budget of **CPU seconds of one
thread**, then ``gankit eval`` scores its EMA generator in gankit's shapes32 feature space:
FID, KID, precision/recall, the classes produced (of 16) and the class KL, beside the real
floor (the training split scored against the held-out split, at the same N).

Why CPU seconds: the machine is shared, so wall time measures the neighbours as much as the
network; the CPU time of a one-thread process does not (on an idle machine the two agree).
Each arch is first calibrated in its own process: ``--calib-steps`` updates of the exact
updater ``gankit train`` builds, timed by ``time.process_time`` after a warm-up, plus one
update with its lazy penalty forced on (R1 every 16 steps costs several plain steps), so
the per-iteration cost is the plain cost plus the penalty's extra share. The arch then gets
``budget / cost`` iterations (``iterations_for_budget``), and the CPU time its training
process really used (``os.wait4``) is printed beside the budget as a check.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/shapes32_quality.py --jobs 3
    ... --budget 8 --calib-steps 1 -n 200           # a smoke run of a few minutes

Measured on 2026-12-01 (the README's table): 360 CPU-s per arch, 50.6 min of wall clock and
17.1 CPU-minutes in all on two cores shared with other jobs (load average near 30).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as harness

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent

#: CPU-sized widths (``--width``): dcgan keeps gankit's 32; resnet 16 is G 32 / D 16
#: channels (the paper's 128 is 256 / 128); stylegan2 16 is channel_base 1024, cap 64
#: (its CPU default is 32: 2048 / 128; the paper's 16384 / 512); biggan 16 (paper 96).
WIDTHS: dict[str, int] = {"dcgan": 32, "resnet": 16, "stylegan2": 16, "biggan": 16}
#: options beyond the paper defaults and the width: biggan is conditional (16 classes)
ARCH_OPTIONS: dict[str, list[str]] = {"dcgan": [], "resnet": [], "stylegan2": [],
                                      "biggan": ["--conditional"]}
DEFAULT_ARCHS = ("dcgan", "resnet", "stylegan2")


def iterations_for_budget(budget_s: float, cost_s: float, *, multiple: int = 1,
                          minimum: int = 1) -> int:
    """Iterations whose total cost ``cost_s`` each fills ``budget_s`` CPU seconds.

    Rounded down to a ``multiple`` (n_dis: so the run ends on a whole G+D round), never
    below ``minimum``. Raises ValueError for a non-positive budget or cost.
    """
    if not (budget_s > 0 and cost_s > 0 and math.isfinite(budget_s) and math.isfinite(cost_s)):
        raise ValueError(f"budget {budget_s!r} s and cost {cost_s!r} s/iteration must be "
                         "positive and finite")
    if multiple < 1:
        raise ValueError(f"multiple must be at least 1, got {multiple}")
    n = int(budget_s / cost_s) // multiple * multiple
    return max(n, minimum)


def step_cost(plain_s: list[float], penalty_s: float | None, penalty_every: int) -> float:
    """Mean CPU seconds per iteration: plain steps, plus the penalty step's extra every k.

    ``plain_s`` are the times of consecutive updates covering whole G+D rounds (so the
    generator steps are in their share); ``penalty_s`` is one update with the penalty on.
    """
    if not plain_s:
        raise ValueError("no timed steps")
    plain = sum(plain_s) / len(plain_s)
    if penalty_s is None:
        return plain
    return plain + max(penalty_s - plain, 0.0) / penalty_every


def train_options(arch: str, args: argparse.Namespace) -> list[str]:
    """The ``gankit train`` options of ``arch`` that do not depend on the budget."""
    return ["--data", "shapes32", "--arch", arch, *ARCH_OPTIONS[arch], "--width",
            str(args.width[arch]), "--seed", str(args.seed), "--ema", str(args.ema)]


def calibrate(arch: str, argv: list[str], steps: int, warmup: int) -> dict[str, Any]:
    """In this process: per-iteration CPU seconds of the updater ``gankit train argv`` builds."""
    import torch

    from gankit.cli.parser import build_parser
    from gankit.cli.recipes import get_recipe
    from gankit.cli.train import apply_defaults, resolve_config
    from gankit.data import load_dataset

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:  # an empty --out: a fresh run's options
        cfg, _ = resolve_config(build_parser().parse_args(["train", *argv, "--out", out]))
    recipe = get_recipe(cfg.model.recipe)
    train = load_dataset(cfg.dataset.data, "train")
    cfg = apply_defaults(cfg, recipe, train).merged({"device": "cpu"})
    cfg.validate()
    torch.manual_seed(cfg.run.seed)
    updater = recipe.build(cfg, train)
    for _ in range(warmup):
        updater.update()
    # Whole G+D rounds (n_dis D steps, one G step) so the G step is in its share.
    n = max(1, math.ceil(steps / cfg.objective.n_dis)) * cfg.objective.n_dis
    times = []
    pen_every = getattr(updater, "penalty_every", 1)
    has_penalty = getattr(updater, "penalty", "none") != "none" and pen_every > 1
    for _ in range(n):
        # Skip the steps where a lazy penalty falls due: they are timed below.
        if has_penalty:
            while updater.iteration % pen_every == 0:
                updater.update()
        t0 = time.process_time()
        updater.update()
        times.append(time.process_time() - t0)
    penalty_s = None
    if has_penalty:
        updater.penalty_every = 1  # force one penalty step (same work as the k-th step)
        t0 = time.process_time()
        updater.update()
        penalty_s = time.process_time() - t0
        updater.penalty_every = pen_every
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in updater.raw_models.items()}
    return {"cost_s": step_cost(times, penalty_s, pen_every), "plain_s": times,
            "penalty_s": penalty_s, "n_dis": cfg.objective.n_dis, "width": cfg.model.width,
            "z_dim": cfg.model.z_dim, "batch_size": cfg.optim.batch_size,
            "loss": cfg.objective.loss, "penalty": cfg.objective.penalty,
            "penalty_every": cfg.objective.penalty_every,
            "lr": [cfg.optim.lr_gen, cfg.optim.lr_dis],
            "betas": [cfg.optim.beta1, cfg.optim.beta2], "gen_params": params["gen"],
            "dis_params": params["dis"]}


def parse_widths(specs: list[str]) -> dict[str, int]:
    """``WIDTHS`` updated by ``ARCH=N`` items; ValueError naming a bad one."""
    widths = dict(WIDTHS)
    for spec in specs:
        arch, sep, value = spec.partition("=")
        if not sep or arch not in WIDTHS or not value.isdigit() or int(value) < 1:
            raise ValueError(f"--width {spec!r} is not ARCH=N with ARCH one of "
                             f"{', '.join(WIDTHS)} and N a positive integer")
        widths[arch] = int(value)
    return widths


def _width_specs(widths: dict[str, int]) -> list[str]:
    return [f"{a}={w}" for a, w in widths.items()]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")


def _child(cmd: list[str], what: str) -> tuple[str, float, float]:
    """Run ``cmd``; its stdout, its CPU seconds (user + system, from wait4) and wall seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=_env(), stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{what} failed ({proc.returncode}):\n{err.read()[-3000:]}")
        return out.read(), usage.ru_utime + usage.ru_stime, wall


def run_arch(arch: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Calibrate, train for the budget and evaluate one arch; its figures."""
    opts = train_options(arch, args)
    text, calib_cpu, _ = _child([sys.executable, __file__, "--calibrate", arch, "--calib-steps",
                                 str(args.calib_steps), "--seed", str(args.seed), "--ema",
                                 str(args.ema), "--width", *_width_specs(args.width)],
                                f"calibrating {arch}")
    cal = json.loads(text.strip().splitlines()[-1])
    iters = iterations_for_budget(args.budget, cal["cost_s"], multiple=cal["n_dis"],
                                  minimum=cal["n_dis"])
    run = out / arch
    _, train_cpu, train_wall = _child([
        sys.executable, "-m", "gankit", "train", *opts, "--iterations", str(iters),
        "--sample-every", str(iters), "--snapshot-every", str(iters),
        "--log-every", str(max(1, iters // 20)), "--out", str(run), "--quiet",
    ], f"gankit train --arch {arch}")
    _, eval_cpu, _ = _child([sys.executable, "-m", "gankit", "eval", str(run), "--metrics",
                             "fid,kid,pr,classes", "-n", str(args.n), "--seed",
                             str(args.seed)], f"gankit eval {run}")
    record = json.loads((run / "metrics.json").read_text())["records"][-1]
    print(f"  {arch:<10} {iters} iterations at {cal['cost_s']:.3f} CPU-s: trained in "
          f"{train_cpu:.0f} CPU-s ({train_wall:.0f} s wall), FID "
          f"{record['metrics']['fid']:.2f}", file=sys.stderr, flush=True)
    return {"arch": arch, "iterations": iters, "calib": cal, "calib_cpu": calib_cpu,
            "train_cpu": train_cpu, "train_wall": train_wall, "eval_cpu": eval_cpu,
            "metrics": record["metrics"], "floor": record["floor"], "run": str(run)}


COLUMNS = (("fid", "FID", "{:.2f}"), ("kid", "KID", "{:.3g}"), ("precision", "prec", "{:.3f}"),
           ("recall", "recall", "{:.3f}"), ("classes", "classes", "{:.0f}"),
           ("class_kl", "class KL", "{:.3f}"))


def table(rows: list[dict[str, Any]], budget: float) -> str:
    """The figures as printed: one row per arch, the floor, FID against dcgan's."""
    base = next((r["metrics"]["fid"] for r in rows if r["arch"] == "dcgan"), None)
    head = (f"{'arch':<10}{'width':>6}{'iters':>7}{'CPU-s/it':>9}{'train CPU-s':>12}"
            + "".join(f"{t:>10}" for _, t, _ in COLUMNS) + f"{'FID/dcgan':>10}")
    lines = [head]
    for r in rows:
        m = r["metrics"]
        ratio = f"{m['fid'] / base:.2f}" if base else "-"
        lines.append(f"{r['arch']:<10}{r['calib']['width']:>6}{r['iterations']:>7}"
                     f"{r['calib']['cost_s']:>9.3f}{r['train_cpu']:>12.0f}"
                     + "".join(f"{f.format(m[k]):>10}" for k, _, f in COLUMNS) + f"{ratio:>10}")
    floor = rows[0]["floor"]
    lines.append(f"{'real floor':<43}" + "".join(f"{f.format(floor[k]):>10}"
                                                 for k, _, f in COLUMNS))
    return "\n".join(lines)


def main() -> int:
    ap = harness.parser(__doc__.splitlines()[0], jobs=2)
    ap.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS), choices=list(ARCH_OPTIONS))
    ap.add_argument("--budget", type=float, default=360.0,
                    help="CPU seconds of one thread of training per arch")
    ap.add_argument("--calib-steps", type=int, default=5,
                    help="timed updates per arch (rounded up to whole n_dis rounds)")
    ap.add_argument("--width", nargs="+", default=[], metavar="ARCH=N",
                    help=f"override a width (defaults: {' '.join(_width_specs(WIDTHS))})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ema", type=float, default=0.99,
                    help="EMA decay of the scored generator, the same for every arch (0.999 "
                         "would still be mostly the initial weights after a few hundred steps)")
    ap.add_argument("-n", type=int, default=2000, help="samples per evaluation")
    ap.add_argument("--calibrate", default=None, help=argparse.SUPPRESS)  # internal
    args = ap.parse_args()
    try:
        args.width = parse_widths(args.width)
    except ValueError as exc:
        ap.error(str(exc))
    if args.calibrate:
        argv = train_options(args.calibrate, args)
        print(json.dumps(calibrate(args.calibrate, argv, args.calib_steps, warmup=2)))
        return 0
    archs = args.archs if "dcgan" in args.archs else ["dcgan", *args.archs]
    start = time.perf_counter()
    with harness.out_dir(args.out) as out:
        # One iteration first, so the feature classifier is trained (and cached) before any
        # timed run: otherwise the first runs to finish would each pay for it.
        _, warm_cpu, _ = _child([sys.executable, "-m", "gankit", "train", "--data", "shapes32",
                                 "--iterations", "1", "--out", str(out / "warm-up"),
                                 "--quiet"], "the warm-up run")
        print(f"  feature cache warm-up: {warm_cpu:.0f} CPU-s", file=sys.stderr, flush=True)
        rows = list(harness.run_jobs(lambda a: run_arch(a, args, out), archs, args.jobs))
    wall = time.perf_counter() - start
    cpu = sum(r["calib_cpu"] + r["train_cpu"] + r["eval_cpu"] for r in rows)
    print(f"shapes32 (32x32 RGB, 16 classes), equal compute: {args.budget:g} CPU-seconds of one "
          f"thread of training per arch, seed {args.seed}, EMA {args.ema:g}; gankit eval "
          f"-n {args.n} in gankit's shapes32 features (floor: train vs val)")
    for r in rows:
        c = r["calib"]
        print(f"  {r['arch']}: G {c['gen_params']:,} / D {c['dis_params']:,} params, width "
              f"{c['width']}, z {c['z_dim']}, batch {c['batch_size']}, {c['loss']} loss, "
              f"penalty {c['penalty']}"
              + (f" every {c['penalty_every']}" if c["penalty"] != "none" else "")
              + f", n_dis {c['n_dis']}, lr {c['lr'][0]:g}/{c['lr'][1]:g}, betas "
              f"({c['betas'][0]:g}, {c['betas'][1]:g})")
    print(table(rows, args.budget))
    print(f"{wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min in all (calibration, training, "
          f"evaluation)")
    harness.write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
