"""``gankit eval RUN``: score a trained run against held-out data, beside the real-data floor.

Each evaluation is a record in ``RUN/metrics.json`` with its protocol (feature network and
weights hash, sample counts, real split, resize, seed, gankit version); records under other
protocols are kept, so a run can hold its SmallCNN and its Inception scores side by side.
``gankit eval --compare A B`` prints two runs' records only when their protocols are identical.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from gankit.errors import GankitError
from gankit.metrics.inception import inception_weights_path, is_inception_spec, sha256_file
from gankit.metrics.protocol import Protocol, check_comparable
from gankit.metrics.scoring import (
    METRICS,
    compute_metrics,
    default_n,
    feature_space,
    make_protocol,
    parse_metrics,
    real_subset,
)
from gankit.metrics.stats import ReferenceStats, load_stats, reference_stats, save_stats

_LABELS = {
    "fid": "FID", "kid": "KID", "precision": "precision", "recall": "recall",
    "modes": "modes", "hq": "high quality", "rkl": "reverse KL", "classes": "classes",
    "class_kl": "class KL", "is": "IS", "is_std": "IS std", "kl": "mode KL",
    "kl_digits": "digit KL",
}


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


def _read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.json; a file of the single-record layout before protocols
    becomes one record (without a protocol, so it is never compared)."""
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GankitError(f"cannot read {path} ({exc}); move it away and score the run "
                          "again.") from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        return list(data["records"])
    if isinstance(data, dict) and "metrics" in data:
        return [data]
    raise GankitError(f"{path} is not a gankit metrics file; move it away and score the run "
                      "again.")


def _merge_record(records: list[dict[str, Any]], record: dict[str, Any]) -> list[dict[str, Any]]:
    """Append ``record``; one under the same protocol at the same iteration is replaced."""
    same = [r for r in records if r.get("protocol") == record["protocol"]
            and r.get("iteration") == record["iteration"]]
    return [r for r in records if not any(r is s for s in same)] + [record]


def cmd_eval(args: argparse.Namespace) -> int:
    """``gankit eval RUN``: score the run's latest snapshot, print a table, add to metrics.json.

    With ``--compare A B`` it compares two runs' recorded scores instead. SIGINT/SIGTERM/
    SIGUSR1 abandon a scoring within about a second (the feature classifier's training and
    the metric passes poll for them); nothing is written then.
    """
    if args.compare is not None:
        if args.run is not None:
            raise GankitError("give a run to score or --compare A B, not both.")
        return _compare(*args.compare)
    if args.run is None:
        raise GankitError("give the run directory to score (gankit eval RUN), or --compare A B.")
    from gankit.training import stop

    with stop.handle_signals():
        try:
            return _evaluate(args)
        except stop.StopRequested as req:
            print(f"gankit eval: stopped by signal {req.signum}; nothing was written",
                  file=sys.stderr)
            return 128 + req.signum


