"""Layer helpers shared by the networks: normalisations, spectral norm, equalized lr."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "NORMS",
    "EqualConv2d",
    "EqualLinear",
    "ModulatedConv2d",
    "apply_spectral_norm",
    "blur_downsample",
    "lrelu_gain",
    "modulated_conv2d",
    "upsample_2x",
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
    """A stride-1 'same' convolution with equalized learning rate.

    ``down=True`` blurs with the [1, 3, 3, 1] filter and halves the resolution after the
    convolution (before it for a 1x1 kernel, where it is cheaper and the same).
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
        if self.down and w.shape[-1] == 1:
            x = blur_downsample(x)
        x = F.conv2d(x, w, padding=self.padding)
        if self.down and w.shape[-1] > 1:
            x = blur_downsample(x)
        if self.bias is not None:
            x = x + self.bias.view(1, -1, 1, 1).to(x.dtype)
        return lrelu_gain(x) if self.activate else x


# ------------------------------------------------------------------ resampling, plain ops
def upsample_2x(x: Tensor) -> Tensor:
    """Double the resolution with the [1, 3, 3, 1] filter.

    Bilinear interpolation with ``align_corners=False`` at scale 2 weighs the neighbours
    3/4 and 1/4 in each direction: the [1, 3, 3, 1] / 4 upsampling filter of StyleGAN2,
    with edge replication instead of zero padding at the border.
    """
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def blur_downsample(x: Tensor) -> Tensor:
    """Halve the resolution: low-pass with the separable [1, 3, 3, 1] / 8 filter, stride 2."""
    c = x.shape[1]
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype)
    k = torch.outer(k, k) / k.sum() ** 2
    # pad 1 on each side: (H + 2 - 4) / 2 + 1 = H / 2, each output centred on a 2x2 cell.
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k.expand(c, 1, 4, 4),
                    stride=2, groups=c)


# ----------------------------------------------------------------- modulated convolution
def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True,
                     eps: float = 1e-8) -> Tensor:
    """StyleGAN2's modulated convolution (Karras et al. 2020, section 2.2), 'same' padding.

    ``x`` is (B, Cin, H, W), ``weight`` (Cout, Cin, k, k) (already scaled), ``styles``
    (B, Cin). Each sample gets its own kernel ``w'[b] = weight * styles[b]`` over input
    channels, divided by its per-output-channel L2 norm when ``demodulate`` (so unit-variance
    input gives unit-variance output). The batch is folded into the groups of one grouped
    convolution, so the B different kernels run as a single conv call.
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
    out = F.conv2d(x.reshape(1, b * cin, h, wd), w.reshape(b * cout, cin, k, k).to(x.dtype),
                   padding=k // 2, groups=b)
    return out.reshape(b, cout, h, wd)


class ModulatedConv2d(nn.Module):
    """A modulated (and by default demodulated) convolution whose styles come from ``w``.

    The affine layer that maps ``w`` to the per-input-channel scales starts with bias 1, so
    at initialisation the layer behaves like a plain convolution. ``up=True`` doubles the
    resolution first (:func:`upsample_2x`).
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
        if self.up:
            x = upsample_2x(x)
        return modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w),
                                demodulate=self.demodulate)
