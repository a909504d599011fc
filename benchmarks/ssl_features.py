"""Does the self-supervised feature space of unlabelled images measure what FID should?
Run from the repository root:

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/ssl_features.py \\
        [--stackedmnist DIR] [--iterations 3200]

Part 1, known degradations. For each data set (digits, shapes32, and Stacked MNIST when its
MNIST idx folder is given) the self-supervised network is trained on the training images with
their labels removed, as ``gankit train`` trains it for an unlabelled folder
(``gankit.metrics.scoring.feature_space``, the defaults of ``SSL_OPTIONS``), and FID is taken
between the held-out images and probes built from an independent sample of training images of
the same size: the sample itself, lightly blurred (a Gaussian of sigma = side / 32 pixels, at
least 0.5), strongly blurred (twice that), uniform noise, and a sample drawn from half the
classes only (fewer modes; the labels build that probe and nothing else). What FID should
show: real < light blur < strong blur < noise, and half the classes > real. The baseline,
measured in the same run: the same probes in the feature space gankit uses when the labels
are kept (the classifier; for Stacked MNIST, the digit classifier's features of each
channel).

Part 2, a training run. A digits DCGAN (the command line's defaults) is trained for
``--iterations``; at 8 log-spaced iterations from 100 on, its EMA generator draws 2,000
samples, scored by the classifier's FID and by the self-supervised FID (the networks of part
1). Printed: both series and their Spearman rank correlation (target >= 0.9).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from typing import Any

import _harness as harness

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(harness.SRC))

import torch
from classifier_budget import blur
from scipy.stats import spearmanr

from gankit.data import ArrayDataset, load_dataset
from gankit.metrics import extract_features, frechet_distance
from gankit.metrics.scoring import feature_space, real_subset
from gankit.training.triggers import ManualScheduleTrigger

PROBES = ("real", "light blur", "strong blur", "noise", "half the classes")
N_GENERATED = 2000


def unlabelled(data: Any) -> ArrayDataset:
    """The same images with no labels: what a user's folder of images is."""
    return ArrayDataset(x=data.x, kind="image", name=f"{data.name} without labels",
                        low=data.low, high=data.high, split=data.split)


def spaces(spec: str, split_kw: dict[str, Any]) -> tuple[Any, Any, Any, Any, dict[str, float]]:
    """(train, val, ssl space, classifier space, seconds to build each)."""
    train, val = load_dataset(spec, "train", **split_kw), load_dataset(spec, "val", **split_kw)
    t = time.perf_counter()
    ssl = feature_space(unlabelled(train), unlabelled(val))
    t_ssl = time.perf_counter() - t
    t = time.perf_counter()
    cls = feature_space(train, val)
    return train, val, ssl, cls, {"ssl_s": t_ssl, "classifier_s": time.perf_counter() - t}


