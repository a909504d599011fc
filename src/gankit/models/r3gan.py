"""The R3GAN networks (Huang, Gokaslan, Kuleshov, Tompkin, NeurIPS 2024, "config E").

A modernised ResNet pair with no normalisation layers:

- **Residual block** (same in G and D), ``C`` channels, expansion ``e``, cardinality ``g``:
  ``x + conv1x1(act(gconv3x3(act(conv1x1(x)))))``: the first 1x1 convolution widens to
  ``e * C`` channels, the 3x3 convolution is grouped (``g`` groups), the last 1x1 narrows back
  to ``C``. Convolutions carry no bias; each activation is a learned per-channel bias followed
  by leaky ReLU (slope 0.2).
- **Generator**: ``z`` (joined with the class embedding when conditional) scales a learned
  4x4 basis per channel (a bias-free linear layer gives the scales); then the blocks of the
  4x4 stage; each further stage first doubles the side
  (:func:`gankit.models.layers.upsample_2x`) and then runs its blocks; a bias-free 1x1
  convolution makes the image. There is no tanh: training outputs are unbounded, eval
  outputs are clamped to [-1, 1] (as gankit's StyleGAN2).
- **Discriminator**: a bias-free 1x1 convolution lifts the image to the first width; each
  stage runs its blocks and halves the side (:func:`gankit.models.layers.blur_downsample`);
  the 4x4 stage ends in a depthwise 4x4
  convolution (one 4x4 filter per channel, no bias) and a bias-free linear layer to one
  logit, or, when conditional, to an embedding whose inner product with the class
  embedding is the logit.

Initialisation (fix-up style): every weight is drawn from N(0, gain^2 / fan_in). Inside a
residual branch the first two layers use ``gain = sqrt(2 / (1 + 0.2^2)) * L^(-1/4)`` with
``L`` the number of residual blocks in the network (the branch has 3 linear layers:
``L^(-1 / (2 * 3 - 2))``), and the branch's last layer starts at zero, so a new block is the
identity. Other layers use gain 1; G's class embedding has std ``1 / sqrt(n_classes)`` (a
bias-free linear layer on one-hot labels), D's ``1 / sqrt(n_classes * embed_dim)``.

The resampling is the paper's bilinear one: its [1, 2, 1] filter convolved with the box
[1, 1], i.e. the separable [1, 3, 3, 1] filter normalised to sum to one (times 4 when
upsampling, as zeros are inserted between the pixels), with zeros outside the image.

``width`` is the channel count of every stage, so no 1x1 transition convolution is needed
between stages (the paper adds one where widths differ; its CIFAR-10 preset has none). The
paper's CIFAR-10 preset is width 768, 2 blocks per stage, cardinality 96, expansion 2 and
noise 64; the default cardinality keeps its 16 channels per group of the widened layer.
See docs/architectures-r3gan.md for its parameter counts.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.layers import (
    NoiseSampling,
    blur_downsample,
    check_labels,
    check_positive,
    image_dims,
    upsample_2x,
)

__all__ = [
    "R3GAN_CPU_WIDTH",
    "R3GANDiscriminator",
    "R3GANGenerator",
    "R3GANResidualBlock",
    "r3gan_stages",
]

#: ``--width`` default on CPU (the paper's CIFAR-10 preset is 768)
R3GAN_CPU_WIDTH = 64
#: channels per group of the widened 3x3 convolution in the paper's presets (1536 / 96)
GROUP_CHANNELS = 16
#: the leaky ReLU's slope and its variance-preserving gain
SLOPE = 0.2
ACT_GAIN = math.sqrt(2.0 / (1.0 + SLOPE**2))


def r3gan_stages(shape: tuple[int, ...], who: str = "R3GAN") -> int:
    """Number of resolution stages (4x4 up to the image side) for an image ``shape``.

    Raises GankitError unless the images are square with a power-of-two side of at least 8.
    """
    c, h, w = image_dims(shape, example="(3, 32, 32)")
    if h != w or h < 8 or h & (h - 1):
        raise GankitError(f"image shape {(c, h, w)} is not supported by the {who} networks; "
                          f"they need square images whose side is a power of two from 8, so "
                          f"resize the data (e.g. to 32)")
    return int(math.log2(h)) - 1


def _msr(weight: Tensor, gain: float) -> None:
    """N(0, gain^2 / fan_in) in place; fan_in is the weight's inputs per output."""
    fan_in = weight[0].numel()
    with torch.no_grad():
        if gain:
            weight.normal_(0.0, gain / math.sqrt(fan_in))
        else:
            weight.zero_()


def _conv(cin: int, cout: int, k: int = 1, *, groups: int = 1, gain: float = 1.0,
          padding: int | None = None) -> nn.Conv2d:
    pad = (k - 1) // 2 if padding is None else padding
    conv = nn.Conv2d(cin, cout, k, padding=pad, groups=groups, bias=False)
    _msr(conv.weight, gain)
    return conv


def _linear(cin: int, cout: int, gain: float = 1.0) -> nn.Linear:
    layer = nn.Linear(cin, cout, bias=False)
    _msr(layer.weight, gain)
    return layer


