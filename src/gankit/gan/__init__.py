"""GAN toolkit: losses and regularisers for discriminators."""

from gankit.gan.losses import LOSSES, GANLoss, get_loss
from gankit.gan.penalties import apply_spectral_norm, gradient_penalty, r1_penalty, r2_penalty

__all__ = [
    "LOSSES",
    "GANLoss",
    "apply_spectral_norm",
    "get_loss",
    "gradient_penalty",
    "r1_penalty",
    "r2_penalty",
]
