"""Reference networks: DCGAN-style convnets and StyleGAN2 for images, MLPs for points, layers."""

from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator, image_levels
from gankit.models.layers import NORMS, apply_spectral_norm
from gankit.models.mlp import MLPDiscriminator, MLPGenerator
from gankit.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

__all__ = [
    "NORMS",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "apply_spectral_norm",
    "image_levels",
]
