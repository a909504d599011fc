"""GAN toolkit: losses, penalties, the updaters of GAN, VAE-GAN and CycleGAN, sampling."""

from gankit.gan.cyclegan import (
    CycleEvaluator,
    CycleGANUpdater,
    HistoryBuffer,
    ResnetTranslator,
    translate,
)
from gankit.gan.losses import LOSSES, GANLoss, get_loss
from gankit.gan.penalties import PENALTIES, gradient_penalty, r1_penalty, r2_penalty
from gankit.gan.sampling import generate
from gankit.gan.updaters import GANUpdater, split_batch
from gankit.gan.vaegan import (
    ConvEncoder,
    ReconstructionEvaluator,
    VAEGANUpdater,
    kl_normal,
    reconstruct,
)

__all__ = [
    "LOSSES", "PENALTIES", "ConvEncoder", "CycleEvaluator", "CycleGANUpdater", "GANLoss",
    "GANUpdater", "HistoryBuffer", "ReconstructionEvaluator", "ResnetTranslator",
    "VAEGANUpdater", "generate", "get_loss", "gradient_penalty", "kl_normal", "r1_penalty",
    "r2_penalty", "reconstruct", "split_batch", "translate",
]
