"""Offline GAN evaluation metrics: FID, KID, precision/recall, mode and class coverage.

Every metric takes feature tensors (N, D); :mod:`gankit.metrics.features` provides the
feature networks (a small classifier trained on your data, a loaded file, or raw coordinates).
Nothing is downloaded.
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
from gankit.metrics.kid import kernel_inception_distance, polynomial_mmd2
from gankit.metrics.modes import class_coverage, mode_coverage
from gankit.metrics.precision_recall import precision_recall

__all__ = [
    "DigitClassifier",
    "FeatureNet",
    "RawFeatures",
    "SmallCNN",
    "cached_classifier",
    "class_coverage",
    "extract_features",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_stats",
    "kernel_inception_distance",
    "load_feature_net",
    "mode_coverage",
    "polynomial_mmd2",
    "precision_recall",
    "train_classifier",
]
