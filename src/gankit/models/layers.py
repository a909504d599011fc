"""Layer helpers shared by the networks: normalisations, spectral norm, residual blocks,
equalized learning rate and modulated convolution."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gankit.errors import GankitError

__all__ = [
    "NORMS",
    "ClassBatchNorm2d",
    "DBlock",
    "EqualConv2d",
    "EqualLinear",
    "GBlock",
    "ModulatedConv2d",
    "NoiseSampling",
    "PlainBatchNorm2d",
    "SelfAttention",
    "VectorBatchNorm2d",
    "apply_spectral_norm",
    "blur",
    "blur_downsample",
    "check_labels",
    "check_positive",
    "image_dims",
    "lrelu_gain",
    "modulated_conv2d",
    "projection_logits",
    "upsample_2x",
    "upsample_conv2d",
]

#: discriminator normalisations (``--norm``)
NORMS = ("batch", "none", "spectral", "layer")

_SN_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral-normalise, in place, the weight of every Linear and Conv layer in ``module``.

    Returns ``module``. Layers that already carry a weight parametrization are left alone,
    so calling this twice is harmless.
    """
    # Collect first: registering a parametrization while iterating modules() would visit
    # the new ParametrizationList children too.
    targets = [
        m
        for m in module.modules()
        if isinstance(m, _SN_TYPES) and not _is_parametrized(m, "weight")
    ]
    for m in targets:
        spectral_norm(m)
    return module


def _is_parametrized(m: nn.Module, name: str) -> bool:
    return torch.nn.utils.parametrize.is_parametrized(m, name)


# ---------------------------------------------------------------- equalized learning rate
# Karras et al. 2018 (ProGAN) section 4.1: weights are stored as N(0, 1) and scaled by
# He's constant at run time, so Adam's per-parameter step sizes mean the same for every
# layer whatever its fan-in. ``lr_mul`` further scales the effective learning rate (the
# StyleGAN mapping network uses 0.01) by storing ``weight / lr_mul`` and multiplying back.

_LRELU_GAIN = math.sqrt(2.0)


def lrelu_gain(x: Tensor) -> Tensor:
    """LeakyReLU(0.2) times sqrt(2), the variance-preserving activation of StyleGAN."""
    return F.leaky_relu(x, 0.2) * _LRELU_GAIN


