"""DCGAN-style generator and discriminator for small square images.

Both networks work at any side ``H = s0 * 2**k`` with ``s0`` in 3..7 and ``k >= 1`` (8, 12,
14, 16, 28, 32, 56, 64, ...). Resolution level ``j`` (``j = 0`` is full size, ``j = k`` is
``s0 x s0``) has ``min(base * 2**(j-1), 8 * base)`` channels (``base`` at levels 0 and 1) in
both networks, so they mirror each other, as in Radford et al. 2015.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.layers import (
    NORMS,
    NoiseSampling,
    apply_spectral_norm,
    check_labels,
    check_positive,
    image_dims,
    projection_logits,
)

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "dcgan_conv_stack", "image_levels"]


def image_levels(shape: tuple[int, int, int]) -> tuple[int, int]:
    """Return ``(s0, k)`` with ``H = s0 * 2**k`` for an image ``shape = (C, H, W)``.

    Halves as often as possible while the side stays >= 3, so 12 gives (3, 2) and 64 gives
    (4, 4). Raises GankitError for shapes the DCGAN networks cannot handle.
    """
    dims = image_dims(shape, example="(1, 28, 28)")
    _, h, w = dims
    s0, k = h, 0
    while s0 % 2 == 0 and s0 // 2 >= 3:
        s0, k = s0 // 2, k + 1
    if h != w or k < 1 or not 3 <= s0 <= 7:
        raise GankitError(
            f"image shape {shape} is not supported; DCGAN models need square images with "
            "side s0 * 2**k for s0 in 3..7 and k >= 1 (e.g. 8, 14, 16, 28, 32, 64), so "
            "resize or crop the data"
        )
    return s0, k


def _width(base: int, level: int) -> int:
    # The widest layers sit at the lowest resolution, where they are cheap per pixel.
    return cast(int, min(base * 2 ** max(level - 1, 0), base * 8))


def dcgan_conv_stack(shape: tuple[int, int, int], base: int,
                     norm: str = "batch") -> tuple[nn.Sequential, int]:
    """The DCGAN discriminator's convolutional body for ``(C, H, W)`` images, and the size of
    its flattened output.

    k stride-2 4x4 convs down to s0 x s0 (``H = s0 * 2**k``), then a 3x3 conv at s0, each
    followed by LeakyReLU(0.2): the mirror image of the generator (Linear, k up-convs, 3x3
    conv). Every conv but the first is followed by BatchNorm (``norm="batch"``) or GroupNorm
    with one group (``"layer"``) and has no bias; ``"none"`` and ``"spectral"`` add no norm
    layer. The layers keep torch's default initialisation.
    """
    s0, k = image_levels(shape)
    convs = [
        (shape[0] if j == 1 else _width(base, j - 1), _width(base, j), 4, 2)
        for j in range(1, k + 1)
    ]
    convs.append((_width(base, k), _width(base, k), 3, 1))
    layers: list[nn.Module] = []
    for i, (cin, cout, size, stride) in enumerate(convs):
        # No norm on the first layer, as in DCGAN: it would wash out the input's contrast.
        normed = i > 0 and norm in ("batch", "layer")
        layers.append(nn.Conv2d(cin, cout, size, stride, 1, bias=not normed))
        if normed:
            layers.append(nn.BatchNorm2d(cout) if norm == "batch" else nn.GroupNorm(1, cout))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers), _width(base, k) * s0 * s0


def _dcgan_init(module: nn.Module) -> None:
    # Radford et al. 2015: N(0, 0.02) weights; norm layers start as identity plus noise.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            bias = getattr(m, "bias", None)
            if isinstance(bias, torch.Tensor):
                nn.init.zeros_(bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(NoiseSampling, nn.Module):
    """Maps noise ``z`` of shape (B, z_dim) to images (B, C, H, W) in [-1, 1].

    Linear -> (width, s0, s0), then k x (ConvTranspose2d 4/2/1 + BatchNorm + ReLU), then a
    3x3 conv to C channels and tanh. With ``n_classes > 0`` a learned label embedding (of
    size ``z_dim``) is concatenated to ``z`` and ``forward`` needs ``y``.
    """

    def __init__(
        self,
        z_dim: int = 64,
        shape: tuple[int, int, int] = (1, 8, 8),
        base: int = 64,
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        check_positive(n_classes, z_dim=z_dim, base=base)
        s0, k = image_levels(shape)
        c, h, w = (int(d) for d in shape)
        shape = (c, h, w)
        self.z_dim, self.n_classes, self.shape = z_dim, n_classes, shape
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes > 0 else None
        in_dim = z_dim * (2 if n_classes > 0 else 1)
        c0 = _width(base, k)
        # Bias is redundant in front of BatchNorm, which re-centres anyway.
        self.project = nn.Sequential(
            nn.Linear(in_dim, c0 * s0 * s0, bias=False),
            nn.Unflatten(1, (c0, s0, s0)),
            nn.BatchNorm2d(c0),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        for level in range(k, 0, -1):
            cin, cout = _width(base, level), _width(base, level - 1)
            blocks += [
                nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(_width(base, 0), shape[0], 3, 1, 1), nn.Tanh())
        _dcgan_init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return cast(Tensor, self.to_image(self.blocks(self.project(z))))


class DCGANDiscriminator(nn.Module):
    """Scores images (B, C, H, W) with one raw logit each, shape (B,).

    k stride-2 4x4 convs down to s0 x s0, then one 3x3 conv, each followed by LeakyReLU(0.2).
    ``norm`` picks what follows each conv but the first: "batch" (DCGAN), "layer" (GroupNorm with
    one group; use it with gradient penalties, which BatchNorm breaks by mixing samples),
    "none", or "spectral" (no norm layer; every conv and linear is spectral-normalised).
    With ``n_classes > 0`` it is a projection discriminator (Miyato & Koyama 2018):
    ``out = linear(h) + sum(embed(y) * h)`` with ``h = features(x)``.
    """

    def __init__(
        self,
        shape: tuple[int, int, int] = (1, 8, 8),
        base: int = 64,
        n_classes: int = 0,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise GankitError(f"unknown norm {norm!r}; choose one of: {', '.join(NORMS)}")
        check_positive(n_classes, base=base)
        image_levels(shape)  # refuses the shapes it cannot take before anything else
        c, h, w = (int(d) for d in shape)
        shape = (c, h, w)
        self.n_classes, self.shape, self.norm = n_classes, shape, norm
        self.body, self.feature_dim = dcgan_conv_stack(shape, base, norm)
        self.head = nn.Linear(self.feature_dim, 1)
        self.embed = nn.Embedding(n_classes, self.feature_dim) if n_classes > 0 else None
        _dcgan_init(self)
        if norm == "spectral":
            apply_spectral_norm(self)

    def features(self, x: Tensor) -> Tensor:
        """The flattened last feature map, shape (B, feature_dim)."""
        return cast(Tensor, self.body(x).flatten(start_dim=1))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        return projection_logits(self.head, self.embed, self.features(x), y)
