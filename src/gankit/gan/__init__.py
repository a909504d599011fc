"""GAN toolkit: losses, penalties, augmentations, regularisers, the updaters of GAN, VAE-GAN
and CycleGAN, sampling."""

from gankit.gan.augment import ADA, DIFFAUG_OPS, Augment, DiffAugment, get_augment
from gankit.gan.cyclegan import CycleEvaluator, CycleGANUpdater, HistoryBuffer, translate
from gankit.gan.losses import LOSSES, GANLoss, get_loss
from gankit.gan.penalties import (
    PENALTIES,
    gradient_penalty,
    lazy_adam_hparams,
    lazy_regularization,
    path_length_penalty,
    r1_penalty,
    r2_penalty,
)
from gankit.gan.regularizers import LeCam, bcr_penalty, lecam_penalty
from gankit.gan.sampling import generate
from gankit.gan.updaters import GANUpdater, split_batch
from gankit.gan.vaegan import ReconstructionEvaluator, VAEGANUpdater, kl_normal, reconstruct

# The networks live in gankit.models; imported here too, where they were first.
from gankit.models.encoder import ConvEncoder
from gankit.models.translator import ResnetTranslator

__all__ = [
    "ADA", "DIFFAUG_OPS", "LOSSES", "PENALTIES", "Augment", "ConvEncoder", "CycleEvaluator",
    "CycleGANUpdater", "DiffAugment", "GANLoss", "GANUpdater", "HistoryBuffer", "LeCam",
    "ReconstructionEvaluator",
    "ResnetTranslator", "VAEGANUpdater", "bcr_penalty", "generate", "get_augment", "get_loss",
    "gradient_penalty", "kl_normal", "lazy_adam_hparams", "lazy_regularization", "lecam_penalty",
    "path_length_penalty", "r1_penalty", "r2_penalty", "reconstruct", "split_batch", "translate",
]