class EqualLinear(nn.Module):
    """A linear layer with equalized learning rate and optional ``lrelu_gain`` activation."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = (nn.Parameter(torch.full((out_features,), bias_init / lr_mul))
                     if bias else None)
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        out = F.linear(x, self.weight * self.weight_gain, bias)
        return lrelu_gain(out) if self.activate else out


class EqualConv2d(nn.Module):
    """A 'same' convolution with equalized learning rate.

    ``down=True`` halves the resolution as StyleGAN2 does: a kernel larger than 1x1 runs
    at stride 2 on the input blurred by the [1, 3, 3, 1] filter (:func:`blur`, padded so
    the output side is exactly half), a 1x1 kernel runs after :func:`blur_downsample`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 bias: bool = True, activate: bool = False, down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.activate, self.down = activate, down

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        k = w.shape[-1]
        if not self.down:
            x = F.conv2d(x, w, padding=self.padding)
        elif k == 1:
            x = F.conv2d(blur_downsample(x), w)
        else:
            # The blur leaves a side of H + 2 * pad - 3, the k-tap stride-2 conv then
            # (H + 2 * pad - 3 - k) // 2 + 1, which is H / 2 for pad = (k + 1) // 2.
            x = F.conv2d(blur(x, (k + 1) // 2), w, stride=2)
        if self.bias is not None:
            x = x + self.bias.view(1, -1, 1, 1).to(x.dtype)
        return lrelu_gain(x) if self.activate else x


# ------------------------------------------------------------------ resampling, plain ops
# StyleGAN2's resampling (Karras et al. 2020) and R3GAN's: the separable low-pass filter
# [1, 3, 3, 1] (the [1, 2, 1] filter convolved with the box [1, 1]), normalised to sum to
# one, and zeros outside the image.
def _fir_kernel(x: Tensor, gain: float) -> Tensor:
    """The (C, 1, 4, 4) depthwise [1, 3, 3, 1] kernel for ``x``, summing to ``gain``."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype)
    # int(): a traced export then sees a kernel of fixed shape (the channels are fixed).
    return (torch.outer(k, k) * (gain / 64.0)).expand(int(x.shape[1]), 1, 4, 4)


def blur(x: Tensor, padding: int, gain: float = 1.0) -> Tensor:
    """Low-pass every channel with the 4x4 [1, 3, 3, 1] filter (summing to ``gain``),
    ``padding`` zeros on each side, stride 1: the side becomes ``H + 2 * padding - 3``."""
    return F.conv2d(x, _fir_kernel(x, gain), padding=padding, groups=int(x.shape[1]))


def upsample_2x(x: Tensor) -> Tensor:
    """Double the resolution with the [1, 3, 3, 1] filter, zeros outside the image.

    Output pixel ``2i`` is ``(x[i - 1] + 3 x[i]) / 4`` and ``2i + 1`` is
    ``(3 x[i] + x[i + 1]) / 4`` along each axis, with ``x`` zero outside: the filter
    (times the gain 4) applied to ``x`` with zeros inserted between its pixels. Computed
    as bilinear interpolation (``align_corners=False``, which weighs the neighbours 3/4 and
    1/4) of ``x`` padded by one zero, cropped back to twice the side.
    """
    up = F.interpolate(F.pad(x, (1, 1, 1, 1)), scale_factor=2.0, mode="bilinear",
                       align_corners=False)
    return up[:, :, 2:-2, 2:-2]


def blur_downsample(x: Tensor) -> Tensor:
    """Halve the resolution: the [1, 3, 3, 1] / 8 filter along each axis at stride 2, one
    zero of padding on each side, so each output is centred on a 2x2 cell of the input."""
    # (H + 2 - 4) / 2 + 1 = H / 2
    return F.conv2d(x, _fir_kernel(x, 1.0), stride=2, padding=1, groups=int(x.shape[1]))


# ----------------------------------------------------------------- modulated convolution
def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True,
                     up: bool = False, eps: float = 1e-8) -> Tensor:
    """StyleGAN2's modulated convolution (Karras et al. 2020, section 2.2), 'same' padding.

    ``x`` is (B, Cin, H, W), ``weight`` (Cout, Cin, k, k) (already scaled), ``styles``
    (B, Cin). Each sample gets its own kernel ``w'[b] = weight * styles[b]`` over input
    channels, divided by its per-output-channel L2 norm when ``demodulate`` (so unit-variance
    input gives unit-variance output). The batch is folded into the groups of one grouped
    convolution, so the B different kernels run as a single conv call.

    ``up=True`` doubles the resolution as StyleGAN2 does: the kernels run as a stride-2
    transposed convolution at the input's resolution (the same as convolving ``x`` with
    zeros inserted between its pixels), then :func:`blur` with the gain 4 makes the output
    exactly (2H, 2W). Away from the border this equals ``upsample_2x`` followed by the
    convolution, for a quarter of the convolution's multiply-accumulates.
    """
    b, cin, h, wd = x.shape
    cout, _, k, _ = weight.shape
    scale = styles.reshape(b, 1, cin, 1, 1)
    if demodulate:
        # sum over (Cin, k, k) of (weight * s)^2 = s^2 @ (sum over k, k of weight^2): a small
        # matmul instead of squaring and summing the (B, Cout, Cin, k, k) kernels.
        d = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).T + eps)  # (B, Cout)
        scale = scale * d.reshape(b, cout, 1, 1, 1)
    w = weight.unsqueeze(0) * scale  # (B, Cout, Cin, k, k)
    flat = x.reshape(1, b * cin, h, wd)
    if up:
        out = upsample_conv2d(flat, w.reshape(b * cout, cin, k, k).to(x.dtype), groups=b)
        return out.reshape(b, cout, 2 * h, 2 * wd)
    out = F.conv2d(flat, w.reshape(b * cout, cin, k, k).to(x.dtype), padding=k // 2, groups=b)
    return out.reshape(b, cout, h, wd)


def upsample_conv2d(x: Tensor, weight: Tensor, groups: int = 1) -> Tensor:
    """StyleGAN2's upsampling convolution: (N, Cin, H, W) -> (N, Cout, 2H, 2W).

    ``weight`` is an ordinary (Cout, Cin / groups, k, k) convolution kernel, k odd. It runs
    as a stride-2 transposed convolution (flipped, so it equals the plain convolution of
    ``x`` with zeros inserted between its pixels; side 2H + k - 2), followed by
    :func:`blur` with the gain 4 and the padding that leaves exactly 2H.
    """
    cout, cin_g, k, _ = weight.shape
    if k % 2 == 0:
        raise GankitError(f"the upsampling convolution needs an odd kernel size, got {k}")
    # (Cout, Cin/g, k, k) -> (Cin, Cout/g, k, k): per group, in and out channels swap.
    wt = weight.reshape(groups, cout // groups, cin_g, k, k).transpose(1, 2)
    wt = wt.reshape(groups * cin_g, cout // groups, k, k).flip(2, 3)
    out = F.conv_transpose2d(x, wt, stride=2, groups=groups)
    # side 2H + k - 2, blurred with pad p: 2H + k - 5 + 2p, which is 2H for p = (5 - k) / 2
    # when k <= 5 and else a crop.
    pad = (5 - k) // 2
    if pad >= 0:
        return blur(out, pad, gain=4.0)
    return blur(out, 0, gain=4.0)[:, :, -pad:pad, -pad:pad]


class ModulatedConv2d(nn.Module):
    """A modulated (and by default demodulated) convolution whose styles come from ``w``.

    The affine layer that maps ``w`` to the per-input-channel scales starts with bias 1, so
    at initialisation the layer behaves like a plain convolution. ``up=True`` doubles the
    resolution (the stride-2 transposed convolution and blur of :func:`modulated_conv2d`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *,
                 demodulate: bool = True, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate, self.up = demodulate, up

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w),
                                demodulate=self.demodulate, up=self.up)


class ClassBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are looked up per class (SNGAN's conditional BN).

    Gains start at 1 and biases at 0, so a new conditional generator behaves like an
    unconditional one until the classes pull apart.
    """

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(n_classes, channels)
        self.bias = nn.Embedding(n_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gain = self.gain(y)[:, :, None, None]
        bias = self.bias(y)[:, :, None, None]
        return cast(Tensor, self.bn(x) * gain + bias)


class VectorBatchNorm2d(nn.Module):
    """Batch norm with gain ``1 + W_g c`` and bias ``W_b c`` from a condition vector ``c``.

    BigGAN's conditional BN: ``c`` is the shared class embedding joined with this block's
    chunk of z, so one embedding serves every block instead of a table per block.
    """

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels, bias=False)
        self.bias = nn.Linear(cond_dim, channels, bias=False)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        gain = 1.0 + self.gain(c)[:, :, None, None]
        return cast(Tensor, self.bn(x) * gain + self.bias(c)[:, :, None, None])


class PlainBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that accepts (and ignores) a condition, so blocks need no branch."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return super().forward(x)


class GBlock(nn.Module):
    """Generator residual block: BN-ReLU-up-conv3x3-BN-ReLU-conv3x3, plus an up-1x1 shortcut.

    ``norm(channels)`` builds the normalisation, called as ``norm_layer(h, cond)``, which is
    how the same block serves SNGAN (plain or per-class BN) and BigGAN (vector-conditioned
    BN). Upsampling is nearest-neighbour, as in the Chainer SNGAN and BigGAN code.
    """

    def __init__(self, cin: int, cout: int, norm: Callable[[int], nn.Module],
                 up: bool = True) -> None:
        super().__init__()
        self.up = up
        self.norm1, self.norm2 = norm(cin), norm(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if (cin != cout or up) else None

    def _up(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest") if self.up else x

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h = self.conv1(self._up(F.relu(self.norm1(x, cond))))
        h = self.conv2(F.relu(self.norm2(h, cond)))
        s = self._up(x)
        return cast(Tensor, h + (self.shortcut(s) if self.shortcut is not None else s))


class DBlock(nn.Module):
    """Discriminator residual block: (ReLU)-conv3x3-ReLU-conv3x3-(avgpool), plus a shortcut.

    ``first=True`` is SNGAN's "optimized" input block: no ReLU on the raw image, and the
    shortcut pools before its 1x1 conv. Later blocks are pre-activated and convolve, then
    pool. The hidden width is the input's (SNGAN) unless ``wide`` (BigGAN) or ``first``.
    The ReLU is out of place: the shortcut still needs the unactivated input.
    """

    def __init__(self, cin: int, cout: int, down: bool, first: bool = False,
                 wide: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        hidden = cout if (wide or first) else cin
        self.conv1 = nn.Conv2d(cin, hidden, 3, 1, 1)
        self.conv2 = nn.Conv2d(hidden, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if (first or cin != cout or down) else None

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self._pool(self.conv2(F.relu(h)))
        if self.shortcut is None:
            return h + x
        s = self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x))
        return h + s


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019) with BigGAN's pooled keys and values.

    ``out = x + gamma * o(attend(theta(x), maxpool(phi(x)), maxpool(g(x))))``; ``gamma``
    starts at 0, so a new block is the identity. Needs even spatial sides; queries and keys
    have ``channels // 8`` channels, values ``channels // 2`` (at least 1 each, for tiny tests).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        qk, self.v_channels = max(1, channels // 8), max(1, channels // 2)
        self.theta = nn.Conv2d(channels, qk, 1, bias=False)
        self.phi = nn.Conv2d(channels, qk, 1, bias=False)
        self.g = nn.Conv2d(channels, self.v_channels, 1, bias=False)
        self.o = nn.Conv2d(self.v_channels, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        n, _, h, w = x.shape
        q = self.theta(x).flatten(2)                        # (n, c/8, hw)
        k = F.max_pool2d(self.phi(x), 2).flatten(2)         # (n, c/8, hw/4)
        v = F.max_pool2d(self.g(x), 2).flatten(2)           # (n, c/2, hw/4)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (n, hw, hw/4)
        o = (v @ attn.transpose(1, 2)).view(n, self.v_channels, h, w)
        return cast(Tensor, x + self.gamma * self.o(o))


# ------------------------------------------------------------ what every network checks
def image_dims(shape: Sequence[int], *, example: str) -> tuple[int, int, int]:
    """``shape`` as ``(C, H, W)`` of positive integers (numpy ints and torch.Size too, not
    floats); GankitError naming it otherwise, with ``example`` as the fix."""
    dims: tuple[Any, ...]
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        dims = tuple(shape)
    if len(dims) != 3 or any(not isinstance(d, int) or d < 1 for d in dims):
        raise GankitError(
            f"image shape {dims} is not (channels, height, width) with positive integers; "
            f"pass e.g. {example}"
        )
    c, h, w = dims
    return c, h, w


def projection_logits(head: nn.Module, embed: nn.Module | None, h: Tensor,
                      y: Tensor | None) -> Tensor:
    """A projection discriminator's output (Miyato & Koyama 2018): ``head(h)`` plus, when
    conditional, the inner product of the class embedding with the features ``h``."""
    out = head(h).squeeze(1)
    if embed is not None:
        out = out + (embed(y) * h).sum(dim=1)
    return cast(Tensor, out)


def check_labels(y: Tensor | None, n_classes: int, who: str) -> None:
    """Refuse labels to an unconditional network, and a conditional one called without."""
    if n_classes > 0 and y is None:
        raise GankitError(
            f"{who} was built with n_classes={n_classes} and needs class labels; call it "
            "as model(x, y) with y a LongTensor of shape (batch,)"
        )
    if n_classes == 0 and y is not None:
        raise GankitError(
            f"{who} is unconditional (n_classes=0) but got labels; build it with "
            "n_classes > 0 or call it without y"
        )


def check_positive(n_classes: int = 0, **values: int) -> None:
    """Refuse non-positive sizes and a negative class count, naming the argument."""
    for name, v in values.items():
        if v < 1:
            raise GankitError(f"{name}={v} must be a positive integer")
    if n_classes < 0:
        raise GankitError(f"n_classes={n_classes} must be 0 (unconditional) or the class count")


class NoiseSampling:
    """``sample_z`` for generators with a ``z_dim`` attribute."""

    z_dim: int

    def sample_z(
        self,
        n: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``n`` standard-normal noise vectors, on the model's device by default."""
        if device is None:
            device = next(cast(nn.Module, self).parameters()).device
        return torch.randn(n, self.z_dim, device=device, generator=generator)
