"""Reference networks: DCGAN-style convnets for images and MLPs for point data."""

from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator, image_levels
from gankit.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "image_levels",
]
