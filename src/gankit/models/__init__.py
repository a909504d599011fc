"""Reference networks: DCGAN-style convnets and MLPs, the SNGAN ResNet and BigGAN pairs, the
``--arch`` registry, shared layers."""

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
from gankit.models.resnet import ResNetDiscriminator, ResNetGenerator

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
    "ResNetDiscriminator",
    "ResNetGenerator",
    "SelfAttention",
    "VectorBatchNorm2d",
    "apply_spectral_norm",
    "build_networks",
    "get_arch",
    "image_levels",
]
