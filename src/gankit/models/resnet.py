"""The SNGAN ResNet generator and discriminator (Miyato et al. 2018, appendix B).

Two layouts, chosen by the image side, as in the paper and the reference implementations
(chainer sngan_projection, mimicry):

- **CIFAR** (16, 32): G is linear z -> 4x4, one up-ResBlock per doubling at a constant
  ``2 * width`` channels (256 for the paper's ``width=128``), BN, ReLU, conv3x3, tanh. D is
  the "optimized" first block and down-blocks to 8x8, then two blocks at 8x8, all at
  ``width`` channels (128), ReLU, global sum pooling, linear.
- **STL/ImageNet** (48, 64, 128): G starts at 6x6 (48) or 4x4 with ``width * min(2**j, 16)``
  channels at level ``j`` (512 -> 64 at 48 for ``width=64``), halving per up-block. D doubles
  its width from ``width`` on each down-block until the side is at most 4, then adds one
  block that keeps the side (1024 channels at the paper's widths).

Spectral norm covers every conv and linear of D (and its class embedding), none of G. With
``n_classes > 0`` G uses per-class batch norm and D is a projection discriminator.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gankit.errors import GankitError
from gankit.models.layers import (
    ClassBatchNorm2d,
    DBlock,
    GBlock,
    NoiseSampling,
    PlainBatchNorm2d,
    apply_spectral_norm,
    check_labels,
    check_positive,
    projection_logits,
)

__all__ = ["RESNET_SIZES", "ResNetDiscriminator", "ResNetGenerator", "resnet_layout"]

#: image sides the ResNet layouts are defined for
RESNET_SIZES = (16, 32, 48, 64, 128)


def resnet_layout(shape: tuple[int, int, int], sizes: tuple[int, ...] = RESNET_SIZES,
                  who: str = "resnet") -> tuple[int, int, bool]:
    """``(bottom side, up-blocks, cifar layout?)`` for an image ``shape = (C, H, W)``.

    Raises GankitError for shapes the layouts do not cover.
    """
    dims = tuple(int(d) for d in shape)
    if len(dims) != 3 or dims[1] != dims[2] or dims[1] not in sizes or dims[0] < 1:
        raise GankitError(
            f"image shape {dims} is not supported by the {who} networks; they need square "
            f"images of side {', '.join(map(str, sizes))}, so resize the data to one of them",
            option="image_size"
        )
    side = dims[1]
    bottom = 6 if side == 48 else 4
    return bottom, int(math.log2(side // bottom)), side <= 32


def generator_widths(width: int, n_up: int, cifar: bool) -> list[int]:
    """Channels from the bottom feature map (index 0) to the last up-block's output."""
    if cifar:
        return [width] * (n_up + 1)
    return [width * min(2 ** j, 16) for j in range(n_up, -1, -1)]


def discriminator_plan(side: int, width: int, cifar: bool) -> list[tuple[int, int, bool]]:
    """``(in, out, downsample)`` per block after the input block, whose output is ``width``."""
    plan: list[tuple[int, int, bool]] = []
    side //= 2  # the input block halves
    if cifar:
        while side > 8:
            plan.append((width, width, True))
            side //= 2
        return plan + [(width, width, False)] * 2
    c, j = width, 0
    while side > 4:
        j += 1
        plan.append((c, width * min(2 ** j, 16), True))
        c, side = plan[-1][1], side // 2
    return [*plan, (c, width * min(2 ** (j + 1), 16), False)]


def _xavier(module: nn.Conv2d | nn.Linear, gain: float) -> None:
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _sngan_init(blocks: nn.Module) -> None:
    # The reference code: Xavier-uniform, gain sqrt(2) inside residual branches, 1 elsewhere.
    for block in blocks.modules():
        if isinstance(block, (GBlock, DBlock)):
            _xavier(block.conv1, math.sqrt(2.0))
            _xavier(block.conv2, math.sqrt(2.0))
            if block.shortcut is not None:
                _xavier(block.shortcut, 1.0)