def _evaluate(args: argparse.Namespace) -> int:
    from gankit.cli.runs import load_run, require_run_dir
    from gankit.extensions.ema import EMA
    from gankit.training.checkpoint import write_atomic

    start = time.perf_counter()
    run = require_run_dir(Path(args.run))
    if args.metrics is not None:  # catch a typo before the slow part
        for name in args.metrics.split(","):
            if name.strip() and name.strip().lower() not in METRICS:
                raise GankitError(f"unknown metric {name.strip()!r}; choose from "
                                  f"{', '.join(METRICS)}.")
    if is_inception_spec(args.feature_net):
        inception_weights_path(args.feature_net)  # a missing file fails before the slow part
    elif args.feature_net is not None and not Path(args.feature_net).is_file():
        raise GankitError(
            f"feature network file {args.feature_net} does not exist; pass inception:PATH, a "
            "TorchScript file or a module saved with torch.save(model)."
        )
    if args.resize is not None and not is_inception_spec(args.feature_net):
        raise GankitError("--resize applies to the Inception network only; pass --feature-net "
                          "inception:PATH or leave --resize out.")
    imported: ReferenceStats | None = None
    if args.ref_stats is not None:
        imported, _ = load_stats(args.ref_stats)
        asked = {m.strip().lower() for m in (args.metrics or "").split(",")}
        if asked & {"kid", "pr"}:
            raise GankitError(
                "kid and pr need the real features, which a statistics file (mu, sigma) does "
                "not hold; score fid and is against it."
            )
    cfg, recipe, trainer, train, val = load_run(str(run), args.device)
    device = trainer.updater.device
    space = feature_space(train, val, feature_net=args.feature_net, device=device,
                          resize=args.resize or "pytorch-fid")
    names = parse_metrics(args.metrics, space, val)
    n = args.n if args.n is not None else default_n(train)
    # As many held-out samples as generated ones (all of them when there are fewer):
    # precision/recall compare k-NN radii, which shrink as a set grows.
    real = real_subset(val, n)
    needs_real = imported is None or args.save_stats is not None
    own = reference_stats(real.x, space.features, split="val", feature_hash=space.weights_hash,
                          device=device, batch_size=space.batch_size) if needs_real else None
    if imported is not None:
        if imported.mu.shape[0] != _feature_dim(space, val):
            raise GankitError(
                f"statistics file {args.ref_stats} has {imported.mu.shape[0]} features but "
                f"{space.description} gives {_feature_dim(space, val)}; use statistics of the "
                "same network."
            )
        names = tuple(m for m in names if m not in ("kid", "pr")) if args.metrics is None \
            else names
        real_split = f"stats:{Path(args.ref_stats).name}@{sha256_file(args.ref_stats)[:16]}"
        n_real, reference = imported.n, imported
    else:
        assert own is not None
        real_split, n_real, reference = "val", len(real), own

    samples = recipe.sample(trainer, n, args.seed)
    scores = compute_metrics(samples, reference, names, space=space, data=val,
                             seed=args.seed, device=device)
    # The floor: training samples are draws from the true distribution, so they show the
    # score of a perfect generator with these features and sample sizes.
    floor_data = real_subset(train, n, seed=args.seed)
    floor = compute_metrics(floor_data.x, reference, names, space=space, data=val,
                            seed=args.seed, device=device)
    ema = any(isinstance(e, EMA) for e in trainer.extensions.values())
    iteration = trainer.updater.iteration
    protocol = make_protocol(space, n_real=n_real, n_generated=n, real_split=real_split,
                             seed=args.seed)

    real_what = (f"the statistics in {args.ref_stats}" if imported is not None
                 else f"{len(real)} held-out samples")
    lines = [
        f"{run}: iteration {iteration}, {n} samples from the {'EMA ' if ema else ''}generator "
        f"vs {real_what}",
        f"features: {space.description}",
        "protocol: " + ", ".join(protocol.lines()),
        "",
        f"{'metric':<14}{'value':>12}{'floor':>12}",
    ]
    for key, value in scores.items():
        lines.append(f"{_LABELS[key]:<14}{_fmt(value):>12}{_fmt(floor[key]):>12}")
    lines.append(f"floor: {len(floor_data)} training samples vs the same "
                 f"{'statistics' if imported is not None else 'held-out samples'} "
                 "(a perfect generator)")
    print("\n".join(lines))

    record = {
        "iteration": iteration,
        "n": n,
        "seed": args.seed,
        "ema": ema,
        "features": space.description,
        "feature_accuracy": space.accuracy,
        "n_real": n_real,
        "n_floor": len(floor_data),
        "protocol": protocol.as_dict(),
        "metrics": {k: _json_number(v) for k, v in scores.items()},
        "floor": {k: _json_number(v) for k, v in floor.items()},
    }
    out = run / "metrics.json"
    records = _merge_record(_read_records(out), record)
    try:
        write_atomic(out, (json.dumps({"records": records}, indent=1) + "\n").encode())
    except OSError as exc:
        raise GankitError(
            f"cannot write {out} ({exc.strerror or exc}); make the run directory writable."
        ) from None
    if args.save_stats is not None and own is not None:
        stats_protocol = make_protocol(space, n_real=len(real), n_generated=0, real_split="val",
                                       seed=0).as_dict()
        save_stats(args.save_stats, own, {**stats_protocol, "data": cfg.dataset.data})
        print(f"wrote the held-out statistics to {args.save_stats}", file=sys.stderr)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _feature_dim(space: Any, val: Any) -> int:
    from gankit.metrics import extract_features

    return int(extract_features(space.features, val.x[:2], batch_size=2).shape[1])


def _records_of(target: str) -> tuple[Path, list[dict[str, Any]]]:
    path = Path(target)
    path = path / "metrics.json" if path.is_dir() else path
    records = _read_records(path)
    if not records:
        raise GankitError(f"{path} holds no scores; run gankit eval on that run first.")
    return path, records


def _compare(a: str, b: str) -> int:
    """Print the latest records of runs ``a`` and ``b`` that share a protocol, or refuse."""
    path_a, recs_a = _records_of(a)
    path_b, recs_b = _records_of(b)
    prot_a = [Protocol.from_dict(r.get("protocol"), f"a record of {path_a}") for r in recs_a]
    prot_b = [Protocol.from_dict(r.get("protocol"), f"a record of {path_b}") for r in recs_b]
    pair = next(((i, j) for i in reversed(range(len(recs_a)))
                 for j in reversed(range(len(recs_b))) if prot_a[i] == prot_b[j]), None)
    if pair is None:  # refuse, naming what differs between the latest records
        check_comparable(prot_a[-1], prot_b[-1],
                         f"the latest records of {path_a} and {path_b}")
        raise AssertionError("unreachable: identical protocols were not paired")
    rec_a, rec_b = recs_a[pair[0]], recs_b[pair[1]]
    lines = ["protocol: " + ", ".join(prot_a[pair[0]].lines()), "",
             f"{'metric':<14}{'A':>12}{'B':>12}"]
    for key in rec_a["metrics"]:
        if key in rec_b["metrics"]:
            lines.append(f"{_LABELS.get(key, key):<14}{_fmt(rec_a['metrics'][key]):>12}"
                         f"{_fmt(rec_b['metrics'][key]):>12}")
    lines.append(f"A: {a} (iteration {rec_a['iteration']}), B: {b} "
                 f"(iteration {rec_b['iteration']})")
    print("\n".join(lines))
    return 0
