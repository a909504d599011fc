"""Data efficiency: dcgan and resnet on 10% of digits at 32x32, without and with augmentation.

Runs ``gankit train --data digits --image-size 32 --train-fraction 0.1`` (150 training
images, class-stratified) once per arch, method and seed, same iterations within an arch, then
``gankit eval`` on each run: FID (and KID) of the EMA generator's samples against the val split
(300 images) in the features of gankit's digits classifier, beside the real floor (the whole
train split against the val split, what a perfect generator would score). The feature
classifier and the floor use the whole train split, so every method is measured on one scale.
The run's own evaluator scores the same features every ``--eval-every`` iterations, which gives
each run's FID curve (the papers' point is what happens late, once D has memorised the set).

Methods: none, DiffAugment with its full policy (color,translation,cutout) and without colour
(translation,cutout: on grey digits colour is only brightness and contrast), ADA (target 0.6).
ADA at the paper's speed (p 0 -> 1 in 500k images) would not move in a run this short, so it
runs at ARCHS' ``ada_kimg`` (dcgan 5: p can go 0 -> 1 in 5k images; resnet 25, the same speed
per generator step) or ``--ada-kimg`` for every arch. Each arch runs at its own
recipe defaults (resnet: SNGAN's hinge loss, n_dis 5, Adam(2e-4, 0, 0.9)) and the width in
ARCHS. Runs go side by side (``--jobs``); a run directory under ``--out`` that already holds
its result is read back, not rerun, so an interrupted benchmark resumes.

Measured on 2026-12-01: dcgan's four runs side by side (``--jobs 8``, with resnet then at
1,000 iterations) took 57 min of wall clock on two CPU cores shared with other jobs (load
11-33); resnet's four at 10,000 iterations 450-530 s each, two at a time, on a quiet machine.

    .venv/bin/python benchmarks/data_efficiency.py --out /tmp/deff/bench --jobs 8  # README
    .venv/bin/python benchmarks/data_efficiency.py --out /tmp/deff/bench --curves  # so far
    .venv/bin/python benchmarks/data_efficiency.py --archs dcgan --image-size 16 \\
        --iterations 3000 --eval-every 500 --methods none,diffaug,diffaug-tc  # longer, cheaper
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import _harness as harness

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from gankit.extensions.log_report import read_log  # noqa: E402

#: per arch: the width, the iterations (discriminator steps), the iterations between the
#: run's own FID evaluations and ADA's speed (thousands of reals for p to go 0 -> 1): resnet's
#: D sees n_dis = 5 real batches per generator step, so its kimg is 5x dcgan's, which moves p
#: at the same speed per generator step
ARCHS = {"dcgan": {"width": 16, "iterations": 2000, "eval_every": 500, "ada_kimg": 5.0},
         "resnet": {"width": 8, "iterations": 10000, "eval_every": 2500, "ada_kimg": 25.0}}
METHODS = {"none": "none", "diffaug": "diffaug:color,translation,cutout",
           "diffaug-tc": "diffaug:translation,cutout", "ada": "ada:0.6:{kimg}"}


def _gankit(argv: list[str]) -> None:
    """``python -m gankit ARGV`` in its own process (so runs can go side by side)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "gankit", *argv], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gankit {' '.join(argv)} failed:\n{done.stderr[-2000:]}")


def _settings(arch: str, args: argparse.Namespace) -> tuple[int, int, int, float]:
    """(width, iterations, eval_every, ada_kimg) of ``arch``: ARCHS' unless given on the
    command line."""
    width = args.width or ARCHS[arch]["width"]
    iterations = args.iterations or ARCHS[arch]["iterations"]
    return (int(width), int(iterations), int(args.eval_every or ARCHS[arch]["eval_every"]),
            float(args.ada_kimg or ARCHS[arch]["ada_kimg"]))


def _spec(arch: str, name: str, args: argparse.Namespace) -> str:
    """The ``--augment`` value of method ``name`` for ``arch``."""
    return METHODS[name].format(kimg=f"{_settings(arch, args)[3]:g}")


