"""Reference networks: DCGAN-style convnets for images, MLPs for point data, shared layers."""

from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator, image_levels
from gankit.models.layers import NORMS, apply_spectral_norm
from gankit.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = [
    "NORMS",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "apply_spectral_norm",
    "image_levels",
]
