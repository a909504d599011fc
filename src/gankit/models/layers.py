"""Layer helpers shared by the networks: normalisations, spectral norm, residual blocks."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "NORMS",
    "ClassBatchNorm2d",
    "DBlock",
    "GBlock",
    "PlainBatchNorm2d",
    "SelfAttention",
    "VectorBatchNorm2d",
    "apply_spectral_norm",
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
        return self.bn(x) * gain + bias


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
        return self.bn(x) * gain + self.bias(c)[:, :, None, None]


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
        return h + (self.shortcut(s) if self.shortcut is not None else s)


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
        return x + self.gamma * self.o(o)