def _run_dir(arch: str, name: str, seed: int, args: argparse.Namespace, out: Path) -> Path:
    width, iterations, _, kimg = _settings(arch, args)
    size = "" if args.image_size == 32 else f"-r{args.image_size}"
    # ADA's directory names its speed, so a run at another speed is not read back for it.
    method = f"{name}-k{kimg:g}" if name == "ada" else name
    return out / f"{arch}{size}-w{width}-i{iterations}-{method}-s{seed}"


def train(arch: str, name: str, seed: int, args: argparse.Namespace, run: Path) -> None:
    width, iterations, eval_every, _ = _settings(arch, args)
    spec = _spec(arch, name, args)
    _gankit([
        "train", "--data", "digits", "--image-size", str(args.image_size),
        "--train-fraction", str(args.fraction),
        "--arch", arch, "--iterations", str(iterations), "--batch-size", str(args.batch_size),
        "--width", str(width), "--ema", str(args.ema), "--seed", str(seed), "--augment", spec,
        "--sample-every", str(eval_every), "--snapshot-every", str(iterations),
        "--log-every", str(max(1, eval_every // 10)), "--out", str(run), "--quiet",
    ])


def run_one(arch: str, name: str, seed: int, args: argparse.Namespace,
            out: Path) -> dict[str, object]:
    """Train and score one run; its result is cached in ``result.json`` beside it."""
    width, iterations, _, _ = _settings(arch, args)
    run = _run_dir(arch, name, seed, args, out)
    cached = run / "result.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    if not (run / f"snapshot_iter_{iterations}.pt").is_file():
        if run.exists():  # an interrupted run: start it again
            shutil.rmtree(run)
        train(arch, name, seed, args, run)
    _gankit(["eval", str(run), "--metrics", "fid,kid", "-n", str(args.n)])
    metrics = json.loads((run / "metrics.json").read_text())["records"][-1]
    log = read_log(run / "log.json")
    curve = {str(e["iteration"]): e["val/fid"] for e in log if "val/fid" in e}
    last = [e for e in log if "dis/real" in e][-1]
    result = {"arch": arch, "method": name, "seed": seed, "width": width,
              "iterations": iterations, "fid": metrics["metrics"]["fid"],
              "kid": metrics["metrics"]["kid"], "floor_fid": metrics["floor"]["fid"],
              "floor_kid": metrics["floor"]["kid"], "curve": curve,
              "p": log[-1].get("aug/p", last.get("aug/p", float("nan"))),
              "dis_real": last["dis/real"], "dis_fake": last["dis/fake"],
              "train_s": log[-1]["elapsed_time"]}
    cached.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _mean_spread(values: list[float]) -> str:
    """``mean ± half the range`` (one seed: the value alone)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {(max(values) - min(values)) / 2:.2f}"


def print_curves(jobs: list[tuple[str, str, int]], args: argparse.Namespace, out: Path) -> None:
    """Each run's logged FID so far: a look at unfinished runs (no final evaluation)."""
    for arch, name, seed in jobs:
        run = _run_dir(arch, name, seed, args, out)
        path = run / "log.json"
        log = read_log(path) if path.is_file() else []  # a torn last line: skipped, noticed
        curve = " ".join(f"{e['iteration']}:{e['val/fid']:.1f}" for e in log if "val/fid" in e)
        at = log[-1]["iteration"] if log else 0
        print(f"{arch:<7}{name:<11} seed {seed}: iteration {at:>5}  FID {curve or '-'}")


def main_benchmark() -> None:
    ap = harness.parser(__doc__.splitlines()[0], jobs=4, seeds="1")
    ap.add_argument("--archs", default="dcgan,resnet", help=f"comma-separated: {','.join(ARCHS)}")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help=f"comma-separated: {','.join(METHODS)}")
    ap.add_argument("--iterations", type=int, default=None,
                    help="for every arch (default: ARCHS' per-arch iterations)")
    ap.add_argument("--width", type=int, default=None, help="for every arch (default: ARCHS')")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=32,
                    help="the issue's is 32; 16 is a 4x cheaper proxy for long runs (dcgan only)")
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--ada-kimg", type=float, default=None,
                    help="ADA's speed for every arch (default: ARCHS' per-arch value)")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="iterations between the run's own FID evaluations, the curve "
                         "(default: ARCHS' per-arch value)")
    ap.add_argument("--ema", type=float, default=0.99,
                    help="EMA decay of the scored generator (the recipe's 0.999 would still "
                         "be mostly the initial weights after a few hundred steps)")
    ap.add_argument("-n", type=int, default=2000, help="samples per final evaluation")
    ap.add_argument("--curves", action="store_true",
                    help="only print the FID curves the runs under --out have logged so far "
                         "(finished or not); train and score nothing")
    args = ap.parse_args()
    archs = [a for a in args.archs.split(",") if a]
    methods = [m for m in args.methods.split(",") if m]
    for bad, known, what in ((set(archs) - set(ARCHS), ARCHS, "--archs"),
                             (set(methods) - set(METHODS), METHODS, "--methods")):
        if bad:
            raise SystemExit(f"{what}: unknown {sorted(bad)}; choose from {','.join(known)}")
    jobs = [(arch, name, seed) for seed in args.seeds for arch in archs
            for name in methods]
    if args.curves:
        if args.out is None:
            raise SystemExit("--curves reads the runs under --out: give --out DIR.")
        print_curves(jobs, args, Path(args.out))
        return
    with harness.out_dir(args.out) as out:
        results = list(harness.run_jobs(lambda job: run_one(*job, args, out), jobs, args.jobs))
    harness.write_json(args.json, results)
    for r in results:
        print(f"  {r['arch']:<7}{r['method']:<11} seed {r['seed']}: FID {r['fid']:.2f} curve "
              + " ".join(f"{k}:{v:.1f}" for k, v in r["curve"].items())
              + f" (D real {r['dis_real']:.2f}, fake {r['dis_fake']:.2f}, {r['train_s']:.0f} s)",
              file=sys.stderr, flush=True)
    print(f"digits {args.image_size}x{args.image_size}, {args.fraction:g} of train, batches of "
          f"{args.batch_size}, EMA {args.ema:g}, {len(args.seeds)} seed(s) (mean ± half range); "
          "FID "
          f"of {args.n} samples in gankit's digits features")
    for arch in archs:
        rows = [r for r in results if r["arch"] == arch]
        base = statistics.fmean(r["fid"] for r in rows if r["method"] == "none") \
            if "none" in methods else float("nan")
        print(f"\n{arch}, width {rows[0]['width']}, {rows[0]['iterations']} iterations; "
              f"real floor FID {rows[0]['floor_fid']:.2f}, KID {rows[0]['floor_kid']:.4g}")
        points = sorted(rows[0]["curve"], key=int)
        print(f"{'augment':<12}{'FID':>16}{'KID':>16}{'vs none':>9}{'final p':>9}  "
              + "  ".join(f"{'FID@' + str(k):>9}" for k in points))
        for name in methods:
            rs = [r for r in rows if r["method"] == name]
            fid = statistics.fmean(r["fid"] for r in rs)
            p = statistics.fmean(r["p"] for r in rs)
            curve = [statistics.fmean(r["curve"][k] for r in rs) for k in points]
            label = _spec(arch, name, args) if name == "ada" else name
            print(f"{label:<12}{_mean_spread([r['fid'] for r in rs]):>16}"
                  f"{_mean_spread([r['kid'] for r in rs]):>16}{fid / base:>9.2f}"
                  f"{(f'{p:.3f}' if p == p else '-'):>9}  "
                  + "  ".join(f"{v:>9.2f}" for v in curve))


if __name__ == "__main__":
    main_benchmark()
