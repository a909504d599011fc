"""``gankit eval RUN``: score a trained run against held-out data, beside the real-data floor."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from gankit.errors import GankitError
from gankit.metrics import extract_features
from gankit.metrics.scoring import (
    DEFAULT_N,
    METRICS,
    compute_metrics,
    feature_space,
    parse_metrics,
    real_subset,
)

_LABELS = {
    "fid": "FID", "kid": "KID", "precision": "precision", "recall": "recall",
    "modes": "modes", "hq": "high quality", "rkl": "reverse KL", "classes": "classes",
    "class_kl": "class KL",
}


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


def cmd_eval(args: argparse.Namespace) -> int:
    """``gankit eval RUN``: score the run's latest snapshot, print a table, write metrics.json."""
    from gankit.cli.runs import load_run
    from gankit.data import load_dataset
    from gankit.extensions.ema import EMA
    from gankit.training.checkpoint import write_atomic

    start = time.perf_counter()
    run = Path(args.run)
    if not (run / "config.json").is_file():
        raise GankitError(
            f"{run} is not a gankit run directory (no config.json); give the --out directory "
            "of a gankit train."
        )
    if args.metrics is not None:  # catch a typo before the slow part
        for name in args.metrics.split(","):
            if name.strip() and name.strip().lower() not in METRICS:
                raise GankitError(f"unknown metric {name.strip()!r}; choose from "
                                  f"{', '.join(METRICS)}.")
    if args.feature_net is not None and not Path(args.feature_net).is_file():
        raise GankitError(
            f"feature network file {args.feature_net} does not exist; pass a TorchScript file "
            "or a module saved with torch.save(model)."
        )
    cfg, recipe, trainer, train = load_run(str(run), args.device)
    device = trainer.updater.device
    val = load_dataset(cfg.data, "val", image_size=cfg.image_size, seed=cfg.seed,
                       mode=cfg.data_mode)
    space = feature_space(train, val, feature_net=args.feature_net, device=device)
    names = parse_metrics(args.metrics, space, val)
    n = args.n if args.n is not None else DEFAULT_N[train.kind]
    # As many held-out samples as generated ones (all of them when there are fewer):
    # precision/recall compare k-NN radii, which shrink as a set grows.
    real = real_subset(val, n)
    real_feats = extract_features(space.features, real.x, device=device)

    samples = recipe.sample(trainer, n, args.seed)
    scores = compute_metrics(samples, real_feats, names, space=space, data=val,
                             seed=args.seed, device=device)
    # The floor: training samples are draws from the true distribution, so they show the
    # score of a perfect generator with these features and sample sizes.
    floor_data = real_subset(train, n, seed=args.seed)
    floor = compute_metrics(floor_data.x, real_feats, names, space=space, data=val,
                            seed=args.seed, device=device)
    ema = any(isinstance(e, EMA) for e in trainer.extensions.values())
    iteration = trainer.updater.iteration

    lines = [
        f"{run}: iteration {iteration}, {n} samples from the {'EMA ' if ema else ''}generator "
        f"vs {len(real)} held-out samples",
        f"features: {space.description}",
        "",
        f"{'metric':<14}{'value':>12}{'floor':>12}",
    ]
    for key, value in scores.items():
        lines.append(f"{_LABELS[key]:<14}{_fmt(value):>12}{_fmt(floor[key]):>12}")
    lines.append(f"floor: {len(floor_data)} training samples vs the same held-out samples "
                 "(a perfect generator)")
    print("\n".join(lines))

    report = {
        "iteration": iteration,
        "n": n,
        "seed": args.seed,
        "ema": ema,
        "features": space.description,
        "feature_accuracy": space.accuracy,
        "n_real": len(real),
        "n_floor": len(floor_data),
        "metrics": {k: _json_number(v) for k, v in scores.items()},
        "floor": {k: _json_number(v) for k, v in floor.items()},
    }
    out = run / "metrics.json"
    try:
        write_atomic(out, (json.dumps(report, indent=1) + "\n").encode())
    except OSError as exc:
        raise GankitError(
            f"cannot write {out} ({exc.strerror or exc}); make the run directory writable."
        ) from None
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
