"""Sample quality of the default digits recipe against training time, with the real-data floor.

Trains ``gankit train --data digits`` as configured by default (IMAGE_DEFAULTS in
src/gankit/cli/recipes/dcgan.py) with gankit's Trainer, and every ``--eval-every`` epochs draws
``-n`` samples from the EMA generator and scores them against the digits val split (300
images) with FID, KID and precision/recall (k=3) on the features of gankit's own digits
classifier (``gankit.metrics.cached_classifier`` trained on the train split, the network
``gankit eval`` uses), plus the classes the classifier sees in the samples. The floor is the
same scores for real data: the train split (1,497 images) scored against the val split.
Prints a table and saves a plot (``docs/digits_quality.png``). Run from the repository root
(about 3 CPU-minutes):

    .venv/bin/python benchmarks/digits_quality.py      # --epochs 200 --eval-every 10 -n 2000

The time columns are training time only (evaluation excluded): wall clock and the process's
CPU time, which other load on a shared machine cannot inflate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from gankit.cli.config import TrainConfig  # noqa: E402
from gankit.cli.recipes.dcgan import DCGANRecipe  # noqa: E402
from gankit.cli.runs import seed_everything  # noqa: E402
from gankit.data import load_dataset  # noqa: E402
from gankit.extensions.ema import EMA  # noqa: E402
from gankit.metrics import (  # noqa: E402
    extract_features,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
)
from gankit.metrics.scoring import compute_metrics, feature_space  # noqa: E402
from gankit.training import Trainer  # noqa: E402

METRICS = ("fid", "kid", "pr", "classes")
SAMPLE_SEED = 12345


def real_floor(space: Any, train_x: torch.Tensor, val_feat: torch.Tensor) -> dict[str, float]:
    """The scores of the real train split against the val split: what a perfect G would get."""
    train_feat = extract_features(space.features, train_x)
    precision, recall = precision_recall(val_feat, train_feat)
    return {"fid": frechet_distance(val_feat, train_feat),
            "kid": kernel_inception_distance(val_feat, train_feat)[0],
            "precision": precision, "recall": recall}


def train_and_score(epochs: int, eval_every: int, n: int, seed: int) -> tuple[list[dict], dict]:
    """Train the default digits recipe, scoring every ``eval_every`` epochs; (rows, floor)."""
    train, val = load_dataset("digits", "train"), load_dataset("digits", "val")
    space = feature_space(train, val)
    val_feat = extract_features(space.features, val.x)
    floor = real_floor(space, train.x, val_feat)

    rec = DCGANRecipe()
    cfg = TrainConfig(data="digits", seed=seed, device="cpu").merged(rec.defaults(train))
    cfg = cfg.merged({"epochs": epochs})
    cfg.validate()
    seed_everything(seed)
    updater = rec.build(cfg, train)
    rows: list[dict[str, Any]] = []
    spent = {"wall": 0.0, "cpu": 0.0}  # evaluation time, taken out of the training clocks
    start_wall, start_cpu = time.perf_counter(), time.process_time()

    def evaluate(trainer: Trainer) -> None:
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        samples = rec.sample(trainer, n, seed=SAMPLE_SEED)
        scores = compute_metrics(samples, val_feat, METRICS, space=space)
        rows.append({"epoch": trainer.updater.epoch, "iteration": trainer.updater.iteration,
                     "wall": t_wall - start_wall - spent["wall"],
                     "cpu": t_cpu - start_cpu - spent["cpu"], **scores})
        spent["wall"] += time.perf_counter() - t_wall
        spent["cpu"] += time.process_time() - t_cpu
        r = rows[-1]
        print(f"epoch {r['epoch']:4d}: FID {r['fid']:7.3f}  KID {r['kid']:.4f}  "
              f"P {r['precision']:.3f}  R {r['recall']:.3f}  ({r['wall']:.0f} s wall, "
              f"{r['cpu']:.0f} s CPU)", file=sys.stderr, flush=True)

    evaluate.trigger = (eval_every, "epoch")  # type: ignore[attr-defined]
    evaluate.priority = 0  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(updater, cfg.stop_trigger(), out)
        if cfg.model.ema:
            trainer.extend(EMA(updater.raw_models["gen"], cfg.model.ema))
        trainer.extend(evaluate)
        trainer.run()
    floor["n_train"], floor["n_val"] = len(train), len(val)
    floor["accuracy"] = space.accuracy
    return rows, floor


def plot(rows: list[dict], floor: dict, path: Path) -> None:
    """FID, KID, precision and recall against training wall time, the floor dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 7))
    FigureCanvasAgg(fig)
    t = [r["wall"] for r in rows]
    panels = (("fid", "FID (lower is better)"), ("kid", "KID (lower is better)"),
              ("precision", "precision"), ("recall", "recall"))
    for i, (key, title) in enumerate(panels):
        ax = fig.add_subplot(2, 2, i + 1)
        ax.plot(t, [r[key] for r in rows], marker="o", label="EMA generator")
        ax.axhline(floor[key], color="gray", linestyle="--", label="real data (train vs val)")
        ax.set_title(title)
        ax.set_xlabel("training time (s, wall clock)")
        if key == "fid":
            ax.set_yscale("log")
        elif key == "kid":
            # The unbiased KID estimate goes below zero near the floor, which log cannot show.
            ax.set_yscale("symlog", linthresh=1.0)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend()
    fig.suptitle("gankit digits recipe (defaults): quality vs training time")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=10, help="epochs between scores")
    parser.add_argument("-n", type=int, default=2000, help="generated samples per score")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=str(ROOT / "docs" / "digits_quality.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    start = time.perf_counter()
    rows, floor = train_and_score(args.epochs, args.eval_every, args.n, args.seed)
    plot(rows, floor, Path(args.plot))
    print(f"\ndigits, default recipe, seed {args.seed}: {args.n} EMA samples vs the val split "
          f"({floor['n_val']} images); features: gankit's digits classifier (val accuracy "
          f"{floor['accuracy']:.1%})")
    print("| epoch | iteration | train wall s | train CPU s | FID | KID | precision | recall "
          "| classes | class KL |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['epoch']} | {r['iteration']} | {r['wall']:.0f} | {r['cpu']:.0f} | "
              f"{r['fid']:.3f} | {r['kid']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['classes']:.0f} | {r['class_kl']:.4f} |")
    print(f"| real floor: train ({floor['n_train']}) vs val | | | | {floor['fid']:.3f} | "
          f"{floor['kid']:.4f} | {floor['precision']:.3f} | {floor['recall']:.3f} | | |")
    print(f"\nplot: {args.plot}; {time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
