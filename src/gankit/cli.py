"""``gankit train | sample | eval``: the command line.

Every mistake a user can make ends in one line on stderr and exit status 2; nothing that
exists in a run directory is overwritten or removed by a failed command.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from gankit.config import TrainConfig, load_toml
from gankit.errors import GankitError
from gankit.training.checkpoint import list_snapshots, write_atomic

RESUMABLE_CHANGES = ("epochs", "iterations", "device", "workers")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block; the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite, non-negative number")
    return value


def _weight(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return key, _number(value)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gankit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a recipe on a data set",
                       argument_default=argparse.SUPPRESS)
    t.add_argument("--config", help="TOML file of options (a [train] table or top-level keys)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in directory RUN")
    t.add_argument("--data", help="digits|ring8|grid25|folder:PATH|npz:PATH|mnist-idx:DIR")
    t.add_argument("--recipe", help="dcgan | vaegan | cyclegan")
    t.add_argument("--out", help="run directory (default runs/gankit)")
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--iterations", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--loss", help="ns | minimax | hinge | wgan | lsgan")
    t.add_argument("--penalty", help="none | r1 | r2 | gp")
    t.add_argument("--penalty-weight", type=_number)
    t.add_argument("--penalty-every", type=_positive_int)
    t.add_argument("--n-dis", type=_positive_int, help="discriminator steps per generator step")
    t.add_argument("--lr-gen", type=_number)
    t.add_argument("--lr-dis", type=_number)
    t.add_argument("--beta1", type=_number)
    t.add_argument("--beta2", type=_number)
    t.add_argument("--z-dim", type=_positive_int)
    t.add_argument("--width", type=_positive_int, help="base channels / hidden units")
    t.add_argument("--norm", help="discriminator normalisation: batch | none | spectral | layer")
    t.add_argument("--ema", type=_number, help="EMA decay of the generator (0: off)")
    t.add_argument("--conditional", action="store_true", help="class-conditional networks")
    t.add_argument("--image-size", type=_positive_int, help="resize images to SIZE x SIZE")
    t.add_argument("--seed", type=_non_negative_int)
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    t.add_argument("--precision", help="fp32 | bf16 | fp16")
    t.add_argument("--compile", action="store_true", help="torch.compile the networks")
    t.add_argument("--workers", type=_non_negative_int, help="data loader worker processes")
    t.add_argument("--nproc", type=_positive_int,
                   help="training processes on this machine, started by torchrun's launcher "
                        "(--batch-size is per process)")
    t.add_argument("--log-every", help="N iterations or Ne epochs")
    t.add_argument("--sample-every", help="N iterations or Ne epochs")
    t.add_argument("--snapshot-every", help="N iterations or Ne epochs")
    t.add_argument("--keep-snapshots", type=_positive_int)
    t.add_argument("--skip-nonfinite", action="store_true",
                   help="skip steps whose loss is NaN/Inf instead of stopping")
    t.add_argument("--weight", dest="weights", type=_weight, action="append",
                   metavar="NAME=VALUE", help="a recipe's loss weight (repeatable)")
    t.add_argument("--quiet", action="store_true", help="no table, no progress bar")

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run", help="the run directory")
    s.add_argument("-n", type=_positive_int, default=64, help="number of samples")
    s.add_argument("--seed", type=_non_negative_int, default=0)
    s.add_argument("-o", "--output", required=True, help="out.npy (data range) or out.png")
    s.add_argument("--device", default="auto")

    e = sub.add_parser("eval", help="score a trained run (FID, KID, precision/recall, modes)")
    e.add_argument("run", help="the run directory")
    e.add_argument("--metrics", default=None, help="comma-separated: fid,kid,pr,modes")
    e.add_argument("-n", type=_positive_int, default=None, help="samples to draw")
    e.add_argument("--seed", type=_non_negative_int, default=0)
    e.add_argument("--device", default="auto")
    e.add_argument("--feature-net", default=None,
                   help="a TorchScript or torch.save'd module to use as the feature network")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train" and getattr(args, "nproc", 1) > 1:
            from gankit.distributed import launch

            return launch(sys.argv[1:] if argv is None else list(argv), args.nproc)
        if args.command == "train":
            return cmd_train(args)
        if args.command == "sample":
            return cmd_sample(args)
        from gankit.evaluation import cmd_eval

        return cmd_eval(args)
    except GankitError as exc:
        print(f"gankit {args.command}: error: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- train
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def _resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GankitError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device {name!r} was asked for but CUDA is not available; use cpu.")
    if device.type not in ("cpu", "cuda"):
        raise GankitError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N.")
    return str(device)


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
    from gankit.data import load_dataset
    from gankit.distributed import (
        barrier,
        cleanup,
        init_distributed,
        prepare_updater,
        seed_rank,
    )
    from gankit.extensions import (
        FailOnNonFinite,
        LogReport,
        PlotReport,
        PrintReport,
        ProgressBar,
        Snapshot,
    )
    from gankit.extensions.fail_on_non_finite import NonFiniteError
    from gankit.recipes import get_recipe, interval_trigger
    from gankit.training import Trainer

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
    for ext in recipe.extensions(cfg, updater, train, val):
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


def load_run(run_dir: str, device: str = "auto") -> tuple[Any, Any, Any, Any]:
    """Rebuild a finished or stopped run from its directory: (cfg, recipe, trainer, train)."""
    from gankit.data import load_dataset
    from gankit.recipes import get_recipe
    from gankit.training import Trainer

    args = argparse.Namespace(resume=run_dir)
    cfg, _ = resolve_config(args)
    cfg = cfg.merged({"device": _resolve_device(device)})
    recipe = get_recipe(cfg.recipe)
    train = load_dataset(cfg.data, "train", image_size=cfg.image_size, seed=cfg.seed)
    val = load_dataset(cfg.data, "val", image_size=cfg.image_size, seed=cfg.seed)
    updater = recipe.build(cfg, train)
    metadata = {"recipe": cfg.recipe, "data": cfg.data, "shape": list(train.shape)}
    trainer = Trainer(updater, cfg.stop_trigger(), cfg.out, metadata=metadata)
    for ext in recipe.extensions(cfg, updater, train, val):
        trainer.extend(ext)
    trainer.resume(cfg.out)
    return cfg, recipe, trainer, train


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.extensions.sample_grid import save_image_grid, save_scatter

    output = Path(args.output)
    if output.suffix not in (".npy", ".png"):
        raise GankitError(f"output {output} must end in .npy or .png.")
    if not output.parent.is_dir():
        raise GankitError(f"the folder of {output} does not exist; create it first.")
    _, recipe, trainer, train = load_run(args.run, args.device)
    samples = recipe.sample(trainer, args.n, args.seed).cpu()
    if output.suffix == ".npy":
        arr = train.denormalize(samples) if train.kind == "image" else samples.numpy()
        np.save(output, arr)
    elif samples.dim() == 2:
        save_scatter(samples, output, train.x[:2500])
    else:
        save_image_grid(samples, output, scale=4)
    print(f"wrote {args.n} samples to {output}", file=sys.stderr)
    return 0
