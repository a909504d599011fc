"""The digits demo against issue 13's target (precision >= 0.80, recall >= 0.850): variants.

Each variant is ``gankit train --data digits`` (200 epochs, IMAGE_DEFAULTS otherwise) plus
its options, then ``gankit eval`` on the run (2,000 EMA samples vs the 300 held-out digits,
k=3 precision/recall in gankit's digits-classifier features), each in its own process so
its CPU seconds are the training process's alone (a shared machine inflates wall time, not
CPU time). The baseline, today's defaults, runs in the same invocation. Every variant is a
command line: the script uses gankit's public interface only. ``--z-scales 1.2,1.3`` adds a
table of how each run's samples spread (see ``dispersion``). Run from the repository root
(about 1.5 CPU-minutes per variant):

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/digits_demo_study.py \\
        --variants defaults,lr5e-4,cond --seed 0
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

import _harness as harness
from _harness import gankit_command, run
from torch import nn

# name -> the options added to `gankit train --data digits`
VARIANTS: dict[str, list[str]] = {
    "defaults": [],
    "lr5e-4": ["--lr-gen", "5e-4", "--lr-dis", "5e-4"],
    "lr1e-3": ["--lr-gen", "1e-3", "--lr-dis", "1e-3"],
    "lr5e-4-beta1-0": ["--lr-gen", "5e-4", "--lr-dis", "5e-4", "--beta1", "0"],
    "width64": ["--width", "64"],
    "cond-lr5e-4": ["--conditional", "--lr-gen", "5e-4", "--lr-dis", "5e-4"],
    "diffaug-t": ["--augment", "diffaug:translation"],
    "diffaug-tc": ["--augment", "diffaug:translation,cutout"],
    "ada": ["--augment", "ada"],
    "ada-kimg100": ["--augment", "ada:0.6:100"],
    "lecam0.01": ["--lecam", "0.01"],
    "lecam0.1": ["--lecam", "0.1"],
    "cond-lecam0.01": ["--conditional", "--lecam", "0.01"],
    "cond-lecam0.1": ["--conditional", "--lecam", "0.1"],
    "bcr1": ["--bcr", "1"],
    "bcr10": ["--bcr", "10"],
    "cond-bcr10": ["--conditional", "--bcr", "10"],
    "ema0.995": ["--ema", "0.995"],
    "ema0.9995": ["--ema", "0.9995"],
    "cond-ema0.9995": ["--conditional", "--ema", "0.9995"],
    "z64": ["--z-dim", "64"],
    "cond-bs128-lr4e-4": ["--conditional", "--batch-size", "128", "--lr-gen", "4e-4", "--lr-dis",
                         "4e-4"],
    "cond-r1-0.1": ["--conditional", "--penalty", "r1", "--penalty-weight", "0.1"],
    "cond-width64-e100": ["--conditional", "--width", "64", "--epochs", "100"],
    "cond-width48-e130": ["--conditional", "--width", "48", "--epochs", "130"],
    "cond-e100": ["--conditional", "--epochs", "100"],
    "minimax": ["--loss", "minimax"],
    "cond-minimax": ["--conditional", "--loss", "minimax"],
    "cond-lsgan": ["--conditional", "--loss", "lsgan"],
    "cond-hinge": ["--conditional", "--loss", "hinge"],
    "cond-lrgen1e-4": ["--conditional", "--lr-gen", "1e-4"],
    "cond-lrgen5e-5": ["--conditional", "--lr-gen", "5e-5"],
    "cond-ttur-5e-5": ["--conditional", "--lr-gen", "5e-5", "--lr-dis", "4e-4"],
    "cond-ttur-decay50": ["--conditional", "--lr-gen", "1e-4", "--lr-dis", "4e-4", "--lr-decay",
                         "linear", "--lr-decay-start", "0.5"],
    "cond": ["--conditional"],
    "cond-ttur-decay": ["--conditional", "--lr-gen", "1e-4", "--lr-dis", "4e-4", "--lr-decay",
                       "linear"],
    "cond-ttur-decay75": ["--conditional", "--lr-gen", "1e-4", "--lr-dis", "4e-4", "--lr-decay",
                         "linear", "--lr-decay-start", "0.75"],
    "cond-ttur-z64-decay50": ["--conditional", "--lr-gen", "1e-4", "--lr-dis", "4e-4", "--z-dim",
                             "64", "--lr-decay", "linear", "--lr-decay-start", "0.5"],
    "cond-ndis2": ["--conditional", "--n-dis", "2"],
    "cond-ttur": ["--conditional", "--lr-gen", "1e-4", "--lr-dis", "4e-4"],
    "cond-lrdis4e-4": ["--conditional", "--lr-dis", "4e-4"],
    "cond-lrgen4e-4": ["--conditional", "--lr-gen", "4e-4"],
}


class ScaledNoise(nn.Module):
    """A generator whose noise is ``scale`` times the wrapped generator's: composition, so
    ``generate`` draws with a wider (or narrower) z and nothing of gankit is patched."""

    def __init__(self, gen: nn.Module, scale: float) -> None:
        super().__init__()
        self.gen, self.scale = gen, scale
        self.n_classes = int(getattr(gen, "n_classes", 0))

    def sample_z(self, n: int, device: Any = None, generator: Any = None) -> Any:
        return self.gen.sample_z(n, device=device, generator=generator) * self.scale

    def forward(self, z: Any, y: Any = None) -> Any:
        return self.gen(z, y)


def dispersion(run: str, scales: list[float]) -> dict[str, Any]:
    """How the run's 2,000 EMA samples spread, in the eval's features: precision/recall with
    z scaled by each of ``scales`` at sampling (eval's seed 0), and against 300 training
    digits instead of the held-out ones (memorisation would raise that recall), and each
    class's mean distance to its centroid over the training digits' (classes as the feature
    classifier predicts them for the samples)."""
    import torch

    from gankit.cli.runs import load_run
    from gankit.extensions.ema import sampling_model
    from gankit.gan.sampling import generate
    from gankit.metrics.features import extract_features
    from gankit.metrics.precision_recall import precision_recall
    from gankit.metrics.scoring import feature_space, real_subset, to_unit

    _, _, trainer, train, val = load_run(run, "cpu")
    space = feature_space(train, val, device="cpu")
    assert space.classify is not None

    def features(x: Any) -> Any:
        return extract_features(space.features, to_unit(x), space.batch_size, device="cpu")

    def spread(f: Any, y: Any, c: int) -> float:
        return float((f[y == c] - f[y == c].mean(0)).norm(dim=1).mean())

    gen = sampling_model(trainer, "gen")
    real, train_feat = features(val.x), features(train.x)
    out: dict[str, Any] = {}
    for scale in scales:
        fake = features(generate(ScaledNoise(gen, scale), 2000, seed=0))
        out[f"{scale:g}"] = precision_recall(real, fake)
        if scale == 1.0:
            out["vs train"] = precision_recall(features(real_subset(train, 300, 1).x), fake)
            with torch.no_grad():
                pred = space.classify(fake).argmax(1)
            out["spread"] = [spread(fake, pred, c) / spread(train_feat, train.y, c)
                             for c in range(space.n_classes)]
    return out


def run_variant(name: str, seed: int, epochs: int, out: Path,
                scales: list[float] | None = None) -> dict[str, Any]:
    """Train and score one variant; its train CPU seconds, iteration and metrics."""
    options = VARIANTS[name]
    run_dir = out / f"{name}-s{seed}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run(gankit_command("train", "--data", "digits", "--out", str(run_dir), "--quiet", "--seed",
                       str(seed), "--epochs", str(epochs), *options))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run(gankit_command("eval", str(run_dir)))
    record = json.loads((run_dir / "metrics.json").read_text())["records"][-1]
    row = {"name": name, "options": " ".join(options), "cpu": cpu, **record["metrics"],
           "floor": record["floor"]}
    if scales:
        done = run([sys.executable, str(Path(__file__).resolve()), "--z-scales-of", str(run_dir),
                    ",".join(map(str, scales))])
        row["dispersion"] = json.loads(done.stdout.splitlines()[-1])
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--z-scales-of"]:  # a child: one run's dispersion as JSON
        print(json.dumps(dispersion(argv[1], [float(v) for v in argv[2].split(",")])))
        return 0
    parser = harness.parser(__doc__.splitlines()[0])
    parser.add_argument("--variants", default="defaults,lr5e-4",
                        help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--z-scales", default=None, metavar="S1,S2,...",
                        help="also score each run with z scaled by these at sampling, "
                             "against training digits, and its per-class spread")
    args = parser.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if "defaults" not in names:
        names.insert(0, "defaults")  # the baseline is always measured in the same run
    scales = sorted({1.0, *map(float, args.z_scales.split(","))}) if args.z_scales else None
    with harness.out_dir(args.out) as out:
        rows = []
        for name in names:  # one at a time: each run's CPU seconds are its own
            rows.append(run_variant(name, args.seed, args.epochs, out, scales))
            r = rows[-1]
            print(f"{name}: FID {r['fid']:.2f} P {r['precision']:.3f} R {r['recall']:.3f} "
                  f"({r['cpu']:.0f} CPU s)", file=sys.stderr, flush=True)
    harness.write_json(args.json, rows)
    base = rows[0]
    print(f"\ndigits demo, {args.epochs} epochs, seed {args.seed}; target precision >= 0.80 "
          "and recall >= 0.850")
    print("| variant | options | train CPU s (x defaults) | FID | precision | recall | meets |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        meets = r["precision"] >= 0.80 and r["recall"] >= 0.850
        options = f"`{r['options']}`" if r["options"] else "(none)"
        print(f"| {r['name']} | {options} | {r['cpu']:.0f} ({r['cpu'] / base['cpu']:.2f}) "
              f"| {r['fid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{'yes' if meets else 'no'} |")
    f = base["floor"]
    print(f"| real floor (train vs val) | | | {f['fid']:.2f} | {f['precision']:.3f} | "
          f"{f['recall']:.3f} | |")
    if scales:
        print("\nprecision / recall with z scaled at sampling; against 300 training digits; "
              "per-class feature spread over the training digits' (min-max)")
        print("| variant | " + " | ".join(f"z x {s:g}" for s in scales)
              + " | vs train | spread |")
        print("|---|" + "---|" * (len(scales) + 2))
        for r in rows:
            d = r["dispersion"]
            cells = [f"{d[f'{s:g}'][0]:.3f} / {d[f'{s:g}'][1]:.3f}" for s in scales]
            spread = f"{min(d['spread']):.2f}-{max(d['spread']):.2f}"
            print(f"| {r['name']} | " + " | ".join(cells)
                  + f" | {d['vs train'][0]:.3f} / {d['vs train'][1]:.3f} | {spread} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
