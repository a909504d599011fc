"""The run configuration: defaults per data set, then a TOML file, then the command line."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

# tomllib is in the standard library from Python 3.11; tomli is the same parser for 3.10.
if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from gankit.cli.presets import PRESETS
from gankit.cli.terms import PENALTY_TERMS, TERM_FIELDS
from gankit.data.augment import get_augment
from gankit.errors import GankitError
from gankit.extensions.lr_scheduler import LR_DECAYS
from gankit.extensions.snapshot import parse_duration
from gankit.gan.losses import LOSSES
from gankit.models.archs import ARCHS
from gankit.models.layers import NORMS

#: Options only some recipes read; a recipe declares those it reads (``Recipe.reads``) and
#: refuses the others when they differ from their defaults below.
METHOD_OPTIONS = ("loss", "penalty", "penalty_weight", "penalty_every", "n_dis", "conditional",
                  "ema", "z_dim", "feature_net", "augment", "arch", "preset", *TERM_FIELDS)

INTERVAL_RE = re.compile(r"^([1-9][0-9]*)\s*(e|epoch|epochs|i|it|iter|iteration|iterations)?$")


T = TypeVar("T")


def filled(value: T | None, name: str) -> T:
    """The value of option ``name`` that the recipe's defaults fill in (``apply_defaults``)."""
    if value is None:
        raise GankitError(f"option {name} has no value; a run's options get the recipe's "
                          "defaults (gankit.cli.train.apply_defaults) before it is built.")
    return value


