"""The run configuration: defaults per data set, then a TOML file, then the command line."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from gankit.errors import GankitError
from gankit.extensions.lr_scheduler import LR_DECAYS
from gankit.gan.losses import LOSSES
from gankit.gan.penalties import PENALTIES
from gankit.models.layers import NORMS

INTERVAL_RE = re.compile(r"^([1-9][0-9]*)\s*(e|epoch|epochs|i|it|iter|iteration|iterations)?$")


@dataclass
class TrainConfig:
    """Every option of ``gankit train``; ``None`` means 'the data set's default'."""

    data: str = "digits"
    recipe: str = "dcgan"
    out: str = "runs/gankit"
    epochs: int | None = None
    iterations: int | None = None
    batch_size: int | None = None
    loss: str | None = None
    penalty: str | None = None
    penalty_weight: float | None = None
    penalty_every: int = 1
    n_dis: int = 1
    lr_gen: float | None = None
    lr_dis: float | None = None
    # learning-rate schedule (LRSchedule): decay "none" | "linear", the fraction of the run
    # before the decay starts, and the warm-up length in iterations
    lr_decay: str | None = None
    lr_decay_start: float | None = None
    lr_warmup: int = 0
    beta1: float | None = None
    beta2: float = 0.999
    z_dim: int | None = None
    width: int | None = None
    norm: str | None = None
    ema: float | None = None
    conditional: bool = False
    image_size: int | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    workers: int = 0
    log_every: str | None = None
    sample_every: str | None = None
    snapshot_every: str | None = None
    keep_snapshots: int = 3
    skip_nonfinite: bool = False
    # recipe-specific weights (VAE-GAN, CycleGAN)
    weights: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> TrainConfig:
        unknown = set(values) - cls.field_names()
        if unknown:
            raise GankitError(
                f"{source} has unknown option(s) {', '.join(sorted(unknown))}; "
                f"see gankit train --help for the names."
            )
        return cls(**values)

    def merged(self, values: dict[str, Any]) -> TrainConfig:
        return dataclasses.replace(self, **values)

    def validate(self) -> None:
        positive_ints = ("epochs", "iterations", "batch_size", "penalty_every", "n_dis", "z_dim",
                         "width", "image_size", "keep_snapshots")
        for name in positive_ints:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise GankitError(f"--{_flag(name)} must be a positive integer, got {value!r}.")
        for name in ("lr_gen", "lr_dis", "penalty_weight"):
            value = getattr(self, name)
            ok = _is_number(value) and value >= 0 and math.isfinite(value)
            if value is not None and not ok:
                raise GankitError(f"--{_flag(name)} must be a non-negative number, got {value!r}.")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0 <= value < 1):
                raise GankitError(f"--{_flag(name)} must be in [0, 1), got {value!r}.")
        if self.ema is not None and not (_is_number(self.ema) and 0 <= self.ema < 1):
            raise GankitError(f"--ema must be a decay in [0, 1) (0: off), got {self.ema!r}.")
        if self.lr_decay is not None and self.lr_decay not in LR_DECAYS:
            raise GankitError(f"unknown --lr-decay {self.lr_decay!r}; choose one of: "
                              f"{', '.join(LR_DECAYS)}.")
        start = self.lr_decay_start
        if start is not None and not (_is_number(start) and 0 <= start < 1):
            raise GankitError(f"--lr-decay-start must be a fraction of the run in [0, 1), got "
                              f"{start!r}.")
        if start is not None and self.lr_decay == "none":
            raise GankitError(f"--lr-decay-start {start!r} has no effect with --lr-decay none; "
                              "add --lr-decay linear or leave the start out.")
        warmup = self.lr_warmup
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise GankitError(f"--lr-warmup must be a non-negative number of iterations, got "
                              f"{warmup!r}.")
        if self.epochs is not None and self.iterations is not None:
            raise GankitError("give --epochs or --iterations, not both.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise GankitError(f"--seed must be a non-negative integer, got {self.seed!r}.")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise GankitError(f"--workers must be a non-negative integer, got {self.workers!r}.")
        choices = {"loss": tuple(LOSSES), "penalty": PENALTIES, "norm": NORMS}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise GankitError(
                    f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}."
                )
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise GankitError(f"--precision must be fp32, bf16 or fp16, got {self.precision!r}.")
        for name in ("log_every", "sample_every", "snapshot_every"):
            value = getattr(self, name)
            if value is not None:
                parse_interval(value, f"--{_flag(name)}")
        for key, value in self.weights.items():
            if not (_is_number(value) and value >= 0):
                raise GankitError(f"weight {key!r} must be a non-negative number, got {value!r}.")

    def stop_trigger(self) -> tuple[int, str]:
        if self.iterations is not None:
            return (self.iterations, "iteration")
        return (self.epochs or 1, "epoch")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def parse_interval(text: str | int, what: str = "interval") -> tuple[int, str]:
    """``"5e"`` -> (5, "epoch"); ``"200"`` or ``"200i"`` -> (200, "iteration")."""
    m = INTERVAL_RE.match(str(text).strip())
    if not m:
        raise GankitError(
            f"{what} {text!r} is not an interval; write N for iterations or Ne for epochs "
            "(e.g. 500 or 5e)."
        )
    unit = "epoch" if (m.group(2) or "i").startswith("e") else "iteration"
    return int(m.group(1)), unit


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except FileNotFoundError:
        raise GankitError(f"config file {path} does not exist; check the --config path.") from None
    except tomllib.TOMLDecodeError as exc:
        raise GankitError(f"config file {path} is not valid TOML ({exc}); fix it.") from None
    except OSError as exc:
        raise GankitError(f"config file {path} cannot be read ({exc.strerror}).") from None
    values = {k.replace("-", "_"): v for k, v in values.get("train", values).items()}
    return values
