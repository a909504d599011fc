"""``gankit train``: resolve the configuration, build the run, train it."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.cli.config import TrainConfig, load_toml
from gankit.cli.presets import with_preset
from gankit.cli.runs import (
    build_run,
    configure_threads,
    load_data,
    require_run_dir,
    saved_config,
)
from gankit.data.loader import worker_died
from gankit.errors import GankitError
from gankit.training.checkpoint import (
    SNAPSHOT_RE,
    list_snapshots,
    remove_stale_files,
    write_atomic,
)
from gankit.training.runlock import RunLock, claim_run, refuse_if_held
from gankit.training.updater import resolve_device

if TYPE_CHECKING:
    from gankit.cli.recipes import Recipe
    from gankit.data import ArrayDataset
    from gankit.extensions import Snapshot
    from gankit.training import Trainer

# The held-out quality signal, plotted into metrics.png one panel per key (absent keys skipped).
HELD_OUT_KEYS = ("val/fid", "val/kid", "val/precision", "val/recall", "val/modes")

# Options a continued run may change: they do not change what the networks learn (the
# lazy and in-memory sources give the same batches), or, for --skip-corrupt, they are the
# way out of a file that broke after the run started.
RESUMABLE_CHANGES = ("epochs", "iterations", "device", "workers", "snapshot_every",
                     "keep_snapshots", "keep_samples", "data_mode", "skip_corrupt")


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise GankitError(
            f"cannot write to the output directory {out} ({exc.strerror or exc}); "
            "choose another --out."
        ) from None


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, bool]:
    """The run's configuration and whether it continues a snapshot.

    ``--resume R``, or the original command again (``--out R``, R holding a run), continue
    R with its saved configuration; an option given again must equal the saved one unless
    it is in ``RESUMABLE_CHANGES``. R without a snapshot yet (killed early) starts afresh
    from that configuration.
    """
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.field_names()}
    if "weights" in given:
        given["weights"] = dict(given["weights"])
    explicit = {}
    if getattr(args, "config", None):
        explicit = TrainConfig.from_dict(load_toml(args.config), args.config).to_dict()
        explicit = {k: v for k, v in explicit.items() if k in _toml_keys(args.config)}
    explicit.update(given)
    resume = getattr(args, "resume", None)
    if resume is not None:
        run = require_run_dir(Path(resume))
    else:
        run = Path(explicit.get("out", TrainConfig().run.out))
        if not (run / "config.json").is_file():
            if list_snapshots(run):
                raise GankitError(
                    f"{run} holds snapshots but no config.json; choose another --out."
                )
            _check_new_out(run)
            return TrainConfig().merged(with_preset(explicit)), False
    cfg = saved_config(run)
    changed = sorted(k for k, v in explicit.items()
                     if k not in RESUMABLE_CHANGES and k != "out" and v != cfg.get(k))
    if changed:
        flag = changed[0].replace("_", "-")
        raise GankitError(
            f"--{flag} is {explicit[changed[0]]!r} but the run in {run} was started with "
            f"{cfg.get(changed[0])!r}; a continued run keeps its options (only "
            f"{', '.join('--' + k.replace('_', '-') for k in RESUMABLE_CHANGES)} may change): "
            "choose another --out for a new run."
        )
    if "epochs" in explicit or "iterations" in explicit:
        cfg = cfg.merged({"epochs": None, "iterations": None})
    cfg = cfg.merged({k: v for k, v in explicit.items() if k in RESUMABLE_CHANGES})
    cfg = cfg.merged({"out": str(run)})
    return cfg, bool(list_snapshots(run))


def _check_new_out(out: Path) -> None:
    """Refuse to start a run in a folder of other files (an image folder, say): a new run
    goes into a new or empty folder. Hidden files (a killed run's temporary files) are not
    counted."""
    if not out.is_dir():
        return
    found = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    if found:
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise GankitError(
            f"{out} holds files ({found[0]}{more}) but is not a gankit run directory (no "
            "config.json); choose a new or empty --out."
        )


def _check_not_past(cfg: TrainConfig, trainer: Trainer, out: Path) -> None:
    """Refuse a length shorter than where the resumed run already is: training nothing and
    a config.json that disagrees with the snapshots would follow."""
    updater = trainer.updater
    length, unit = cfg.stop_trigger()
    done = updater.iteration if unit == "iteration" else updater.epoch_detail
    if done > length:
        flag = f"--{unit}s"
        at = (f"iteration {updater.iteration}" if unit == "iteration"
              else f"epoch {done:.4g} (iteration {updater.iteration})")
        raise GankitError(
            f"the run in {out} is already at {at}, past {flag} {length}; give {flag} "
            f"{math.ceil(done)} or more to continue it, or another --out for a new run."
        )


def apply_defaults(cfg: TrainConfig, recipe: Recipe, train: ArrayDataset) -> TrainConfig:
    """``cfg`` with the recipe's defaults for this data (and its ``--arch``) where it has no
    value; a run length or a decay the user gave keeps the defaults' companions out (no
    default epochs beside ``--iterations``, no default decay start beside ``--lr-decay``)."""
    defaults = recipe.defaults(train, cfg)
    if cfg.run.epochs is not None or cfg.run.iterations is not None:
        defaults.pop("epochs", None)
        defaults.pop("iterations", None)
    if cfg.optim.lr_decay is not None:
        defaults.pop("lr_decay_start", None)
    return cfg.merged({k: v for k, v in defaults.items() if cfg.get(k) is None})


def _toml_keys(path: str) -> set[str]:
    return set(load_toml(path))


def _worker_died(exc: Exception, trainer: Trainer, snapshot: Snapshot, out: Path) -> int:
    """The one line for a run whose data loader worker died (the out-of-memory killer, most
    often), and exit status 1: the run failed, unlike 2 (a command refused before anything
    was touched) or 128 + N (stopped by signal N); the same command continues it."""
    died = worker_died(exc)
    if died is None:
        raise exc
    it = trainer.updater.iteration
    snaps = list_snapshots(out)
    match = SNAPSHOT_RE.match(snaps[-1].name) if snaps else None
    if match is None:
        kept = f"the run stopped after iteration {it} and has no snapshot yet"
    elif int(match.group(1)) == it:
        kept = f"the run stopped after iteration {it}, whose snapshot is kept ({snaps[-1]})"
    else:
        kept = (f"the run stopped after iteration {it}; the snapshot of iteration "
                f"{match.group(1)} is kept ({snaps[-1]})")
    print(f"gankit train: error: {died.cause}; {kept}; give the job more memory or lower "
          "--workers, then continue with the same command", file=sys.stderr)
    return 1


def cmd_train(args: argparse.Namespace) -> int:
    held: list[RunLock] = []  # the run directory's lock, once rank 0 holds it
    try:
        return _train(args, held)
    finally:
        for lock in held:
            lock.release()


def _train(args: argparse.Namespace, held: list[RunLock]) -> int:
    from gankit.cli.recipes import get_recipe, interval_trigger
    from gankit.extensions import (
        FailOnNonFinite,
        LogReport,
        PlotReport,
        PrintReport,
        ProgressBar,
        Snapshot,
    )
    from gankit.extensions.fail_on_non_finite import NonFiniteError
    from gankit.extensions.gan_evaluator import GANEvaluator
    from gankit.extensions.snapshot import WallClockTrigger, parse_duration
    from gankit.training.distributed import barrier, cleanup, init_distributed, lost_peer
    from gankit.training.triggers import get_stop_trigger

    cfg, resuming = resolve_config(args)
    cfg.validate()
    refuse_if_held(cfg.run.out)  # a run training elsewhere is refused before its data loads
    recipe = get_recipe(cfg.model.recipe)
    train, val = load_data(cfg)
    if cfg.model.conditional and (train.y is None or train.n_classes < 2):
        raise GankitError(
            f"--conditional needs labelled data with at least 2 classes, but {cfg.dataset.data} "
            "has "
            f"{'no labels' if train.y is None else f'{train.n_classes} class'}; drop "
            "--conditional or give labelled data (folder:DIR with one subfolder per class)."
        )
    if not resuming:
        cfg = apply_defaults(cfg, recipe, train)
        cfg.validate()
    cfg = cfg.merged({"device": str(resolve_device(cfg.run.device))})
    # Under torchrun: join the process group; each rank trains on its own device.
    device = init_distributed(cfg.run.device)
    out = Path(cfg.run.out)
    configure_threads()

    trainer = build_run(cfg.merged({"device": str(device)}), train, val,
                        for_training=True).trainer
    updater = trainer.updater
    quiet = getattr(args, "quiet", False)
    for ext in trainer.extensions.values():
        if isinstance(ext, GANEvaluator):
            ext.progress = ext.progress and not quiet  # --quiet: no phase lines either
    trainer.extend(FailOnNonFinite())
    trainer.extend(LogReport(trigger=interval_trigger(cfg, cfg.run.log_every)))
    # Plots on the sample grid's slower interval (and at the end): drawing costs ~0.1 s.
    plot_every = interval_trigger(cfg, cfg.run.sample_every or cfg.run.log_every)
    trainer.extend(PlotReport(list(recipe.plot_keys), trigger=plot_every))
    trainer.extend(PlotReport(list(HELD_OUT_KEYS), filename="metrics.png", trigger=plot_every,
                              subplots=True), name="MetricsPlot")
    if not quiet:
        keys = list(recipe.print_keys)
        trainer.extend(PrintReport(keys))
        trainer.extend(ProgressBar())
    seconds = parse_duration(cfg.run.snapshot_every) if cfg.run.snapshot_every else None
    when = (WallClockTrigger(seconds, also=get_stop_trigger(cfg.stop_trigger()))
            if seconds is not None else interval_trigger(cfg, cfg.run.snapshot_every))
    snapshot = Snapshot(n_retains=cfg.run.keep_snapshots)
    trainer.extend(snapshot, trigger=when)

    # Only now, every option checked, is anything created under --out: first the lock that
    # makes this process its one writer (a run held by a live process is refused untouched).
    if not claim_run(out, held):
        return 2  # rank 0 has said who holds the run
    _check_writable(out)
    barrier()  # every rank has checked --out before rank 0 writes into it
    main_process = trainer.is_main_process
    if main_process:
        for stale in remove_stale_files(out):
            print(f"removed {stale.name}, left by a killed run", file=sys.stderr)
    path = None
    if resuming:
        path = trainer.resume(out)  # every rank reads the snapshot
        _check_not_past(cfg, trainer, out)
        if main_process:
            print(f"resuming from {path} (iteration {updater.iteration})", file=sys.stderr)
    config = json.dumps(cfg.to_dict(), indent=1).encode()
    cfg_file = out / "config.json"
    if main_process and not (cfg_file.is_file() and cfg_file.read_bytes() == config):
        write_atomic(cfg_file, config)
    try:
        trainer.run()
    except NonFiniteError as exc:
        raise GankitError(str(exc)) from None
    except RuntimeError as exc:  # WorkerDied is a GankitError, and so a ValueError
        if worker_died(exc) is None and lost_peer(exc):
            # Another process of the group died (its own launcher says why): one line, and
            # the launcher's restart (--max-restarts) resumes from the newest snapshot.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"gankit train: lost contact with another process of the group at iteration "
                  f"{updater.iteration} ({first[:160]}); a restart resumes from the newest "
                  "snapshot.", file=sys.stderr)
            return 1
        return _worker_died(exc, trainer, snapshot, out)
    except GankitError as exc:
        if worker_died(exc) is None:
            raise
        return _worker_died(exc, trainer, snapshot, out)
    cleanup()
    if not main_process:
        return 128 + (trainer.stop_signal or 0) if trainer.stop_reason == "signal" else 0
    if trainer.stop_reason == "signal":
        print(f"stopped at iteration {updater.iteration}; a snapshot is in {out}; "
              f"continue with: gankit train --resume {out} (or the same command again)",
              file=sys.stderr)
        return 128 + (trainer.stop_signal or 0)
    # The snapshot this run wrote last, else the one it resumed from (a newer file may be
    # a damaged one it skipped).
    last = snapshot.last_path or path
    print(f"done: {updater.iteration} iterations in {trainer.elapsed_time:.1f} s; "
          f"log {out / 'log.json'}, plot {out / 'loss.png'}, samples {out / 'samples'}, "
          f"snapshot {last or 'none'}", file=sys.stderr)
    return 0
