"""The network families by name (the command line's ``--arch``): builder and the paper's
defaults.

One registry for the command line and for Python. ``build_networks(arch, shape, ...)``
returns a ``(generator, discriminator)`` pair with DCGAN's interface (``sample_z``,
``forward(z, y=None)`` in [-1, 1]; ``forward(x, y=None)`` -> (B,) logits), so GANUpdater,
EMA, SampleGrid, ``gankit sample`` and ``gankit eval`` work with every family unchanged.
``defaults`` are in ``gankit train``'s option names and come from each paper's CIFAR-10
configuration (docs/architectures.md names the sources).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from gankit.errors import GankitError
from gankit.models.biggan import BigGANDiscriminator, BigGANGenerator
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.models.mlp import MLPDiscriminator, MLPGenerator
from gankit.models.r3gan import R3GAN_CPU_WIDTH, R3GANDiscriminator, R3GANGenerator
from gankit.models.resnet import ResNetDiscriminator, ResNetGenerator
from gankit.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

__all__ = ["ARCHS", "Arch", "build_networks", "get_arch"]

Builder = Callable[..., tuple[nn.Module, nn.Module]]


@dataclass(frozen=True)
class Arch:
    """One family: who wrote it, how to build it, and its defaults for ``(C, H, W)`` images."""

    name: str
    paper: str
    builder: Builder
    #: ``shape -> {option: value}``; the defaults may depend on the image size
    defaults: Callable[[tuple[int, ...]], dict[str, Any]] = field(default=lambda shape: {})
    points: bool = False  # also builds networks for 2-D point data
    norms: tuple[str, ...] = ()  # discriminator norms it accepts (empty: norm not read)

    def build(self, shape: tuple[int, ...], *, z_dim: int, width: int | None = None,
              n_classes: int = 0, norm: str | None = None) -> tuple[nn.Module, nn.Module]:
        if len(shape) == 1 and not self.points:
            raise GankitError(f"arch {self.name!r} builds image networks, but the data are "
                              f"{shape[0]}-D points; use arch 'dcgan' (MLPs) for points",
                              option="arch")
        if norm is not None and self.norms and norm not in self.norms:
            raise GankitError(f"norm {norm!r} does not apply to arch {self.name!r}; its "
                              f"discriminator takes {' or '.join(map(repr, self.norms))}",
                              option="norm")
        return self.builder(tuple(shape), z_dim=z_dim, width=width, n_classes=n_classes,
                            norm=norm)


def _image(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2])


def _dcgan(shape: tuple[int, ...], *, z_dim: int, width: int | None, n_classes: int,
           norm: str | None) -> tuple[nn.Module, nn.Module]:
    width = width or (256 if len(shape) == 1 else 64)
    if len(shape) == 1:
        return (MLPGenerator(z_dim, shape[0], width, n_classes=n_classes),
                MLPDiscriminator(shape[0], width, n_classes=n_classes, norm=norm or "none"))
    return (DCGANGenerator(z_dim, _image(shape), width, n_classes=n_classes),
            DCGANDiscriminator(_image(shape), width, n_classes=n_classes, norm=norm or "batch"))


def _resnet(shape: tuple[int, ...], *, z_dim: int, width: int | None, n_classes: int,
            norm: str | None) -> tuple[nn.Module, nn.Module]:
    return (ResNetGenerator(z_dim, _image(shape), width, n_classes=n_classes),
            ResNetDiscriminator(_image(shape), width, n_classes=n_classes, norm=norm or "spectral"))


def _biggan(shape: tuple[int, ...], *, z_dim: int, width: int | None, n_classes: int,
            norm: str | None) -> tuple[nn.Module, nn.Module]:
    width = width or 96
    return (BigGANGenerator(z_dim, _image(shape), width, n_classes=n_classes),
            BigGANDiscriminator(_image(shape), width, n_classes=n_classes))


def _stylegan2(shape: tuple[int, ...], *, z_dim: int, width: int | None, n_classes: int,
               norm: str | None) -> tuple[nn.Module, nn.Module]:
    # width W: channel_base 64W, channel_max 4W; the default 32 is the module's CPU widths
    return (StyleGAN2Generator(z_dim, _image(shape), n_classes=n_classes, width=width),
            StyleGAN2Discriminator(_image(shape), n_classes=n_classes, width=width))


def _r3gan(shape: tuple[int, ...], *, z_dim: int, width: int | None, n_classes: int,
           norm: str | None) -> tuple[nn.Module, nn.Module]:
    # width: every stage's channels (the paper's CIFAR-10 preset: 768; default: CPU-sized)
    return (R3GANGenerator(z_dim, _image(shape), width, n_classes=n_classes),
            R3GANDiscriminator(_image(shape), width, n_classes=n_classes))


# Miyato et al. 2018, table 3 (CIFAR-10, hinge, setting C): Adam 2e-4, betas (0, 0.9), n_dis
# 5, batch 64, z 128. The paper trains without an EMA; gankit keeps its 0.999 for sampling.
def _resnet_defaults(shape: tuple[int, ...]) -> dict[str, Any]:
    return dict(batch_size=64, z_dim=128, n_dis=5, lr_gen=2e-4, lr_dis=2e-4, beta1=0.0,
                beta2=0.9, loss="hinge", penalty="none", norm="spectral",
                width=128 if shape[-1] <= 32 else 64)


# StudioGAN's CIFAR-10 BigGAN config: z 80, shared embedding 128, ch 96, attention at 16x16,
# batch 64, Adam 2e-4 with betas (0.5, 0.999), 5 D steps, hinge, EMA 0.9999.
def _biggan_defaults(shape: tuple[int, ...]) -> dict[str, Any]:
    return dict(batch_size=64, z_dim=80, n_dis=5, lr_gen=2e-4, lr_dis=2e-4, beta1=0.5,
                beta2=0.999, loss="hinge", penalty="none", norm="spectral", width=96,
                ema=0.9999)


# Karras et al. 2020 / stylegan2-ada's CIFAR config: Adam 0.0025, betas (0, 0.99), batch 64,
# non-saturating loss, R1 γ 0.01 every 16 D steps, no path-length regulariser. z 512 in the
# paper; 128 here, sized for a CPU run (z_dim=512 for the paper's).
def _stylegan2_defaults(shape: tuple[int, ...]) -> dict[str, Any]:
    return dict(batch_size=64, z_dim=128, n_dis=1, lr_gen=2.5e-3, lr_dis=2.5e-3, beta1=0.0,
                beta2=0.99, loss="ns", penalty="r1", penalty_weight=0.01, penalty_every=16,
                norm="none", width=32, path_length=0.0)


# Huang et al. 2024, the CIFAR-10 preset of its code: Adam betas (0, 0.99) at the end of its
# ramps (beta2 0.9 -> 0.99, lr 2e-4 -> 5e-5), one D step, z 64; the loss and its R1 + R2
# penalty are not set here. Width 768 in the paper; R3GAN_CPU_WIDTH here, for a CPU run.
def _r3gan_defaults(shape: tuple[int, ...]) -> dict[str, Any]:
    return dict(batch_size=64, z_dim=64, n_dis=1, lr_gen=2e-4, lr_dis=2e-4, beta1=0.0,
                beta2=0.99, norm="none", width=R3GAN_CPU_WIDTH)


ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("dcgan", "Radford et al. 2015", _dcgan, points=True),
        Arch("resnet", "Miyato et al. 2018 (SNGAN)", _resnet, _resnet_defaults,
             norms=("spectral", "none")),
        Arch("biggan", "Brock et al. 2019", _biggan, _biggan_defaults, norms=("spectral",)),
        Arch("stylegan2", "Karras et al. 2020", _stylegan2, _stylegan2_defaults,
             norms=("none",)),
        Arch("r3gan", "Huang et al. 2024 (R3GAN)", _r3gan, _r3gan_defaults, norms=("none",)),
    )
}


def get_arch(name: str) -> Arch:
    """The registered family ``name``; GankitError naming the choices otherwise."""
    if name not in ARCHS:
        raise GankitError(f"unknown arch {name!r}; choose one of: {', '.join(ARCHS)}")
    return ARCHS[name]


def build_networks(arch: str, shape: tuple[int, ...], *, z_dim: int, width: int | None = None,
                   n_classes: int = 0, norm: str | None = None) -> tuple[nn.Module, nn.Module]:
    """``(generator, discriminator)`` of family ``arch`` for samples of ``shape``."""
    return get_arch(arch).build(shape, z_dim=z_dim, width=width, n_classes=n_classes, norm=norm)