class ResNetGenerator(NoiseSampling, nn.Module):
    """SNGAN ResNet generator: noise (B, z_dim) -> images (B, C, H, W) in [-1, 1].

    ``width=None`` is the paper's: 128 at sides <= 32 (the blocks then have 256 channels),
    64 at 48 and above. ``forward(z, y)`` needs labels ``y`` when ``n_classes > 0``.
    """

    def __init__(self, z_dim: int = 128, shape: tuple[int, int, int] = (3, 32, 32),
                 width: int | None = None, n_classes: int = 0) -> None:
        super().__init__()
        bottom, n_up, cifar = resnet_layout(shape)
        width = width if width is not None else (128 if cifar else 64)
        check_positive(n_classes, z_dim=z_dim, width=width)
        self.z_dim, self.n_classes, self.shape = z_dim, n_classes, tuple(int(d) for d in shape)
        widths = generator_widths(2 * width if cifar else width, n_up, cifar)
        self.bottom = bottom

        def norm(c: int) -> nn.Module:
            return ClassBatchNorm2d(c, n_classes) if n_classes else PlainBatchNorm2d(c)

        self.project = nn.Linear(z_dim, widths[0] * bottom * bottom)
        self.blocks = nn.ModuleList(GBlock(widths[i], widths[i + 1], norm) for i in range(n_up))
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.to_image = nn.Conv2d(widths[-1], self.shape[0], 3, 1, 1)
        _sngan_init(self.blocks)
        _xavier(self.project, 1.0)
        _xavier(self.to_image, 1.0)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        h = self.project(z).view(z.shape[0], -1, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.to_image(torch.relu(self.out_norm(h))))


class ResNetDiscriminator(nn.Module):
    """SNGAN ResNet discriminator: images (B, C, H, W) -> one raw logit each, shape (B,).

    ``width=None`` is the paper's: 128 at sides <= 32, 64 above. ``norm="spectral"`` (the
    paper) normalises every conv, linear and the projection embedding; ``"none"`` leaves
    them plain, for ablations. With ``n_classes > 0``:
    ``out = linear(h) + sum(embed(y) * h)`` (Miyato & Koyama 2018).
    """

    def __init__(self, shape: tuple[int, int, int] = (3, 32, 32), width: int | None = None,
                 n_classes: int = 0, norm: str = "spectral") -> None:
        super().__init__()
        if norm not in ("spectral", "none"):
            raise GankitError(f"the ResNet discriminator takes norm 'spectral' or 'none', "
                              f"not {norm!r}")
        _, _, cifar = resnet_layout(shape)
        width = width if width is not None else (128 if cifar else 64)
        check_positive(n_classes, width=width)
        self.n_classes, self.shape, self.norm = n_classes, tuple(int(d) for d in shape), norm
        plan = discriminator_plan(self.shape[1], width, cifar)
        self.blocks = nn.Sequential(
            DBlock(self.shape[0], width, down=True, first=True),
            *(DBlock(cin, cout, down) for cin, cout, down in plan),
        )
        self.feature_dim = plan[-1][1]
        self.head = nn.Linear(self.feature_dim, 1)
        self.embed = nn.Embedding(n_classes, self.feature_dim) if n_classes else None
        _sngan_init(self.blocks)
        _xavier(self.head, 1.0)
        if self.embed is not None:
            nn.init.xavier_uniform_(self.embed.weight)
        if norm == "spectral":
            apply_spectral_norm(self)
            if self.embed is not None:
                spectral_norm(self.embed)

    def features(self, x: Tensor) -> Tensor:
        """Globally sum-pooled last feature map, shape (B, feature_dim)."""
        return torch.relu(self.blocks(x)).sum(dim=(2, 3))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        return projection_logits(self.head, self.embed, self.features(x), y)
