"""GAN toolkit: losses, penalties, augmentations, regularisers, the updaters of GAN, VAE-GAN
and CycleGAN, sampling."""

from gankit.data.augment import ADA, DIFFAUG_OPS, Augment, DiffAugment, get_augment
from gankit.gan.cyclegan import CycleEvaluator, CycleGANUpdater, HistoryBuffer, translate
from gankit.gan.losses import LOSSES, SEPARABLE_LOSSES, GANLoss, Loss, RelativisticLoss, get_loss
from gankit.gan.penalties import (
    gradient_penalty,
    lazy_adam_hparams,
    lazy_regularization,
    path_length_penalty,
    r1_penalty,
    r2_penalty,
)
from gankit.gan.regularizers import LeCamAnchors, bcr_penalty, lecam_penalty
from gankit.gan.sampling import generate
from gankit.gan.terms import (
    BCR,
    GP,
    R1,
    R2,
    TERMS,
    DisStep,
    DisTerm,
    GenStep,
    GenTerm,
    LeCam,
    PathLength,
    Term,
    register_term,
)
from gankit.gan.updaters import GANUpdater, split_batch
from gankit.gan.vaegan import ReconstructionEvaluator, VAEGANUpdater, kl_normal, reconstruct

# The networks live in gankit.models; imported here too, where they were first.
from gankit.models.encoder import ConvEncoder
from gankit.models.translator import ResnetTranslator

__all__ = [
    "ADA",
    "BCR",
    "DIFFAUG_OPS",
    "GP",
    "LOSSES",
    "R1",
    "R2",
    "SEPARABLE_LOSSES",
    "TERMS",
    "Augment",
    "ConvEncoder",
    "CycleEvaluator",
    "CycleGANUpdater",
    "DiffAugment",
    "DisStep",
    "DisTerm",
    "GANLoss",
    "GANUpdater",
    "GenStep",
    "GenTerm",
    "HistoryBuffer",
    "LeCam",
    "LeCamAnchors",
    "Loss",
    "PathLength",
    "ReconstructionEvaluator",
    "RelativisticLoss",
    "ResnetTranslator",
    "Term",
    "VAEGANUpdater",
    "bcr_penalty",
    "generate",
    "get_augment",
    "get_loss",
    "gradient_penalty",
    "kl_normal",
    "lazy_adam_hparams",
    "lazy_regularization",
    "lecam_penalty",
    "path_length_penalty",
    "r1_penalty",
    "r2_penalty",
    "reconstruct",
    "register_term",
    "split_batch",
    "translate",
]
