"""The VAE-GAN encoder (Larsen et al. 2016): the DCGAN discriminator's conv stack with a
Gaussian head."""

from __future__ import annotations

from torch import Tensor, nn

from gankit.models.dcgan import dcgan_conv_stack, image_levels

__all__ = ["ConvEncoder"]


class ConvEncoder(nn.Module):
    """Images (B, C, H, W) -> ``(mu, logvar)``, each (B, z_dim): ``dcgan_conv_stack`` (the
    DCGAN discriminator's body, BatchNorm after every conv but the first) with a linear head.

    Same side rules as ``DCGANDiscriminator`` (``H = s0 * 2**k``); torch's default
    initialisation.
    """

    def __init__(self, z_dim: int = 32, shape: tuple[int, int, int] = (1, 8, 8),
                 base: int = 32) -> None:
        super().__init__()
        image_levels(shape)  # refuses the shapes it cannot take before anything else
        c, h, w = (int(d) for d in shape)
        self.z_dim, self.shape = z_dim, (c, h, w)
        convs, feature_dim = dcgan_conv_stack(self.shape, base, "batch")
        self.body = nn.Sequential(*convs, nn.Flatten())
        self.head = nn.Linear(feature_dim, 2 * z_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar
