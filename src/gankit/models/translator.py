"""CycleGAN's image-to-image network (Zhu et al. 2017), scaled down to small images."""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from gankit.errors import GankitError

__all__ = ["ResnetTranslator"]


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1), _norm(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1), _norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return cast(Tensor, x + self.body(x))


def _norm(channels: int) -> nn.Module:
    # Instance norm, as in the paper: each image is normalised on its own, so a batch may mix
    # domains (gankit.gan.cyclegan.cycle_losses) without one domain's statistics leaking into
    # the other's.
    return nn.InstanceNorm2d(channels, affine=True)


class ResnetTranslator(nn.Module):
    """Image-to-image network (B, C, H, W) -> (B, C, H, W) in [-1, 1]: the paper's ResNet
    generator scaled down to small images.

    3x3 conv, ``down`` stride-2 4x4 convs (each halving the side and doubling the channels),
    ``n_blocks`` residual blocks there, as many transposed convs back to H and a 3x3 conv
    with tanh; instance norm after every conv but the last, as in the paper.

    ``down=0`` keeps every layer at full resolution: each output pixel sees the
    ``(5 + 4 * n_blocks)``-pixel square around it and, through instance norm, each channel's
    mean and spread over the image.
    The default ``down=1, n_blocks=3`` is the paper's layout scaled down.
    """

    def __init__(self, shape: tuple[int, int, int] = (1, 8, 8), base: int = 32,
                 n_blocks: int = 3, down: int = 1) -> None:
        super().__init__()
        c, h, w = (int(d) for d in shape)
        step = 2 ** max(down, 0)
        if h % step or w % step or h < 2 * step or w < 2 * step:
            raise GankitError(f"image shape {tuple(shape)} is not supported by the translator "
                              f"with down={down}; it needs a height and width divisible by "
                              f"{step} and at least {2 * step}.")
        if base < 1 or n_blocks < 0 or down < 0:
            raise GankitError(f"base={base} must be positive and n_blocks={n_blocks} and "
                              f"down={down} not negative.")
        self.shape = (c, h, w)
        layers: list[nn.Module] = [nn.Conv2d(c, base, 3, 1, 1), _norm(base), nn.ReLU(inplace=True)]
        for i in range(down):
            layers += [nn.Conv2d(base * 2 ** i, base * 2 ** (i + 1), 4, 2, 1),
                       _norm(base * 2 ** (i + 1)), nn.ReLU(inplace=True)]
        layers += [_ResBlock(base * 2 ** down) for _ in range(n_blocks)]
        for i in reversed(range(down)):
            layers += [nn.ConvTranspose2d(base * 2 ** (i + 1), base * 2 ** i, 4, 2, 1),
                       _norm(base * 2 ** i), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(base, c, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return cast(Tensor, self.net(x))
