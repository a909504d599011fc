"""A generator as an ONNX model, checked against PyTorch's output with onnxruntime.

The model takes ``z`` (batch, z_dim) float32 and, for a conditional generator, ``y``
(batch,) int64 class indices, and returns ``x``: images (batch, C, H, W) in [-1, 1] or
points (batch, D), as the generator does in eval mode. The batch size is free. The
generator's metadata (see :mod:`gankit.export`) is copied into the model's
``metadata_props``.

The exporter is torch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``):
it converts these generators in about a second, where the torch.export-based one (the
default since torch 2.9, which deprecates this one) took 10-90 s each on a 2-core CPU. Both
convert every ``--arch`` after the two rewrites below.

What changes on the way (a copy is changed; it computes what the original computes, and
the check below holds the result to it):

* spectral-norm parametrisations are folded into plain weights (in eval mode the
  normalised weight is a constant; the TorchScript exporter has no ONNX form of the
  ``vdot`` its computation uses);
* StyleGAN2's modulated convolutions fold the batch into the groups of one convolution;
  ONNX's ``Conv`` takes its group count as a fixed attribute, so that form would tie the
  model to the traced batch size. The copy scales the input channels by the styles, runs
  one shared convolution and scales the output channels by the demodulation factors.

StyleGAN2's truncation ``psi`` is the generator's ``truncation_psi`` when exported, a
constant of the graph.

Needs ``onnx`` and ``onnxruntime``: gankit's ``onnx`` extra.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from gankit.errors import GankitError
from gankit.models.layers import ModulatedConv2d, upsample_conv2d
from gankit.training.checkpoint import write_atomic
from gankit.training.eval_mode import eval_mode

__all__ = ["ONNX_ATOL", "PerSampleModulatedConv2d", "check_onnx_available", "onnx_bytes",
           "save_onnx"]

#: how far onnxruntime's output may be from PyTorch's (outputs are in [-1, 1])
ONNX_ATOL = 1e-4


def check_onnx_available() -> None:
    """GankitError naming the extra unless the ONNX exporter and runtime import."""
    missing = []
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise GankitError(f"ONNX export needs the {', '.join(missing)} package"
                          f"{'s' if len(missing) > 1 else ''}, which are not installed; "
                          "install gankit's onnx extra (pip install 'gankit[onnx]').")


class PerSampleModulatedConv2d(nn.Module):
    """``ModulatedConv2d`` without the batch in the convolution's groups.

    ``conv(x * s) * d`` equals the per-sample kernels ``weight * s * d`` applied to ``x``
    (the styles ``s`` scale input channels, the demodulation ``d`` output channels), so one
    shared convolution serves any batch size. Shares ``conv``'s parameters.
    """

    def __init__(self, conv: ModulatedConv2d, eps: float = 1e-8) -> None:
        super().__init__()
        self.conv, self.eps = conv, eps

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        c = self.conv
        weight = c.weight * c.weight_gain
        styles = c.affine(w)
        k = weight.shape[-1]
        x = x * styles[:, :, None, None].to(x.dtype)
        if c.up:  # the blur after the transposed convolution acts per channel: d commutes
            out = upsample_conv2d(x, weight.to(x.dtype))
        else:
            out = F.conv2d(x, weight.to(x.dtype), padding=k // 2)
        if c.demodulate:
            d = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).T + self.eps)
            out = out * d[:, :, None, None].to(out.dtype)
        return out


def _fold_parametrizations(gen: nn.Module) -> None:
    """Replace every parametrised tensor of ``gen`` (a copy) by its current value.

    ``remove_parametrizations`` edits the module's class, which a deep copy shares with the
    original; each module first gets a class of its own, so the original keeps its own.
    """
    for module in list(gen.modules()):
        if not parametrize.is_parametrized(module):
            continue
        cls = type(module)
        own = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
        module.__class__ = type(cls.__name__, cls.__bases__, own)
        parametrized = cast(nn.ModuleDict, module.parametrizations)
        for name in list(parametrized.keys()):
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def _exportable(gen: nn.Module) -> nn.Module:
    """A CPU copy of ``gen`` in eval mode with the rewrites the module docstring lists."""
    gen = copy.deepcopy(gen).cpu().eval().requires_grad_(False)
    with torch.no_grad():
        _fold_parametrizations(gen)
    for module in list(gen.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, ModulatedConv2d):
                setattr(module, child_name, PerSampleModulatedConv2d(child))
    return gen


class _Inputs(nn.Module):
    """``forward(z)`` or ``forward(z, y)``: the graph's inputs, nothing optional."""

    def __init__(self, gen: nn.Module, conditional: bool) -> None:
        super().__init__()
        self.gen, self.conditional = gen, conditional

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return cast(Tensor, self.gen(z, y if self.conditional else None))


def _example(gen: nn.Module, n: int, seed: int) -> tuple[Tensor, ...]:
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, int(getattr(gen, "z_dim")), generator=rng)  # noqa: B009 (a module attr)
    n_classes = int(getattr(gen, "n_classes", 0))
    return (z, torch.arange(n) % n_classes) if n_classes else (z,)


def onnx_bytes(gen: nn.Module, metadata: dict[str, str] | None = None, *,
               seed: int = 0) -> tuple[bytes, float]:
    """The ONNX model of ``gen`` and the largest absolute difference between onnxruntime's
    output and ``gen``'s on a fresh batch of another size than the traced one.

    A difference above ``ONNX_ATOL``, or a generator torch's exporter cannot convert, is a
    GankitError (nothing is written by this function either way).
    """
    check_onnx_available()
    import onnx
    import onnxruntime

    conditional = int(getattr(gen, "n_classes", 0)) > 0
    wrapped = _Inputs(_exportable(gen), conditional).eval()
    names = ["z", "y"] if conditional else ["z"]
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # the exporter's deprecation notice, and its tracer's notes on Python values
            warnings.simplefilter("ignore")
            # (the TorchScript exporter writes to file objects too; the stubs say paths only)
            torch.onnx.export(wrapped, _example(gen, 2, seed), buffer,  # type: ignore[arg-type]
                              dynamo=False,
                              input_names=names, output_names=["x"],
                              dynamic_axes={n: {0: "batch"} for n in [*names, "x"]})
    except Exception as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GankitError(f"torch's ONNX exporter cannot convert this {type(gen).__name__} "
                          f"({why}); export it as .safetensors instead.") from None
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in sorted((metadata or {}).items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    data = model.SerializeToString()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    inputs = _example(gen, 5, seed + 1)
    with torch.no_grad(), eval_mode(gen):
        device = next(gen.parameters()).device
        expected = gen(*(t.to(device) for t in inputs)).float().cpu()
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]
    diff = float((torch.from_numpy(got) - expected).abs().max())
    if not diff <= ONNX_ATOL:
        raise GankitError(f"the ONNX model of this {type(gen).__name__} differs from PyTorch's "
                          f"output by up to {diff:.3g} (more than {ONNX_ATOL:g}); export it as "
                          ".safetensors instead.")
    return data, diff


def save_onnx(path: Any, gen: nn.Module, metadata: dict[str, str] | None = None) -> float:
    """Write the checked ONNX model of ``gen`` to ``path`` atomically; return the check's
    largest difference."""

    data, diff = onnx_bytes(gen, metadata)
    write_atomic(path, data)
    return diff