def _check_positive_ints(options: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(options, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise GankitError(f"--{_flag(name)} must be a positive integer, got {value!r}.")


def _check_non_negative_numbers(options: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(options, name)
        ok = _is_number(value) and value >= 0 and math.isfinite(value)
        if value is not None and not ok:
            raise GankitError(f"--{_flag(name)} must be a non-negative number, got {value!r}.")


def _check_non_negative_int(name: str, value: Any, what: str = "integer") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GankitError(f"--{_flag(name)} must be a non-negative {what}, got {value!r}.")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise GankitError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}.")


@dataclass
class DataOptions:
    """What the run trains on and how it is read."""

    data: str = "digits"
    data_mode: str = "auto"
    skip_corrupt: bool = False
    image_size: int | None = None
    # a fixed, class-stratified fraction of the training split (data efficiency studies)
    train_fraction: float | None = None
    workers: int = 0

    def validate(self) -> None:
        _check_positive_ints(self, ("image_size",))
        _check_non_negative_int("workers", self.workers)
        if self.data_mode not in ("auto", "memory", "lazy"):
            raise GankitError(f"--data-mode must be auto, memory or lazy, got {self.data_mode!r}.")
        fraction = self.train_fraction
        if fraction is not None and not (_is_number(fraction) and 0 < fraction <= 1):
            raise GankitError(f"--train-fraction must be in (0, 1], e.g. 0.1, got {fraction!r}.")


@dataclass
class ModelOptions:
    """The method (recipe) and its networks."""

    recipe: str = "dcgan"
    arch: str = "dcgan"
    z_dim: int | None = None
    width: int | None = None
    norm: str | None = None
    ema: float | None = None
    conditional: bool = False
    # a paper's recipe: option values and ramps (cli/presets.py)
    preset: str | None = None

    def validate(self) -> None:
        _check_positive_ints(self, ("z_dim", "width"))
        _check_choice("preset", self.preset, tuple(PRESETS))
        if self.ema is not None and not (_is_number(self.ema) and 0 <= self.ema < 1):
            raise GankitError(f"--ema must be a decay in [0, 1) (0: off), got {self.ema!r}.")
        _check_choice("norm", self.norm, NORMS)
        _check_choice("arch", self.arch, tuple(ARCHS))


@dataclass
class ObjectiveOptions:
    """The losses: the GAN loss, the penalty, the terms of cli/terms.py's TERM_OPTIONS (0 or
    None: off), the augmentation of what D sees, and recipe-specific weights."""

    loss: str | None = None
    penalty: str | None = None
    penalty_weight: float | None = None
    penalty_every: int | None = None
    n_dis: int | None = None
    augment: str | None = None
    lecam: float | None = None
    bcr: float | None = None
    path_length: float | None = None
    # recipe-specific weights (VAE-GAN, CycleGAN)
    weights: dict[str, float] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        _check_positive_ints(self, ("penalty_every", "n_dis"))
        _check_non_negative_numbers(self, ("penalty_weight", *TERM_FIELDS))
        _check_choice("loss", self.loss, tuple(LOSSES))
        _check_choice("penalty", self.penalty, tuple(PENALTY_TERMS))
        if self.augment is not None:
            if not isinstance(self.augment, str):
                raise GankitError(f"--augment must be a string such as diffaug or ada:0.6, got "
                                  f"{self.augment!r}.")
            try:
                get_augment(self.augment)
            except GankitError as exc:
                raise GankitError(f"--augment: {exc}.") from None
        for key, value in self.weights.items():
            if not (_is_number(value) and value >= 0):
                raise GankitError(f"weight {key!r} must be a non-negative number, got {value!r}.")


@dataclass
class OptimOptions:
    """The optimizers: batch, Adam's rates and betas, the learning-rate schedule (LRSchedule:
    decay "none" | "linear", the fraction of the run before it starts, a warm-up in updates)."""

    batch_size: int | None = None
    lr_gen: float | None = None
    lr_dis: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    lr_decay: str | None = None
    lr_decay_start: float | None = None
    lr_warmup: int = 0

    def validate(self) -> None:
        _check_positive_ints(self, ("batch_size",))
        _check_non_negative_numbers(self, ("lr_gen", "lr_dis"))
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0 <= value < 1):
                raise GankitError(f"--{_flag(name)} must be in [0, 1), got {value!r}.")
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
        _check_non_negative_int("lr_warmup", self.lr_warmup, "number of iterations")


@dataclass
class RunOptions:
    """The run: where, how long, on what, and what it writes (logs, samples, snapshots, the
    evaluator's feature network: inception:PATH or a network file, None: the default)."""

    out: str = "runs/gankit"
    epochs: int | None = None
    iterations: int | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    log_every: str | None = None
    sample_every: str | None = None
    snapshot_every: str | None = None
    keep_snapshots: int = 3
    keep_samples: int | None = None  # newest sample grids kept in samples/; None keeps all
    skip_nonfinite: bool = False
    feature_net: str | None = None
    eval_samples: int | None = None  # samples per evaluation; None: the data's default

    def validate(self) -> None:
        _check_positive_ints(self, ("epochs", "iterations", "keep_snapshots", "keep_samples",
                                    "eval_samples"))
        if self.eval_samples is not None and self.eval_samples < 2:
            raise GankitError(f"--eval-samples must be at least 2, got {self.eval_samples}.")
        if self.epochs is not None and self.iterations is not None:
            raise GankitError("give --epochs or --iterations, not both.")
        _check_non_negative_int("seed", self.seed)
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise GankitError(f"--precision must be fp32, bf16 or fp16, got {self.precision!r}.")
        for name in ("log_every", "sample_every", "snapshot_every"):
            value = getattr(self, name)
            if name == "snapshot_every" and value is not None and parse_duration(value):
                continue  # wall-clock: 30m, 90s, 2h
            if value is not None and name == "snapshot_every" and not INTERVAL_RE.match(
                    str(value).strip()):
                raise GankitError(
                    f"--snapshot-every {value!r} is not an interval; write N for iterations, Ne "
                    "for epochs or a training time such as 90s, 30m or 2h."
                )
            if value is not None:
                parse_interval(value, f"--{_flag(name)}")
        if self.feature_net is not None:
            _check_feature_net(self.feature_net)


#: the groups of TrainConfig, by attribute
GROUPS: dict[str, type[Any]] = {"dataset": DataOptions, "model": ModelOptions,
                                "objective": ObjectiveOptions, "optim": OptimOptions,
                                "run": RunOptions}
#: each option's group
GROUP_OF: dict[str, str] = {f.name: group for group, cls in GROUPS.items() for f in fields(cls)}


class TrainConfig:
    """Every option of ``gankit train``, grouped by concern: ``cfg.dataset``, ``cfg.model``,
    ``cfg.objective``, ``cfg.optim``, ``cfg.run``; ``None`` means 'the data set's default'.

    Built, merged, saved (config.json) and read (TOML) by the options' flat names
    (``TrainConfig(epochs=3)``, ``cfg.merged({"lr_gen": 1e-4})``, ``cfg.get("lr_gen")``), so
    a run directory's config.json is the flat table it always was.
    """

    dataset: DataOptions
    model: ModelOptions
    objective: ObjectiveOptions
    optim: OptimOptions
    run: RunOptions

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(GROUP_OF)
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}")
        for group, cls in GROUPS.items():
            mine = {k: v for k, v in values.items() if GROUP_OF[k] == group}
            setattr(self, group, cls(**mine))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"TrainConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def get(self, name: str) -> Any:
        """The option ``name`` (its flat name) from its group."""
        return getattr(getattr(self, GROUP_OF[name]), name)

    def to_dict(self) -> dict[str, Any]:
        """The flat table of every option (config.json)."""
        return {k: v for group in GROUPS for k, v in dataclasses.asdict(getattr(self, group))
                .items()}

    @classmethod
    def field_names(cls) -> set[str]:
        return set(GROUP_OF)

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
        """A copy with the flat options ``values`` replaced."""
        return TrainConfig(**{**self.to_dict(), **values})

    def validate(self) -> None:
        """Each group's checks (a recipe's ``check`` refuses the options it does not read)."""
        for group in GROUPS:
            getattr(self, group).validate()

    def stop_trigger(self) -> tuple[int, str]:
        if self.run.iterations is not None:
            return (self.run.iterations, "iteration")
        return (self.run.epochs or 1, "epoch")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_feature_net(spec: str) -> None:
    """Refuse a wrong --feature-net before the run starts, not at its first evaluation."""
    from gankit.metrics.inception import is_inception_spec, load_inception

    if is_inception_spec(spec):
        load_inception(spec)  # the hash and the layout, a second of reading
    elif not Path(spec).is_file():
        raise GankitError(f"feature network file {spec} does not exist; pass inception:PATH, a "
                          "TorchScript file or a module saved with torch.save(model).")


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


