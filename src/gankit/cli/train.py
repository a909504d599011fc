"""``gankit train``: resolve the configuration, build the run, train it."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gankit.cli.config import TrainConfig, load_toml
from gankit.cli.runs import _resolve_device, seed_everything
from gankit.errors import GankitError
from gankit.training.checkpoint import list_snapshots, write_atomic

RESUMABLE_CHANGES = ("epochs", "iterations", "device", "workers")


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
    """The run's configuration and whether it resumes an existing run."""
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.field_names()}
    if "weights" in given:
        given["weights"] = dict(given["weights"])
    resume = getattr(args, "resume", None)
    if resume is not None:
        run = Path(resume)
        cfg_file = run / "config.json"
        if not cfg_file.is_file():
            raise GankitError(
                f"{run} is not a gankit run directory (no config.json); "
                "give the --out directory of an earlier gankit train."
            )
        try:
            saved = json.loads(cfg_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise GankitError(f"{cfg_file} cannot be read ({exc}); it is damaged.") from None
        cfg = TrainConfig.from_dict(saved, str(cfg_file))
        changed = sorted(k for k, v in given.items()
                         if k not in RESUMABLE_CHANGES and k != "out" and v != getattr(cfg, k))
        if changed:
            raise GankitError(
                f"--{changed[0].replace('_', '-')} differs from the run being resumed; a resumed "
                "run keeps its options (only --epochs, --iterations, --device and --workers "
                "may change)."
            )
        if "epochs" in given or "iterations" in given:
            cfg = cfg.merged({"epochs": None, "iterations": None})
        cfg = cfg.merged({k: v for k, v in given.items() if k in RESUMABLE_CHANGES})
        cfg = cfg.merged({"out": str(run)})
        return cfg, True
    cfg = TrainConfig()
    if getattr(args, "config", None):
        cfg = cfg.merged(vars(TrainConfig.from_dict(load_toml(args.config), args.config)))
    return cfg.merged(given), False


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.cli.recipes import get_recipe, interval_trigger, lr_schedule
    from gankit.data import load_dataset
    from gankit.extensions import (
        FailOnNonFinite,
        LogReport,
        PlotReport,
        PrintReport,
        ProgressBar,
        Snapshot,
    )
    from gankit.extensions.fail_on_non_finite import NonFiniteError
    from gankit.training import Trainer
    from gankit.training.distributed import (
        barrier,
        cleanup,
        init_distributed,
        prepare_updater,
        seed_rank,
    )

    cfg, resuming = resolve_config(args)
    cfg.validate()
    recipe = get_recipe(cfg.recipe)
    train = load_dataset(cfg.data, "train", image_size=cfg.image_size, seed=cfg.seed)
    val = load_dataset(cfg.data, "val", image_size=cfg.image_size, seed=cfg.seed)
    if not resuming:
        defaults = recipe.defaults(train)
        if cfg.epochs is not None or cfg.iterations is not None:
            defaults.pop("epochs", None)
            defaults.pop("iterations", None)
        if cfg.lr_decay is not None:  # a decay of the user's own: no default start for it
            defaults.pop("lr_decay_start", None)
        cfg = cfg.merged({k: v for k, v in defaults.items() if getattr(cfg, k) is None})
        cfg.validate()
    cfg = cfg.merged({"device": _resolve_device(cfg.device)})
    # Under torchrun: join the process group; each rank trains on its own device.
    device = init_distributed(cfg.device)
    out = Path(cfg.out)
    if not resuming and (list_snapshots(out) or (out / "config.json").exists()):
        raise GankitError(
            f"{out} already holds a run; continue it with --resume {out} or choose another --out."
        )
    _check_writable(out)
    barrier()  # every rank has checked --out before rank 0 writes into it

    seed_everything(cfg.seed)
    updater = recipe.build(cfg.merged({"device": str(device)}), train)
    # A penalised discriminator takes a double backward, which compiled graphs do not support.
    penalised = getattr(updater, "penalty", "none") != "none"
    prepare_updater(updater, compile=cfg.compile and [
        name for name in updater.models if not (penalised and name.startswith("dis"))])
    seed_rank(cfg.seed)  # same weights on every rank, different noise
    metadata = {"recipe": cfg.recipe, "data": cfg.data, "shape": list(train.shape)}
    trainer = Trainer(updater, cfg.stop_trigger(), out, metadata=metadata)
    quiet = getattr(args, "quiet", False)
    trainer.extend(FailOnNonFinite())
    for ext in [*recipe.extensions(cfg, updater, train, val), *lr_schedule(cfg, updater)]:
        trainer.extend(ext)
    trainer.extend(LogReport(trigger=interval_trigger(cfg, cfg.log_every)))
    trainer.extend(PlotReport(list(recipe.plot_keys), trigger=interval_trigger(cfg, cfg.log_every)))
    if not quiet:
        keys = list(recipe.print_keys)
        trainer.extend(PrintReport(keys))
        trainer.extend(ProgressBar())
    trainer.extend(Snapshot(n_retains=cfg.keep_snapshots),
                   trigger=interval_trigger(cfg, cfg.snapshot_every))

    main_process = trainer.is_main_process
    if resuming:
        path = trainer.resume(out)  # every rank reads the snapshot
        if main_process:
            print(f"resuming from {path} (iteration {updater.iteration})", file=sys.stderr)
    if main_process:
        write_atomic(out / "config.json", json.dumps(cfg.to_dict(), indent=1).encode())
    try:
        trainer.run()
    except NonFiniteError as exc:
        raise GankitError(str(exc)) from None
    cleanup()
    if not main_process:
        return 128 + (trainer.stop_signal or 0) if trainer.stop_reason == "signal" else 0
    if trainer.stop_reason == "signal":
        print(f"stopped at iteration {updater.iteration}; a snapshot is in {out}; "
              f"continue with: gankit train --resume {out}", file=sys.stderr)
        return 128 + (trainer.stop_signal or 0)
    snaps = list_snapshots(out)
    print(f"done: {updater.iteration} iterations in {trainer.elapsed_time:.1f} s; "
          f"log {out / 'log.json'}, plot {out / 'loss.png'}, samples {out / 'samples'}, "
          f"snapshot {snaps[-1] if snaps else 'none'}", file=sys.stderr)
    return 0