class BiasedLeakyReLU(nn.Module):
    """``leaky_relu(x + b, 0.2)`` with a learned per-channel bias ``b`` that starts at 0."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return F.leaky_relu(x + self.bias.view(shape).to(x.dtype), SLOPE)


class R3GANResidualBlock(nn.Module):
    """``x + conv1x1(act(grouped conv3x3(act(conv1x1(x)))))`` at ``channels`` channels.

    ``n_blocks`` is the number of residual blocks in the whole network (the variance
    scaling); the last convolution of the branch starts at zero.
    """

    def __init__(self, channels: int, cardinality: int, expansion: int, n_blocks: int,
                 kernel_size: int = 3) -> None:
        super().__init__()
        wide = channels * expansion
        if wide % cardinality:
            raise GankitError(f"cardinality {cardinality} does not divide the {wide} channels "
                              f"of the widened layer ({channels} x {expansion}); pick a "
                              f"divisor of {wide}")
        gain = ACT_GAIN * n_blocks ** (-1.0 / 4.0)  # 3 linear layers: L^(-1/(2*3-2))
        self.expand = _conv(channels, wide, gain=gain)
        self.act1 = BiasedLeakyReLU(wide)
        self.grouped = _conv(wide, wide, kernel_size, groups=cardinality, gain=gain)
        self.act2 = BiasedLeakyReLU(wide)
        self.project = _conv(wide, channels, gain=0.0)

    def branch(self, x: Tensor) -> Tensor:
        """The residual branch alone (zero for a new block)."""
        return cast(Tensor, self.project(self.act2(self.grouped(self.act1(self.expand(x))))))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


def _check_sizes(width: int, blocks: int, expansion: int, cardinality: int | None) -> int:
    check_positive(width=width, blocks=blocks, expansion=expansion)
    if cardinality is None:
        cardinality = max(1, width * expansion // GROUP_CHANNELS)
        while (width * expansion) % cardinality:  # tiny widths: the nearest divisor below
            cardinality -= 1
    check_positive(cardinality=cardinality)
    return cardinality


class R3GANGenerator(NoiseSampling, nn.Module):
    """R3GAN generator: noise (B, z_dim) [and labels (B,)] -> images (B, C, H, W).

    Args:
        z_dim: noise size (the paper: 64). shape: ``(C, H, W)``, square, side a power of
            two >= 8. width: channels of every stage (None: ``R3GAN_CPU_WIDTH``).
        n_classes: 0 for unconditional, else the class count; the class embedding
            (``embed_dim``, default ``z_dim``) is joined to z.
        blocks: residual blocks per stage. cardinality: groups of the 3x3 convolution
            (default: 16 channels per group). expansion: the inverted bottleneck's factor.
    """

    def __init__(self, z_dim: int = 64, shape: tuple[int, int, int] = (3, 32, 32),
                 width: int | None = None, n_classes: int = 0, *, blocks: int = 2,
                 cardinality: int | None = None, expansion: int = 2,
                 embed_dim: int | None = None) -> None:
        super().__init__()
        n_stages = r3gan_stages(shape)
        width = R3GAN_CPU_WIDTH if width is None else width
        cardinality = _check_sizes(width, blocks, expansion, cardinality)
        embed_dim = z_dim if embed_dim is None else embed_dim
        check_positive(n_classes, z_dim=z_dim, embed_dim=embed_dim)
        self.z_dim, self.n_classes, self.shape = z_dim, n_classes, image_dims(shape, example="")
        n_blocks = blocks * n_stages
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        if self.embed is not None:  # a bias-free linear layer on one-hot labels, gain 1
            _msr(self.embed.weight.T, 1.0)
        self.basis = nn.Parameter(torch.randn(width, 4, 4))
        self.scales = _linear(z_dim + (embed_dim if n_classes else 0), width)
        self.stages = nn.ModuleList(
            nn.Sequential(*(R3GANResidualBlock(width, cardinality, expansion, n_blocks)
                            for _ in range(blocks)))
            for _ in range(n_stages))
        self.to_image = _conv(width, self.shape[0])

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        if self.embed is not None:
            assert y is not None
            z = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)
        h = self.basis.unsqueeze(0).to(z.dtype) * self.scales(z)[:, :, None, None]
        for i, stage in enumerate(self.stages):
            h = stage(upsample_2x(h) if i else h)
        img = self.to_image(h)
        return cast(Tensor, img if self.training else img.clamp(-1.0, 1.0))


class R3GANDiscriminator(nn.Module):
    """R3GAN discriminator: images (B, C, H, W) [and labels (B,)] -> raw logits (B,).

    Arguments as :class:`R3GANGenerator`'s; the conditional head's embedding has
    ``embed_dim`` (default ``width``) entries.
    """

    def __init__(self, shape: tuple[int, int, int] = (3, 32, 32), width: int | None = None,
                 n_classes: int = 0, *, blocks: int = 2, cardinality: int | None = None,
                 expansion: int = 2, embed_dim: int | None = None) -> None:
        super().__init__()
        n_stages = r3gan_stages(shape)
        width = R3GAN_CPU_WIDTH if width is None else width
        cardinality = _check_sizes(width, blocks, expansion, cardinality)
        embed_dim = width if embed_dim is None else embed_dim
        check_positive(n_classes, embed_dim=embed_dim)
        self.n_classes, self.shape = n_classes, image_dims(shape, example="")
        n_blocks = blocks * n_stages
        self.from_image = _conv(self.shape[0], width)
        self.stages = nn.ModuleList(
            nn.Sequential(*(R3GANResidualBlock(width, cardinality, expansion, n_blocks)
                            for _ in range(blocks)))
            for _ in range(n_stages))
        self.basis = _conv(width, width, 4, groups=width, padding=0)
        self.head = _linear(width, embed_dim if n_classes else 1)
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        if self.embed is not None:
            _msr(self.embed.weight.T, 1.0 / math.sqrt(embed_dim))
        self.feature_dim = width

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        h = self.from_image(x)
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i < len(self.stages) - 1:
                h = blur_downsample(h)
        out = self.head(self.basis(h).flatten(1))
        if self.embed is None:
            return cast(Tensor, out.squeeze(1))
        assert y is not None
        return cast(Tensor, (out * self.embed(y).to(out.dtype)).sum(dim=1))
