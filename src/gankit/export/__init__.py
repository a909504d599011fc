"""Generator files: a trained generator and what rebuilds it, in one ``.safetensors`` file.

A generator file holds the generator's ``state_dict`` (its EMA average when the run kept
one) as safetensors tensors, and in the file's metadata, as JSON strings:

* ``format`` / ``version``: ``gankit-generator``, 1;
* ``generator``: the :class:`GeneratorSpec` (``arch``, ``shape``, ``z_dim``, ``width``,
  ``n_classes``, ``norm``): ``get_arch(arch).build(shape, ...)`` makes the module again;
* ``data``: the data's ``kind`` (``image`` or ``points``), value range ``low``/``high``
  (what sampled images are mapped back to) and name;
* ``run``: where the weights come from (recipe, data spec, iteration, epoch, whether they
  are an EMA average, the model's name in the updater);
* ``metrics`` / ``protocol``: the held-out scores at that iteration and the protocol they
  were computed under (``gankit.metrics.protocol.Protocol``; null when not scored);
* ``gankit_version``, and ``sha256``: a digest of every tensor, so a damaged file is named
  corrupt rather than loaded.

The file is written atomically (``gankit.training.checkpoint.write_atomic``).
:func:`load_generator` returns the module in eval mode, ready for
``gankit.gan.sampling.generate`` or ``gen(gen.sample_z(n), y)``, without a trainer or data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save
from torch import nn

from gankit.errors import GankitError
from gankit.models.archs import get_arch
from gankit.training.checkpoint import state_digest, write_atomic
from gankit.version import __version__

__all__ = ["FORMAT", "GeneratorInfo", "GeneratorSpec", "generator_bytes", "generator_info",
           "load_generator", "read_generator", "save_generator"]

FORMAT = "gankit-generator"
VERSION = 1
#: the metadata keys that hold JSON
_JSON_KEYS = ("generator", "data", "run", "metrics", "protocol")


@dataclass(frozen=True)
class GeneratorSpec:
    """What rebuilds a generator: the ``--arch`` family and the options its builder takes."""

    arch: str
    shape: tuple[int, ...]
    z_dim: int
    width: int | None = None
    n_classes: int = 0
    norm: str | None = None

    def build(self) -> nn.Module:
        """A freshly initialised generator of this family and size (the discriminator the
        family's builder makes beside it is dropped). torch's global RNG is left as it was,
        so checking or loading a file in a training process does not change its stream."""
        with torch.random.fork_rng(devices=[]):  # the modules are initialised on the CPU
            gen, _ = get_arch(self.arch).build(tuple(self.shape), z_dim=self.z_dim,
                                               width=self.width, n_classes=self.n_classes,
                                               norm=self.norm)
        return gen

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorSpec:
        return cls(arch=str(data["arch"]), shape=tuple(int(s) for s in data["shape"]),
                   z_dim=int(data["z_dim"]),
                   width=None if data.get("width") is None else int(data["width"]),
                   n_classes=int(data.get("n_classes", 0)), norm=data.get("norm"))


@dataclass(frozen=True)
class GeneratorInfo:
    """Everything a generator file says besides its weights (see the module docstring)."""

    spec: GeneratorSpec
    #: ``kind`` ("image" or "points"), ``low``/``high`` (the data's value range), ``name``
    data: dict[str, Any] = field(default_factory=lambda: {"kind": "image", "low": -1.0,
                                                          "high": 1.0})
    #: recipe, data spec, iteration, epoch, ema (bool), model (the updater's name for it)
    run: dict[str, Any] = field(default_factory=dict)
    #: held-out scores at that iteration (``val/fid``, ...)
    metrics: dict[str, float] = field(default_factory=dict)
    #: ``Protocol.as_dict()`` of the metrics, or None
    protocol: dict[str, Any] | None = None
    gankit_version: str = ""

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "image"))

    def metadata(self) -> dict[str, str]:
        """The file's metadata: strings, the structured ones as JSON."""
        values = {"generator": asdict(self.spec), "data": self.data, "run": self.run,
                  "metrics": self.metrics, "protocol": self.protocol}
        meta = {k: json.dumps(values[k], sort_keys=True) for k in _JSON_KEYS}
        meta.update(format=FORMAT, version=str(VERSION),
                    gankit_version=self.gankit_version or __version__)
        return meta


def _tensors(gen: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as separate contiguous CPU tensors (safetensors refuses shared ones)."""
    return {k: v.detach().to("cpu", copy=True).contiguous()
            for k, v in sorted(gen.state_dict().items())}


def _check_rebuilds(gen: nn.Module, spec: GeneratorSpec) -> None:
    """Refuse a spec whose module would not take these weights (names and shapes)."""
    want = {k: tuple(v.shape) for k, v in spec.build().state_dict().items()}
    have = {k: tuple(v.shape) for k, v in gen.state_dict().items()}
    if want != have:
        diff = sorted(set(want.items()) ^ set(have.items()))
        raise GankitError(f"the generator does not match its description {spec} (first "
                          f"difference: {diff[0][0]}); describe it with the options it was "
                          "built with.")


def generator_bytes(gen: nn.Module, info: GeneratorInfo, *, check: bool = True) -> bytes:
    """The generator file of ``gen`` as bytes; ``check`` first rebuilds ``info.spec`` to
    make sure the file loads (the cost of building the networks once)."""

    if check:
        _check_rebuilds(gen, info.spec)
    tensors = _tensors(gen)
    meta = info.metadata()
    meta["sha256"] = state_digest(tensors)
    return save(tensors, metadata=meta)


def save_generator(path: str | Path, gen: nn.Module, info: GeneratorInfo, *,
                   check: bool = True) -> None:
    """Write ``gen`` and ``info`` to ``path`` (a ``.safetensors`` file) atomically."""
    write_atomic(path, generator_bytes(gen, info, check=check))


def _corrupt(path: Path, why: str) -> GankitError:
    return GankitError(f"generator file {path} is corrupt ({why}); export it again from its "
                       "run.")


def _header(path: Path, data: bytes) -> dict[str, str]:
    """The safetensors header's metadata, read by hand so a damaged header is named."""
    if len(data) < 8:
        raise _corrupt(path, f"it is {len(data)} bytes long, shorter than any header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise _corrupt(path, "it is shorter than its header says: truncated")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, ValueError):
        raise _corrupt(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GankitError(f"{path} is not a gankit generator file (its metadata names no "
                          f"{FORMAT!r} format); give a file that gankit exported.")
    return meta


def read_generator(path: str | Path) -> tuple[GeneratorInfo, dict[str, torch.Tensor]]:
    """The checked contents of a generator file: its :class:`GeneratorInfo` and tensors.

    A missing, truncated or damaged file (any tensor byte: the digest covers them all) is a
    GankitError naming it.
    """

    path = Path(path)
    if not path.is_file():
        raise GankitError(f"generator file {path} does not exist; give the path of a "
                          ".safetensors file exported from a run (or a run's best.safetensors).")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GankitError(f"cannot read generator file {path} ({exc.strerror or exc}); "
                          "check its permissions.") from None
    meta = _header(path, data)
    try:
        version = int(meta.get("version", ""))
    except ValueError:
        raise _corrupt(path, f"its version {meta.get('version')!r} is not a number") from None
    if version > VERSION:
        raise GankitError(f"generator file {path} has format version {version}, newer than "
                          f"this gankit reads ({VERSION}); upgrade gankit to load it.")
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors' own error type for a damaged body
        raise _corrupt(path, f"its tensors cannot be read: {exc}") from None
    if meta.get("sha256") != state_digest(dict(sorted(tensors.items()))):
        raise _corrupt(path, "its tensors do not match the digest stored with them")
    try:
        values = {k: json.loads(meta[k]) for k in _JSON_KEYS}
        info = GeneratorInfo(spec=GeneratorSpec.from_dict(values["generator"]),
                             data=dict(values["data"]), run=dict(values["run"]),
                             metrics={k: float(v) for k, v in values["metrics"].items()},
                             protocol=values["protocol"],
                             gankit_version=str(meta.get("gankit_version", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _corrupt(path, f"its metadata is incomplete: {type(exc).__name__} {exc}") from None
    return info, tensors


def generator_info(path: str | Path) -> GeneratorInfo:
    """What the generator file at ``path`` says about its generator (checked like a load)."""
    return read_generator(path)[0]


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The generator stored at ``path``, on ``device``, in eval mode with gradients off.

    ``gen.sample_z(n)`` draws its noise, ``gen(z, y)`` its outputs (images in [-1, 1] or
    points); ``gankit.gan.sampling.generate(gen, n, seed=...)`` does both in batches. A
    StyleGAN2 generator keeps its ``w_avg``, so ``gen.truncation_psi = 0.7`` truncates.
    """
    info, tensors = read_generator(path)
    gen = info.spec.build()
    try:
        gen.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise GankitError(f"generator file {path} does not fit the {info.spec.arch} network "
                          f"it describes ({first}); export it again from its run.") from None
    return gen.to(device).eval().requires_grad_(False)
