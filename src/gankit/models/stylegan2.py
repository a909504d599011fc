"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

Pure PyTorch, no custom CUDA ops, so it runs anywhere and ``torch.compile`` can fuse it:

- the generator is a mapping network (z -> w, 8 equalized-lr layers with lr multiplier 0.01)
  and a skip-architecture synthesis network: a learned 4x4 constant, two modulated /
  demodulated 3x3 convolutions per resolution with per-layer noise, and a toRGB at each
  resolution whose outputs are upsampled and summed;
- the discriminator is residual, with a minibatch standard deviation layer (group size 4)
  at 4x4 and, when conditional, a projection output;
- resampling is the paper's, written with plain torch ops: each block's first generator
  convolution runs as a stride-2 transposed convolution at the lower resolution followed
  by the [1, 3, 3, 1] blur (``gankit.models.layers.upsample_conv2d``), the toRGB image is
  upsampled by the same filter (``upsample_2x``); the discriminator's downsampling 3x3
  convolution blurs and then convolves at stride 2, its 1x1 skip blurs, downsamples and
  then convolves (``EqualConv2d(down=True)``); zeros outside the image throughout.

Channel widths follow StyleGAN2-ADA's rule ``min(channel_base // res, channel_max)``. The
defaults (2048, 128) are sized for a CPU; the paper's CIFAR-10 configuration is
``channel_base=16384, channel_max=512, w_dim=512, mapping_layers=2`` with ``z_dim=512``.
"""

from __future__ import annotations

import itertools
import math
from typing import cast

import torch
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.layers import (
    EqualConv2d,
    EqualLinear,
    ModulatedConv2d,
    NoiseSampling,
    check_labels,
    check_positive,
    image_dims,
    lrelu_gain,
    upsample_2x,
)

__all__ = [
    "MappingNetwork",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "SynthesisNetwork",
    "minibatch_stddev",
    "stylegan2_levels",
]

#: the noise modes of the synthesis network (``StyleGAN2Generator.noise_mode``)
NOISE_MODES = ("auto", "random", "const", "none")


def stylegan2_levels(shape: tuple[int, int, int]) -> int:
    """Return ``log2(H)`` for an image ``shape = (C, H, W)`` StyleGAN2 supports.

    Square, power-of-two sides from 16 to 256. Raises GankitError otherwise.
    """
    dims = image_dims(shape, example="(3, 32, 32)")
    _, h, w = dims
    if h != w or h not in (16, 32, 64, 128, 256):
        raise GankitError(
            f"image shape {dims} is not supported; StyleGAN2 needs square images with side "
            "16, 32, 64, 128 or 256, so resize or crop the data"
        )
    return int(math.log2(int(h)))


def _channels(res: int, channel_base: int, channel_max: int) -> int:
    return max(1, min(channel_base // res, channel_max))


def _widths(width: int | None, channel_base: int, channel_max: int) -> tuple[int, int]:
    """``(channel_base, channel_max)``: from ``width`` when given (64x and 4x it), else as given.

    One number scales every layer's channels, as ``--width`` does for the other archs;
    width 32 gives the defaults (2048, 128).
    """
    if width is None:
        return channel_base, channel_max
    check_positive(width=width)
    return 64 * width, 4 * width


def _normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """z (and a class) -> w: normalise z, then ``layers`` equalized-lr FC layers.

    With ``n_classes > 0`` a learned class embedding (normalised like z) is concatenated to
    z first. ``lr_mul`` (0.01 in the paper) slows the mapping network's effective learning
    rate relative to the synthesis network.
    """

    def __init__(self, z_dim: int, w_dim: int, *, n_classes: int = 0, layers: int = 8,
                 lr_mul: float = 0.01) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.n_classes = z_dim, w_dim, n_classes
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes > 0 else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight)
        dims = [z_dim * (2 if n_classes > 0 else 1)] + [w_dim] * layers
        self.net = nn.Sequential(*(
            EqualLinear(a, b, lr_mul=lr_mul, activate=True) for a, b in itertools.pairwise(dims)
        ))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        x = _normalize_2nd_moment(z)
        if self.embed is not None:
            x = torch.cat([x, _normalize_2nd_moment(self.embed(y))], dim=1)
        return cast(Tensor, self.net(x))


class _Noise(nn.Module):
    """Adds per-pixel Gaussian noise scaled by a learned strength (zero at the start)."""

    const: Tensor

    def __init__(self, res: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        # A fixed draw for 'const' mode (eval by default), so seeded sampling repeats.
        self.register_buffer("const", torch.randn(1, 1, res, res))

    def forward(self, x: Tensor, mode: str) -> Tensor:
        if mode == "none":
            return x
        if mode == "const":
            noise = self.const
        else:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device,
                                dtype=x.dtype)
        return x + noise.to(x.dtype) * self.strength.to(x.dtype)


class _StyleLayer(nn.Module):
    """Modulated 3x3 conv, noise, bias, activation."""

    def __init__(self, cin: int, cout: int, w_dim: int, res: int, up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim, up=up)
        self.noise = _Noise(res)
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        x = self.noise(self.conv(x, w), noise_mode)
        return lrelu_gain(x + self.bias.view(1, -1, 1, 1).to(x.dtype))


class _ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, plus bias: features -> image channels."""

    def __init__(self, cin: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return cast(Tensor, self.conv(x, w) + self.bias.view(1, -1, 1, 1).to(x.dtype))


class _SynthesisBlock(nn.Module):
    """One resolution of the skip generator: upsampling conv, conv, toRGB."""

    def __init__(self, cin: int, cout: int, channels: int, w_dim: int, res: int) -> None:
        super().__init__()
        self.conv0 = _StyleLayer(cin, cout, w_dim, res, up=True)
        self.conv1 = _StyleLayer(cout, cout, w_dim, res)
        self.torgb = _ToRGB(cout, channels, w_dim)

    def forward(self, x: Tensor, img: Tensor, ws: Tensor,
                noise_mode: str) -> tuple[Tensor, Tensor]:
        x = self.conv1(self.conv0(x, ws[:, 0], noise_mode), ws[:, 1], noise_mode)
        return x, upsample_2x(img) + self.torgb(x, ws[:, 2])


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> images: a skip generator from a learned 4x4 constant.

    Style ``ws[:, i]`` drives layer ``i`` in this order: the 4x4 conv, the 4x4 toRGB, then
    for each resolution its upsampling conv, its second conv and its toRGB reads the index
    after them (StyleGAN2's layout: a toRGB shares its style with the next block's first
    conv), so ``num_ws = 2 * log2(H) - 2``.
    """

    def __init__(self, w_dim: int, shape: tuple[int, int, int], *, channel_base: int,
                 channel_max: int) -> None:
        super().__init__()
        levels = stylegan2_levels(shape)
        channels = int(shape[0])
        self.w_dim = w_dim
        ch = {2**k: _channels(2**k, channel_base, channel_max) for k in range(2, levels + 1)}
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        self.conv4 = _StyleLayer(ch[4], ch[4], w_dim, 4)
        self.rgb4 = _ToRGB(ch[4], channels, w_dim)
        self.blocks = nn.ModuleList(
            _SynthesisBlock(ch[2 ** (k - 1)], ch[2**k], channels, w_dim, 2**k)
            for k in range(3, levels + 1)
        )
        self.num_ws = 2 * levels - 2

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise GankitError(
                f"ws has shape {tuple(ws.shape)}; the synthesis network needs "
                f"(batch, {self.num_ws}, {self.w_dim})"
            )
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).to(ws.dtype)
        x = self.conv4(x, ws[:, 0], noise_mode)
        img = self.rgb4(x, ws[:, 1])
        for i, block in enumerate(self.blocks):
            x, img = block(x, img, ws[:, 2 * i + 1:2 * i + 4], noise_mode)
        return cast(Tensor, img)


class StyleGAN2Generator(NoiseSampling, nn.Module):
    """Maps noise ``z`` (B, z_dim) and, if conditional, labels ``y`` to images (B, C, H, W).

    ``forward(z, y)`` is ``synthesis(ws(z, y))``. In training mode ``ws`` updates the
    moving average ``w_avg`` of w (decay ``w_avg_beta``) and mixes styles: with probability
    ``mixing_prob`` a sample takes its styles from a second z after a random layer
    (per sample, drawn from torch's RNG without a host sync). In eval mode there is no
    mixing, noise is the fixed buffer of each layer (``noise_mode="auto"``, so seeded
    sampling repeats), and images are clamped to [-1, 1]; training outputs are unclamped
    as in the paper, so the discriminator's gradient reaches every pixel.

    Truncation (eval and training alike): ``w = w_avg + psi * (w - w_avg)`` on the first
    ``truncation_cutoff`` styles (all if None). ``psi`` is the ``truncation_psi`` attribute
    (1.0: off, exactly the identity) unless ``forward``/``ws`` get ``truncation_psi=``; set
    the attribute to sample truncated through ``generate``, SampleGrid or an EMA copy.

    Args:
        z_dim: noise size. shape: ``(C, H, W)``, H = W in 16..256, a power of two.
        n_classes: 0 for unconditional, else the class count (the mapping network embeds y).
        w_dim: size of w (default: ``z_dim``). mapping_layers, mapping_lr_mul: the mapping
            network. channel_base, channel_max: ``min(channel_base // res, channel_max)``
            channels at resolution ``res``. width: one knob for both (``--width`` of
            ``gankit train``): ``channel_base = 64 * width``, ``channel_max = 4 * width``,
            so width 32 is the CPU default (the paper's CIFAR-10 widths need channel_base).
    """

    w_avg: Tensor

    def __init__(
        self,
        z_dim: int = 128,
        shape: tuple[int, int, int] = (3, 32, 32),
        *,
        n_classes: int = 0,
        w_dim: int | None = None,
        mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
        channel_base: int = 2048,
        channel_max: int = 128,
        width: int | None = None,
        mixing_prob: float = 0.9,
        w_avg_beta: float = 0.995,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "auto",
    ) -> None:
        super().__init__()
        channel_base, channel_max = _widths(width, channel_base, channel_max)
        w_dim = z_dim if w_dim is None else w_dim
        check_positive(n_classes, z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers,
                        channel_base=channel_base, channel_max=channel_max)
        if not 0.0 <= mixing_prob <= 1.0:
            raise GankitError(f"mixing_prob={mixing_prob} must be between 0 and 1")
        if noise_mode not in NOISE_MODES:
            raise GankitError(
                f"noise_mode={noise_mode!r} is unknown; choose one of {', '.join(NOISE_MODES)}"
            )
        stylegan2_levels(shape)
        shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self.z_dim, self.w_dim, self.n_classes, self.shape = z_dim, w_dim, n_classes, shape
        self.mapping = MappingNetwork(z_dim, w_dim, n_classes=n_classes,
                                      layers=mapping_layers, lr_mul=mapping_lr_mul)
        self.synthesis = SynthesisNetwork(w_dim, shape, channel_base=channel_base,
                                          channel_max=channel_max)
        self.num_ws = self.synthesis.num_ws
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.mixing_prob, self.w_avg_beta = mixing_prob, w_avg_beta
        self.truncation_psi, self.truncation_cutoff = truncation_psi, truncation_cutoff
        self.noise_mode = noise_mode

    def ws(self, z: Tensor, y: Tensor | None = None, *,
           truncation_psi: float | None = None) -> Tensor:
        """The per-layer styles (B, num_ws, w_dim) for ``z`` (mixing, w_avg, truncation)."""
        check_labels(y, self.n_classes, type(self).__name__)
        w = self.mapping(z, y)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(dim=0), 1.0 - self.w_avg_beta)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if self.training and self.mixing_prob > 0:
            n = z.shape[0]
            w2 = self.mapping(torch.randn_like(z), y)
            # Per sample: cut at a layer in 1..num_ws-1 with probability mixing_prob, else
            # at num_ws (no mixing); styles from the cut on come from w2.
            cut = torch.randint(1, self.num_ws, (n,), device=z.device)
            mix = torch.rand(n, device=z.device) < self.mixing_prob
            cut = torch.where(mix, cut, torch.full_like(cut, self.num_ws))
            layer = torch.arange(self.num_ws, device=z.device)
            ws = torch.where((layer < cut[:, None])[:, :, None], ws, w2.unsqueeze(1))
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        if psi != 1.0:
            avg = self.w_avg.to(ws.dtype)
            cutoff = self.num_ws if self.truncation_cutoff is None else self.truncation_cutoff
            truncated = avg.lerp(ws[:, :cutoff], psi)
            ws = torch.cat([truncated, ws[:, cutoff:]], dim=1)
        return cast(Tensor, ws)

    def forward(self, z: Tensor, y: Tensor | None = None, *,
                truncation_psi: float | None = None,
                return_ws: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Images for ``z`` (and ``y``); ``return_ws=True`` also returns the styles used,
        which the path-length regulariser differentiates against."""
        ws = self.ws(z, y, truncation_psi=truncation_psi)
        mode = self.noise_mode
        if mode == "auto":
            mode = "random" if self.training else "const"
        img = self.synthesis(ws, noise_mode=mode)
        if not self.training:
            img = img.clamp(-1.0, 1.0)
        return (img, ws) if return_ws else img


def minibatch_stddev(x: Tensor, group_size: int = 4, num_channels: int = 1) -> Tensor:
    """Append the features' standard deviation across groups of samples (Karras et al. 2018).

    The batch splits into groups of ``min(group_size, B)`` samples (the largest size up to
    that which divides B); each group's per-feature std, averaged over features and pixels,
    is appended as ``num_channels`` constant channels, so the discriminator can see a lack
    of variety.
    """
    b, c, h, w = x.shape
    g = min(group_size, b)
    while b % g:
        g -= 1
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w).float()
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (B/g, f)
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class _DBlock(nn.Module):
    """Residual block: two 3x3 convs (the second blurs, then runs at stride 2) plus a
    blurred, downsampled 1x1 skip, summed and divided by sqrt(2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3, activate=True)
        self.conv1 = EqualConv2d(cin, cout, 3, activate=True, down=True)
        self.skip = EqualConv2d(cin, cout, 1, bias=False, down=True)

    def forward(self, x: Tensor) -> Tensor:
        return cast(Tensor, (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5))


class StyleGAN2Discriminator(nn.Module):
    """Scores images (B, C, H, W) with one raw logit each, shape (B,).

    fromRGB (1x1 conv), residual blocks down to 4x4, then minibatch std (``mbstd_group``,
    ``mbstd_channels``), a 3x3 conv, a fully connected layer and the output layer. With
    ``n_classes > 0`` it is a projection discriminator (Miyato & Koyama 2018):
    ``out = linear(h) + <embed(y), h> / sqrt(dim h)``.
    """

    def __init__(
        self,
        shape: tuple[int, int, int] = (3, 32, 32),
        *,
        n_classes: int = 0,
        channel_base: int = 2048,
        channel_max: int = 128,
        width: int | None = None,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
    ) -> None:
        super().__init__()
        channel_base, channel_max = _widths(width, channel_base, channel_max)
        check_positive(n_classes, channel_base=channel_base, channel_max=channel_max,
                        mbstd_group=mbstd_group, mbstd_channels=mbstd_channels)
        levels = stylegan2_levels(shape)
        shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self.n_classes, self.shape = n_classes, shape
        ch = {2**k: _channels(2**k, channel_base, channel_max) for k in range(2, levels + 1)}
        top = 2**levels
        self.from_rgb = EqualConv2d(shape[0], ch[top], 1, activate=True)
        self.blocks = nn.Sequential(*(
            _DBlock(ch[2**k], ch[2 ** (k - 1)]) for k in range(levels, 2, -1)
        ))
        self.mbstd_group, self.mbstd_channels = mbstd_group, mbstd_channels
        c4 = ch[4]
        self.conv = EqualConv2d(c4 + mbstd_channels, c4, 3, activate=True)
        self.fc = EqualLinear(c4 * 16, c4, activate=True)
        self.out = EqualLinear(c4, 1)
        self.feature_dim = c4
        self.embed = nn.Parameter(torch.randn(n_classes, c4)) if n_classes > 0 else None

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer, shape (B, feature_dim)."""
        h = self.blocks(self.from_rgb(x))
        h = minibatch_stddev(h, self.mbstd_group, self.mbstd_channels)
        return cast(Tensor, self.fc(self.conv(h).flatten(start_dim=1)))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        h = self.features(x)
        out = self.out(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed[y].to(h.dtype) * h).sum(dim=1) / math.sqrt(h.shape[1])
        return cast(Tensor, out)