def probes(train: Any, n: int) -> dict[str, torch.Tensor]:
    """The degradations, each of ``n`` images in [-1, 1] from an independent training sample."""
    pool = real_subset(train, 3 * n, seed=1)
    assert pool.y is not None
    x = pool.unit(slice(None))
    sample, side = x[:n], x.shape[-1]
    noise = torch.rand(sample.shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    light = max(0.5, side / 32)
    return {"real": sample, "light blur": blur(sample, light),
            "strong blur": blur(sample, 2 * light), "noise": noise,
            "half the classes": x[pool.y < train.n_classes // 2][:n]}


def degradations(name: str, spec: str, split_kw: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    train, val, ssl, cls, seconds = spaces(spec, split_kw)
    held = real_subset(val, N_GENERATED).unit(slice(None))
    images = probes(train, len(held))
    row: dict[str, Any] = {"data": name, "n": len(held), **seconds, "ssl": ssl.description,
                           "classifier": cls.description}
    for key, space in (("ssl", ssl), ("classifier", cls)):
        real = extract_features(space.features, held)
        fid = {p: frechet_distance(real, extract_features(space.features, x))
               for p, x in images.items()}
        order = fid["real"] < fid["light blur"] < fid["strong blur"] < fid["noise"]
        row[key + "_fid"] = fid
        row[key + "_ok"] = order and fid["half the classes"] > fid["real"]
    return row, (train, val, ssl, cls)


def training_run(iterations: int, ssl: Any, cls: Any, val: Any) -> list[dict[str, float]]:
    from _recipe import recipe_trainer

    train = load_dataset("digits", "train")
    held = real_subset(val, N_GENERATED).unit(slice(None))
    scorers = {k: (s, extract_features(s.features, held))
               for k, s in (("ssl", ssl), ("classifier", cls))}
    first = min(100, iterations)  # before that the EMA generator barely moves
    at = sorted({round(first * (iterations / first) ** (i / 7)) for i in range(8)})
    rows: list[dict[str, float]] = []

    def checkpoint(trainer: Any) -> None:
        """Score the EMA generator's samples in both feature spaces."""
        samples = rec.sample(trainer, N_GENERATED, seed=12345)
        row = {"iteration": trainer.updater.iteration}
        for key, (space, real) in scorers.items():
            row[key] = frechet_distance(real, extract_features(space.features, samples))
        rows.append(row)

    with tempfile.TemporaryDirectory() as out:
        rec, trainer, _ = recipe_trainer("digits", train, 0, {"iterations": iterations,
                                                               "epochs": None}, out)
        # priority -1000: after the EMA has been updated
        trainer.extend(checkpoint, trigger=ManualScheduleTrigger(at, "iteration"),
                       priority=-1000)
        trainer.run()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__.splitlines()[0], out=False)
    p.add_argument("--stackedmnist", metavar="DIR", help="MNIST idx folder for Stacked MNIST")
    p.add_argument("--iterations", type=harness.positive_int, default=3200)
    p.add_argument("--skip-run", action="store_true", help="part 1 only")
    p.add_argument("--sets", default="digits,shapes32", help="data sets of part 1 (besides "
                   "Stacked MNIST); part 2 needs digits")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    sets: list[tuple[str, str, dict[str, Any]]] = [(s, s, {}) for s in args.sets.split(",")]
    if args.stackedmnist:
        sets.append(("Stacked MNIST", f"stackedmnist:{args.stackedmnist}", {"seed": 0}))
    rows, digits_spaces = [], None
    for name, spec, kw in sets:
        row, built = degradations(name, spec, kw)
        rows.append(row)
        if name == "digits":
            digits_spaces = built
        print(f"{name}: {row['ssl']} ({row['ssl_s']:.0f} s); {row['classifier']} "
              f"({row['classifier_s']:.0f} s)", flush=True)
    print("\n| data | feature space | " + " | ".join(PROBES) + " | order right |")
    print("|---" * (3 + len(PROBES)) + "|")
    for row in rows:
        for key, label in (("ssl", "self-supervised"), ("classifier", "labelled (baseline)")):
            fid = " | ".join(f"{row[key + '_fid'][p]:.3g}" for p in PROBES)
            print(f"| {row['data']} | {label} | {fid} | {'yes' if row[key + '_ok'] else 'no'} |")
    result: dict[str, Any] = {"degradations": rows}
    if not args.skip_run and digits_spaces is not None:
        _, val, ssl, cls = digits_spaces
        series = training_run(args.iterations, ssl, cls, val)
        rho = spearmanr([r["classifier"] for r in series], [r["ssl"] for r in series])[0]
        print("\n| iteration | classifier FID (baseline) | self-supervised FID |")
        print("|---|---|---|")
        for r in series:
            print(f"| {r['iteration']} | {r['classifier']:.3g} | {r['ssl']:.3g} |")
        print(f"\nSpearman rank correlation over {len(series)} checkpoints: {rho:.3f} "
              f"(target >= 0.9)")
        result.update(checkpoints=series, spearman=None if math.isnan(rho) else float(rho))
    harness.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
