"""Data efficiency: the dcgan recipe on 10% of digits at 32x32, without and with augmentation.

Runs ``gankit train --data digits --image-size 32 --train-fraction 0.1`` (150 training
images, class-stratified) once per method, same seed, same iterations, then ``gankit eval``
on each run: FID (and KID) of the EMA generator's samples against the val split (300 images)
in the features of gankit's digits classifier, beside the real floor (the whole train split
against the val split, what a perfect generator would score). The feature classifier and the
floor use the whole train split, so every method is measured on one scale.

Methods: none, DiffAugment (color,translation,cutout), ADA (target 0.6). ADA at the paper's
speed (p 0 -> 1 in 500k images) would not move in a run this short, so it runs at ``--ada-kimg``
(default 5: p can go 0 -> 1 in 5k images; the run sees 32k).
Run from the repository root; the three methods run side by side (``--jobs``). Measured on
2026-12-01: 39.6 min of wall clock on two CPU cores shared with ~8 other jobs (load 10-18),
3.9 CPU-minutes in all; on an idle machine the CPU time is the bound.

    .venv/bin/python benchmarks/data_efficiency.py  # --iterations 1000 --width 16 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent


def _gankit(argv: list[str]) -> None:
    """``python -m gankit ARGV`` in its own process (so methods can run side by side)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "gankit", *argv], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gankit {' '.join(argv)} failed:\n{done.stderr[-2000:]}")


def run_method(name: str, augment: str, args: argparse.Namespace, out: Path,
               seed: int) -> dict[str, float]:
    run = out / f"{name}-s{seed}"
    start = time.perf_counter()
    _gankit([
        "train", "--data", "digits", "--image-size", "32", "--train-fraction", str(args.fraction),
        "--iterations", str(args.iterations), "--batch-size", str(args.batch_size),
        "--width", str(args.width), "--ema", str(args.ema), "--seed", str(seed),
        "--augment", augment, "--sample-every", str(args.iterations),
        "--snapshot-every", str(args.iterations), "--log-every", str(max(1, args.iterations // 10)),
        "--out", str(run), "--quiet",
    ])
    train_s = time.perf_counter() - start
    _gankit(["eval", str(run), "--metrics", "fid,kid", "-n", str(args.n)])
    metrics = json.loads((run / "metrics.json").read_text())["records"][-1]
    log = [json.loads(line) for line in (run / "log.json").read_text().splitlines() if line]
    return {"fid": metrics["metrics"]["fid"], "kid": metrics["metrics"]["kid"],
            "floor_fid": metrics["floor"]["fid"], "floor_kid": metrics["floor"]["kid"],
            "p": log[-1].get("aug/p", float("nan")), "train_s": train_s}


def main_benchmark() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--ada-kimg", type=float, default=5.0)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--ema", type=float, default=0.99,
                    help="EMA decay of the scored generator (the recipe's 0.999 would still "
                         "be mostly the initial weights after a few hundred steps)")
    ap.add_argument("--jobs", type=int, default=3, help="runs side by side")
    ap.add_argument("-n", type=int, default=1000, help="samples per evaluation")
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temp dir)")
    args = ap.parse_args()
    methods = {"none": "none", "diffaug": "diffaug:color,translation,cutout",
               "ada": f"ada:0.6:{args.ada_kimg:g}"}
    jobs = [(name, spec, seed) for seed in range(args.seeds) for name, spec in methods.items()]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        out = Path(args.out or tmp)
        done = pool.map(lambda job: (job, run_method(job[0], job[1], args, out, job[2])), jobs)
        rows: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
        for (name, _, seed), r in done:
            rows[name].append(r)
            print(f"  {name:<8} seed {seed}: FID {r['fid']:.2f} (p {r['p']:.3f}, "
                  f"{r['train_s']:.0f} s)", file=sys.stderr, flush=True)
    floor = rows["none"][0]["floor_fid"]
    base = sum(r["fid"] for r in rows["none"]) / len(rows["none"])
    print(f"dcgan, digits 32x32, {args.fraction:g} of train, {args.iterations} iterations of "
          f"{args.batch_size}, width {args.width}, EMA {args.ema:g}, {args.seeds} seed(s); FID "
          f"in gankit's digits features, real floor {floor:.2f}")
    print(f"{'augment':<10}{'FID':>9}{'KID':>12}{'vs none':>9}{'final p':>9}{'train s':>9}")
    for name, rs in rows.items():
        fid = sum(r["fid"] for r in rs) / len(rs)
        kid = sum(r["kid"] for r in rs) / len(rs)
        p = rs[-1]["p"]
        secs = sum(r["train_s"] for r in rs) / len(rs)
        print(f"{name:<10}{fid:>9.2f}{kid:>12.4g}{fid / base:>9.2f}"
              f"{(f'{p:.3f}' if p == p else '-'):>9}{secs:>9.0f}")
    print(f"{'real floor':<10}{floor:>9.2f}{rows['none'][0]['floor_kid']:>12.4g}")


if __name__ == "__main__":
    main_benchmark()
