"""Reference networks: DCGAN-style convnets, the SNGAN ResNet and BigGAN pairs, StyleGAN2 and
R3GAN for images, MLPs for points, the ``--arch`` registry, shared layers."""

from gankit.models.archs import ARCHS, Arch, build_networks, get_arch
from gankit.models.biggan import BigGANDiscriminator, BigGANGenerator
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator, image_levels
from gankit.models.layers import (
    NORMS,
    ClassBatchNorm2d,
    DBlock,
    GBlock,
    PlainBatchNorm2d,
    SelfAttention,
    VectorBatchNorm2d,
    apply_spectral_norm,
)
from gankit.models.mlp import MLPDiscriminator, MLPGenerator
from gankit.models.r3gan import R3GANDiscriminator, R3GANGenerator
from gankit.models.resnet import ResNetDiscriminator, ResNetGenerator
from gankit.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

__all__ = [
    "ARCHS",
    "NORMS",
    "Arch",
    "BigGANDiscriminator",
    "BigGANGenerator",
    "ClassBatchNorm2d",
    "DBlock",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "GBlock",
    "MLPDiscriminator",
    "MLPGenerator",
    "PlainBatchNorm2d",
    "R3GANDiscriminator",
    "R3GANGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "SelfAttention",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "VectorBatchNorm2d",
    "apply_spectral_norm",
    "build_networks",
    "get_arch",
    "image_levels",
]
