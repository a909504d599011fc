"""Offline GAN evaluation metrics: FID, KID, precision/recall, IS, mode and class coverage.

Every metric takes feature tensors (N, D); :mod:`gankit.metrics.features` provides the
feature networks (a small classifier trained on your data, a loaded file, or raw coordinates)
and :mod:`gankit.metrics.inception` the FID Inception from a local weights file. Nothing is
downloaded. :mod:`gankit.metrics.protocol` records what a number depends on;
:mod:`gankit.metrics.stats` caches, exports and imports reference statistics.
"""

from gankit.metrics.features import (
    DigitClassifier,
    FeatureNet,
    RawFeatures,
    SmallCNN,
    cached_classifier,
    extract_features,
    load_feature_net,
    train_classifier,
)
from gankit.metrics.fid import feature_statistics, frechet_distance, frechet_distance_from_stats
from gankit.metrics.inception import FIDInceptionV3, inception_score, load_inception
from gankit.metrics.kid import kernel_inception_distance, polynomial_mmd2
from gankit.metrics.modes import class_coverage, mode_coverage
from gankit.metrics.precision_recall import precision_recall
from gankit.metrics.protocol import Protocol
from gankit.metrics.stats import ReferenceStats, load_stats, reference_stats, save_stats

__all__ = [
    "DigitClassifier",
    "FIDInceptionV3",
    "FeatureNet",
    "Protocol",
    "RawFeatures",
    "ReferenceStats",
    "SmallCNN",
    "cached_classifier",
    "class_coverage",
    "extract_features",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_stats",
    "inception_score",
    "kernel_inception_distance",
    "load_feature_net",
    "load_inception",
    "load_stats",
    "mode_coverage",
    "polynomial_mmd2",
    "precision_recall",
    "reference_stats",
    "save_stats",
    "train_classifier",
]
