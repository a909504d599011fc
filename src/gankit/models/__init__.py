"""Reference networks: DCGAN-style convnets, the SNGAN ResNet and BigGAN pairs, StyleGAN2 and
R3GAN for images, MLPs for points, the architecture registry, CycleGAN's translator, VAE-GAN's
encoder, shared layers."""

from gankit.models.archs import ARCHS, Arch, build_networks, get_arch
from gankit.models.biggan import BigGANDiscriminator, BigGANGenerator
from gankit.models.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan_conv_stack,
    image_levels,
)
from gankit.models.encoder import ConvEncoder
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
from gankit.models.translator import ResnetTranslator

__all__ = [
    "ARCHS",
    "NORMS",
    "Arch",
    "BigGANDiscriminator",
    "BigGANGenerator",
    "ClassBatchNorm2d",
    "ConvEncoder",
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
    "ResnetTranslator",
    "SelfAttention",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "VectorBatchNorm2d",
    "apply_spectral_norm",
    "build_networks",
    "dcgan_conv_stack",
    "get_arch",
    "image_levels",
]
