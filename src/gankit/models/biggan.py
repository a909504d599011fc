"""BigGAN-style class-conditional generator and discriminator (Brock et al. 2019).

The layouts of BigGAN-PyTorch and StudioGAN's ``big_resnet``: at 16 and 32 a constant
``4 * width`` channels (G: three up-blocks from 4x4 at 32; D: down to 8x8, then two blocks),
at 64 and 128 the ImageNet widths (G from ``16 * width`` halving to ``width``; D doubling
from ``width`` to ``16 * width``). What makes it BigGAN rather than SNGAN:

- **hierarchical z**: z is split into one chunk for the input linear layer and one per
  up-block; each block's batch norm takes its gain and bias from ``[shared(y), z_i]``, with
  ``shared`` one class embedding for the whole generator;
- **self-attention** (SAGAN) after the blocks at one chosen resolution, in both networks;
- **spectral norm in both networks**, a *wide* discriminator (hidden width = output width),
  a projection discriminator, orthogonal initialisation.

With ``n_classes=0`` the same networks run unconditionally: the blocks' batch norm is then
conditioned on the z chunks alone and the discriminator has no projection.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gankit.errors import GankitError
from gankit.models.layers import (
    DBlock,
    GBlock,
    NoiseSampling,
    SelfAttention,
    VectorBatchNorm2d,
    apply_spectral_norm,
    check_labels,
    check_positive,
    projection_logits,
)
from gankit.models.resnet import discriminator_plan, resnet_layout

__all__ = ["BIGGAN_SIZES", "BigGANDiscriminator", "BigGANGenerator", "default_attention"]

#: image sides the BigGAN layouts are defined for
BIGGAN_SIZES = (16, 32, 64, 128)
_ATTENTION = {16: 8, 32: 16, 64: 32, 128: 64}  # StudioGAN's CIFAR place; BigGAN's 64 at 128


def default_attention(side: int) -> int:
    """The resolution of the self-attention block by default: 16 at 32x32 (StudioGAN)."""
    return _ATTENTION.get(side, 0)


def _layout(shape: tuple[int, int, int],
            width: int) -> tuple[int, list[int], list[tuple[int, int, bool]]]:
    bottom, n_up, cifar = resnet_layout(shape, BIGGAN_SIZES, "biggan")
    side = int(shape[1])
    if cifar:
        g_widths = [4 * width] * (n_up + 1)
    else:
        g_widths = [width * min(16, 2 ** j * (128 // side)) for j in range(n_up, -1, -1)]
    d_first = 4 * width if cifar else width
    d_plan = [(int(shape[0]), d_first, True), *discriminator_plan(side, d_first, cifar)]
    return bottom, g_widths, d_plan


def _check_attention(attention: int, sides: list[int], who: str) -> None:
    if attention and attention not in sides:
        raise GankitError(
            f"{who}: self-attention at {attention}x{attention} does not match a block "
            f"output ({', '.join(map(str, sorted(set(sides))))}); choose one of them or 0 (off)"
        )


def _orthogonal_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)


class BigGANGenerator(NoiseSampling, nn.Module):
    """BigGAN generator: noise (B, z_dim) [+ labels (B,)] -> images (B, C, H, W) in [-1, 1].

    ``width`` is BigGAN's ``ch`` (96 in StudioGAN's CIFAR-10 config, 384 channels per
    block). ``z_dim`` is split into ``blocks + 1`` chunks (the first takes the remainder);
    ``shared_dim`` is the class embedding's size; ``attention`` the side after which a
    self-attention block runs (``None``: 16 at 32x32, ``0``: none).
    """

    def __init__(self, z_dim: int = 80, shape: tuple[int, int, int] = (3, 32, 32),
                 width: int = 96, n_classes: int = 0, shared_dim: int = 128,
                 attention: int | None = None) -> None:
        super().__init__()
        check_positive(n_classes, z_dim=z_dim, width=width, shared_dim=shared_dim)
        bottom, widths, _ = _layout(shape, width)
        n_up = len(widths) - 1
        if z_dim < n_up + 1:
            raise GankitError(f"BigGANGenerator: z_dim={z_dim} cannot be split over its "
                              f"{n_up + 1} inputs; use z_dim >= {n_up + 1}")
        self.z_dim, self.n_classes, self.shape = z_dim, n_classes, tuple(int(d) for d in shape)
        self.bottom = bottom
        chunk = z_dim // (n_up + 1)
        self.z_chunks = [z_dim - chunk * n_up] + [chunk] * n_up
        self.attention = default_attention(self.shape[1]) if attention is None else attention
        sides = [bottom * 2 ** (i + 1) for i in range(n_up)]
        _check_attention(self.attention, sides, type(self).__name__)
        self.shared = nn.Embedding(n_classes, shared_dim) if n_classes else None
        cond_dim = chunk + (shared_dim if n_classes else 0)

        def norm(c: int) -> nn.Module:
            return VectorBatchNorm2d(c, cond_dim)

        self.project = nn.Linear(self.z_chunks[0], widths[0] * bottom * bottom)
        self.blocks = nn.ModuleList(GBlock(widths[i], widths[i + 1], norm) for i in range(n_up))
        self.attn_after = sides.index(self.attention) if self.attention else -1
        self.attn = SelfAttention(widths[self.attn_after + 1]) if self.attention else None
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.to_image = nn.Conv2d(widths[-1], self.shape[0], 3, 1, 1)
        _orthogonal_init(self)
        # Spectral norm in G too (BigGAN), but not on the shared embedding, which it cripples.
        apply_spectral_norm(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        zs = z.split(self.z_chunks, dim=1)
        h = self.project(zs[0]).view(z.shape[0], -1, self.bottom, self.bottom)
        shared = self.shared(y) if self.shared is not None else None
        for i, block in enumerate(self.blocks):
            cond = zs[i + 1] if shared is None else torch.cat([shared, zs[i + 1]], dim=1)
            h = block(h, cond)
            if i == self.attn_after and self.attn is not None:
                h = self.attn(h)
        return cast(Tensor, self.to_image(self.out_norm(h).relu()).tanh())


class BigGANDiscriminator(nn.Module):
    """BigGAN discriminator: images (B, C, H, W) [+ labels] -> one raw logit each, (B,).

    Wide residual blocks, spectral norm everywhere (the projection embedding included),
    ReLU and global sum pooling, ``out = linear(h) + sum(embed(y) * h)`` when conditional.
    ``attention`` as in the generator (after the first block at 32x32).
    """

    def __init__(self, shape: tuple[int, int, int] = (3, 32, 32), width: int = 96,
                 n_classes: int = 0, attention: int | None = None) -> None:
        super().__init__()
        check_positive(n_classes, width=width)
        _, _, plan = _layout(shape, width)
        self.n_classes, self.shape = n_classes, tuple(int(d) for d in shape)
        self.attention = default_attention(self.shape[1]) if attention is None else attention
        side, sides = self.shape[1], []
        for _, _, down in plan:
            side //= 2 if down else 1
            sides.append(side)
        _check_attention(self.attention, sides, type(self).__name__)
        layers: list[nn.Module] = []
        attached = False
        for i, (cin, cout, down) in enumerate(plan):
            layers.append(DBlock(cin, cout, down, first=i == 0, wide=True))
            if self.attention and sides[i] == self.attention and not attached:
                layers.append(SelfAttention(cout))
                attached = True
        self.blocks = nn.Sequential(*layers)
        self.feature_dim = plan[-1][1]
        self.head = nn.Linear(self.feature_dim, 1)
        self.embed = nn.Embedding(n_classes, self.feature_dim) if n_classes else None
        _orthogonal_init(self)
        apply_spectral_norm(self)
        if self.embed is not None:
            spectral_norm(self.embed)

    def features(self, x: Tensor) -> Tensor:
        """Globally sum-pooled last feature map, shape (B, feature_dim)."""
        return cast(Tensor, self.blocks(x).relu().sum(dim=(2, 3)))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        return projection_logits(self.head, self.embed, self.features(x), y)
