"""What the feature classifier's time bound costs in metric quality, on 64 x 64 images.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/classifier_budget.py

gankit's evaluator trains its feature classifier for at most 1,000 steps and, by default, at
most 300 s (``CLASSIFIER_OPTIONS``; the time bound lowers the step count from the measured
pace and anneals the learning rate over what is left). This script trains it on shapes32 at
``--image-size`` (default 64) with the step bound alone (the baseline) and with each time
bound of ``--seconds``, and prints for each: the steps taken, the training time, the
held-out accuracy, and what FID reads in its feature space for held-out reals against
training reals (the floor), lightly and strongly blurred held-out reals, half the classes
only, and noise. A bound costs quality where its FIDs separate these less than the
baseline's do, or in another order.
"""

from __future__ import annotations

import tempfile
import time

import torch
import torch.nn.functional as F
from _harness import parser, write_json

from gankit.data import load_shapes32
from gankit.metrics import extract_features, frechet_distance
from gankit.metrics.features import cached_classifier
from gankit.metrics.scoring import CLASSIFIER_OPTIONS


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel convolved with a Gaussian of ``sigma`` pixels (reflect-padded)."""
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t**2 / (2 * sigma**2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def main() -> None:
    p = parser(__doc__.splitlines()[0], out=False)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--seconds", default="300,120", help="time bounds to try (comma-separated)")
    args = p.parse_args()
    train = load_shapes32("train", image_size=args.image_size)
    val = load_shapes32("val", image_size=args.image_size)
    assert train.y is not None and val.y is not None
    gen = torch.Generator().manual_seed(0)
    half = val.x[val.y < val.n_classes // 2]
    probes = {
        "train reals": train.x[torch.randperm(len(train.x), generator=gen)[:len(val.x)]],
        "blur 0.5 px": blur(val.x, 0.5),
        "blur 1.5 px": blur(val.x, 1.5),
        "half the classes": half,
        "noise": torch.rand(val.x.shape, generator=gen) * 2 - 1,
    }
    options = {k: v for k, v in CLASSIFIER_OPTIONS.items() if k != "max_seconds"}
    bounds: list[float | None] = [None, *(float(s) for s in args.seconds.split(","))]
    rows = []
    for bound in bounds:
        with tempfile.TemporaryDirectory() as cache:
            wall, cpu = time.perf_counter(), time.process_time()
            model, acc = cached_classifier(train.x, train.y, val.x, val.y,
                                           n_classes=train.n_classes, cache_dir=cache,
                                           max_seconds=bound, **options)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        real = extract_features(model.features, val.x)
        fids = {name: frechet_distance(real, extract_features(model.features, x))
                for name, x in probes.items()}
        rows.append({"max_seconds": bound, "steps": model.trained_steps, "wall_s": wall,
                     "cpu_s": cpu, "accuracy": acc, "fid": fids})
    names = list(probes)
    print(f"shapes32 at {args.image_size} x {args.image_size}: {len(train.x)} train / "
          f"{len(val.x)} val images, {torch.get_num_threads()} thread(s)")
    print("| time bound | steps | wall s | CPU s | accuracy | " + " | ".join(names) + " |")
    print("|---" * (5 + len(names)) + "|")
    for r in rows:
        bound = "none (baseline)" if r["max_seconds"] is None else f"{r['max_seconds']:g} s"
        fid = " | ".join(f"{r['fid'][n]:.3g}" for n in names)
        print(f"| {bound} | {r['steps']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
              f"{r['accuracy']:.1%} | {fid} |")
    for r in rows[1:]:
        same = sorted(names, key=r["fid"].get) == sorted(names, key=rows[0]["fid"].get)
        print(f"{r['max_seconds']:g} s: probes in the baseline's order: {same}")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