def _type_error(hint: Any, value: Any) -> str | None:
    """What ``value`` should have been for a field annotated ``hint``; None when it fits.

    TOML has no null, so ``X | None`` means X; a bool is never taken for a number. The
    wanted type is followed by what ``value`` is where that is the likely slip (a string,
    true/false, a fraction).
    """
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = typing.get_origin(hint)
    if base in (typing.Union, types.UnionType):
        return _type_error(args[0], value) if len(args) == 1 else None
    if base is dict:
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and _is_number(v) for k, v in value.items())
        return None if ok else "a table of numbers (NAME = VALUE)"
    if hint is bool:
        return None if isinstance(value, bool) else f"true or false{_what_it_is(value)}"
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"a whole number{_what_it_is(value)}"
    if hint is float:
        return None if _is_number(value) else f"a number{_what_it_is(value)}"
    if hint is str:
        return None if isinstance(value, str) else 'a string in quotes (e.g. "500" or "5e")'
    return None


def _what_it_is(value: Any) -> str:
    """`` (not a string)`` and the like: the kind of a TOML value that has the wrong type."""
    if isinstance(value, str):
        return " (not a string)"
    if isinstance(value, bool):
        return " (not true or false)"
    if isinstance(value, float):
        return " (not a fraction)"
    return ""


def _toml_literal(value: Any) -> str:
    """``value`` as it is written in TOML: ``true``, ``"3"``, ``2.5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def option_types() -> dict[str, Any]:
    """The TOML type table: each option's type, read from the groups' annotations."""
    return {k: v for cls in GROUPS.values() for k, v in typing.get_type_hints(cls).items()}


def _line_of(lines: list[str], key: str, table: str | None = None) -> int:
    """1-based line where ``key = ...`` (or the table ``[key]``) is written; 0 if not found."""
    start = 0
    if table is not None:
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
        start = next((i for i, line in enumerate(lines) if header.match(line)), 0)
    pattern = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*=""")
    table_header = re.compile(rf"^\s*\[\s*(\w+\.)?{re.escape(key)}\s*\]")
    for i in range(start, len(lines)):
        if pattern.match(lines[i]) or table_header.match(lines[i]):
            return i + 1
    return 0


def load_toml(path: str | Path) -> dict[str, Any]:
    """The options of a TOML file (a ``[train]`` table or top-level keys), checked strictly.

    Every value must have its option's type (``conditional = "no"`` is an error, not true),
    an unknown key or table and one option written twice (``batch-size`` and ``batch_size``)
    are errors; each error names the file, the line and the key.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
        values = tomllib.loads(text)
    except FileNotFoundError:
        raise GankitError(f"config file {path} does not exist; check the --config path.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GankitError(f"config file {path} is not valid TOML ({exc}); fix it.") from None
    except OSError as exc:
        raise GankitError(f"config file {path} cannot be read ({exc.strerror}).") from None
    lines = text.splitlines()
    table_name: str | None = None
    table = values
    if isinstance(values.get("train"), dict):
        table_name, table = "train", values["train"]
        for key, value in values.items():
            if key != "train":
                what = f"table [{key}]" if isinstance(value, dict) else f"key {key!r}"
                raise GankitError(
                    f"config file {path} line {_line_of(lines, key)}: unknown {what} beside "
                    "[train]; put every option in the [train] table."
                )
    types_ = option_types()
    seen: dict[str, str] = {}
    options: dict[str, Any] = {}
    for raw, value in table.items():
        name = raw.replace("-", "_")
        line = _line_of(lines, raw, table_name)
        where = f"config file {path} line {line}"
        if name in seen:
            first = _line_of(lines, seen[name], table_name)
            raise GankitError(
                f"{where}: {raw!r} and {seen[name]!r} (line {first}) are the same option; "
                "keep one."
            )
        seen[name] = raw
        if name not in types_:
            what = f"table [{raw}]" if isinstance(value, dict) else f"option {raw!r}"
            raise GankitError(f"{where}: unknown {what}; see gankit train --help for the names.")
        wanted = _type_error(types_[name], value)
        if wanted is not None:
            raise GankitError(f"{where}: {raw} must be {wanted}, got {_toml_literal(value)}.")
        _check_range(name, raw, value, where)
        options[name] = value
    return options


def _check_range(name: str, raw: str, value: Any, where: str) -> None:
    """Refuse an option's value out of its range (``batch-size = -4``) at its file and line.

    The value alone is checked against ``TrainConfig.validate``; what depends on other
    options (both a length in epochs and in iterations, say) is checked once the command
    line is merged. The feature network is checked there too: loading it takes a second.
    """
    if name == "feature_net":
        return
    try:
        TrainConfig().merged({name: value}).validate()
    except GankitError as exc:
        message = str(exc)
        flag = f"--{_flag(name)}"
        message = message[len(flag):] if message.startswith(flag) else f": {message}"
        raise GankitError(f"{where}: {raw}{message}") from None
