"""``gankit export RUN``: a run's generator as a model file (.safetensors, or ONNX).

The safetensors file is a generator file (``gankit.export``): the weights (the EMA
average where the run kept one) and, in its metadata, what rebuilds the module, the data's
kind and range, the iteration, and the held-out scores with their protocol.
``gankit.load_generator(FILE)`` returns the module; ``gankit sample FILE`` draws from it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.cli.config import filled
from gankit.errors import GankitError
from gankit.export import (
    GeneratorInfo,
    GeneratorSpec,
    generator_info,
    load_generator,
    read_generator,
    save_generator,
)
from gankit.training.checkpoint import write_atomic

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gankit.cli.config import TrainConfig
    from gankit.cli.runs import Run
    from gankit.data import ArrayDataset
    from gankit.training import Updater

#: the best model a run keeps (written by the dcgan recipe's BestModel extension)
BEST = "best.safetensors"
#: what runs before gankit 0.2 kept instead: a whole snapshot
LEGACY_BEST = "best_fid.pt"
SUFFIXES = {"safetensors": ".safetensors", "onnx": ".onnx"}


def run_generator(cfg: TrainConfig, updater: Updater,
                  train: ArrayDataset) -> tuple[str, GeneratorSpec]:
    """The updater's name for a run's generator and what rebuilds it: the dcgan recipe's
    ``gen`` (its ``--arch`` network), the vaegan recipe's decoder ``dec`` (a DCGAN
    generator)."""
    if cfg.model.recipe not in ("dcgan", "vaegan"):
        raise GankitError(f"the {cfg.model.recipe} recipe's generators translate images from one "
                          "domain to the other instead of drawing them from noise, so there is "
                          "no generator file to export; load its snapshot with gankit.Trainer.")
    shape = tuple(train.shape)
    model = cfg.model
    z_dim = filled(model.z_dim, "z_dim")
    if model.recipe == "dcgan":
        gen = updater.raw_models["gen"]
        return "gen", GeneratorSpec(model.arch, shape, z_dim, model.width,
                                    n_classes=int(getattr(gen, "n_classes", 0)), norm=model.norm)
    return "dec", GeneratorSpec("dcgan", shape, z_dim, model.width)


def data_description(train: ArrayDataset) -> dict[str, Any]:
    """What a generator file keeps of the data: kind, value range, name."""
    return {"kind": train.kind, "low": float(train.low), "high": float(train.high),
            "name": train.name}


def _logged_scores(run_dir: Path, iteration: int) -> tuple[dict[str, float], dict[str, Any] | None]:
    """The ``val/*`` scores ``log.json`` holds for ``iteration`` and their protocol."""
    from gankit.extensions.log_report import read_log

    metrics: dict[str, float] = {}
    try:
        entries = read_log(run_dir / "log.json") if (run_dir / "log.json").is_file() else []
    except (OSError, ValueError):
        entries = []
    for entry in entries:
        if entry.get("iteration") == iteration:
            metrics = {k: float(v) for k, v in entry.items()
                       if k.startswith("val/") and isinstance(v, (int, float))}
    protocol = None
    if metrics and (run_dir / "val_protocol.json").is_file():
        try:
            protocol = json.loads((run_dir / "val_protocol.json").read_text())["protocol"]
        except (OSError, ValueError, KeyError, TypeError):
            protocol = None
    return metrics, protocol


def from_run(run: Run) -> tuple[nn.Module, GeneratorInfo]:
    """The generator of a loaded run at the snapshot it resumed (EMA weights where there
    are) and its GeneratorInfo."""
    from gankit.extensions.ema import EMA, sampling_model

    trainer = run.trainer
    source, spec = run_generator(run.cfg, trainer.updater, run.train)
    gen = sampling_model(trainer, source)
    ema = any(isinstance(e, EMA) and e.average is gen for e in trainer.extensions.values())
    u = trainer.updater
    metrics, protocol = _logged_scores(Path(run.cfg.run.out), u.iteration)
    info = GeneratorInfo(spec, data_description(run.train),
                         run={"recipe": run.cfg.model.recipe, "data": run.cfg.dataset.data,
                              "iteration": u.iteration, "epoch": u.epoch, "ema": ema,
                              "model": source},
                         metrics=metrics, protocol=protocol)
    return gen, info


def _output(args: argparse.Namespace) -> tuple[Path | None, str]:
    """The output path (None: the default, known once the iteration is) and the format."""
    fmt = args.format
    if args.output is None:
        return None, fmt or "safetensors"
    out = Path(args.output)
    by_suffix = next((f for f, s in SUFFIXES.items() if out.suffix == s), None)
    if by_suffix is None:
        raise GankitError(f"output {out} must end in .safetensors or .onnx.")
    if fmt is not None and fmt != by_suffix:
        raise GankitError(f"output {out} ends in {out.suffix}, but --format is {fmt}; "
                          f"name it *{SUFFIXES[fmt]} or leave --format out.")
    if not out.parent.is_dir():
        raise GankitError(f"the folder of {out} does not exist; create it first.")
    return out, by_suffix


def _describe(info: GeneratorInfo) -> str:
    run = info.run
    weights = "EMA weights" if run.get("ema") else "weights"
    fid = info.metrics.get("val/fid")
    score = f", val/fid {fid:.4g}" if fid is not None else ""
    return f"{info.spec.arch} generator at iteration {run.get('iteration')}, {weights}{score}"


def _write(out: Path, fmt: str, gen: nn.Module, info: GeneratorInfo) -> str:
    if fmt == "onnx":
        from gankit.export.onnx import save_onnx

        diff = save_onnx(out, gen, info.metadata())
        return f"; onnxruntime matches PyTorch to {diff:.2g}"
    save_generator(out, gen, info)
    return ""


def cmd_export(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    out, fmt = _output(args)
    if fmt == "onnx":
        from gankit.export.onnx import check_onnx_available

        check_onnx_available()
    if not (run_dir / "config.json").is_file():
        raise GankitError(f"{run_dir} is not a run directory (it has no config.json); give "
                          "the --out folder of a gankit train run.")
    if args.best:
        out = out or run_dir / f"best{SUFFIXES[fmt]}"
        found = _best(run_dir, out, fmt, args.device)
        if found is None:
            return 0
        gen, info = found
    else:
        from gankit.cli.runs import load_run

        gen, info = from_run(load_run(str(run_dir), args.device))
        out = out or run_dir / f"generator_iter_{info.run['iteration']}{SUFFIXES[fmt]}"
    note = _write(out, fmt, gen, info)
    size = out.stat().st_size / 1e6
    print(f"wrote {out} ({_describe(info)}; {size:.3g} MB{note})", file=sys.stderr)
    return 0


def _best(run_dir: Path, out: Path, fmt: str,
          device: str) -> tuple[nn.Module, GeneratorInfo] | None:
    """The run's best generator and its info; None when ``out`` needs no conversion: it is
    best.safetensors itself, or a byte-for-byte copy of that has been written there."""
    best = run_dir / BEST
    if best.is_file():
        info, _ = read_generator(best)
        if out.resolve() == best.resolve():
            print(f"{best} is the best model already ({_describe(info)}); nothing to write.",
                  file=sys.stderr)
            return None
        if fmt == "safetensors":
            write_atomic(out, best.read_bytes())
            print(f"wrote {out} ({_describe(info)}; a copy of {best})", file=sys.stderr)
            return None
        return load_generator(best, device), info
    if (run_dir / LEGACY_BEST).is_file():
        from gankit.cli.runs import load_run

        run = load_run(str(run_dir), device)
        run.trainer.resume(run_dir / LEGACY_BEST)
        return from_run(run)
    raise GankitError(f"{run_dir} has no best model ({BEST}): it is written when a run has "
                      "held-out FID scores; leave out --best to export the newest snapshot.")


def is_generator_file(path: str) -> bool:
    """Whether ``gankit sample`` was given a model file rather than a run directory."""
    p = Path(path)
    return p.suffix in SUFFIXES.values() or p.is_file()


def sample_file(path: str, n: int, seed: int, device: str,
                truncation: float | None) -> tuple[torch.Tensor, ArrayDataset]:
    """``n`` samples of the generator file at ``path`` (CPU, [-1, 1] or data units) and an
    empty data set of its kind and range, for mapping them back."""
    import torch

    from gankit.data import ArrayDataset
    from gankit.gan.sampling import generate
    from gankit.training.updater import resolve_device

    if Path(path).suffix == ".onnx":
        raise GankitError(f"{path} is an ONNX model, which gankit sample does not run; give "
                          "the .safetensors file it was exported beside (or the run).")
    info = generator_info(path)
    dev = resolve_device(device)
    gen = load_generator(path, dev)
    if truncation is not None:
        if not hasattr(gen, "truncation_psi"):
            raise GankitError(f"--truncation applies to a style-based generator (--arch "
                              f"stylegan2); {path} holds a {info.spec.arch} generator, so "
                              "leave --truncation out.")
        setattr(gen, "truncation_psi", truncation)  # noqa: B010 (typed for tensors)
    samples = generate(gen, n, seed=seed, device=dev).cpu()
    data = info.data
    empty = torch.empty(0, *info.spec.shape)
    like = ArrayDataset(empty, kind=data.get("kind", "image"), name=str(data.get("name", "")),
                        low=float(data.get("low", -1.0)), high=float(data.get("high", 1.0)))
    return samples, like
