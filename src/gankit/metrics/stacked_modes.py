"""Stacked MNIST's mode coverage: modes covered out of 1,000 and the KL to uniform.

The protocol of Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN), which the
R3GAN paper's table follows: a digit classifier labels each of the three channels of 26,000
generated samples; the triple of digits is the sample's mode; "modes" counts the modes hit at
least once and "kl" is KL(histogram of modes || uniform over 1,000) (0 when balanced, ln 1000
= 6.91 when all samples share one mode).

The classifier is gankit's SmallCNN trained on single channels of the training stacks (each
one an MNIST training digit, labelled by its place in the mode) through
:func:`gankit.metrics.features.cached_classifier`: trained once per data and recipe, bounded
in steps, then loaded from the cache. Its accuracy is measured on the channels of the
held-out stacks, whose digits come from MNIST's t10k files.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gankit.data.datasets import to_unit
from gankit.data.stackedmnist import STACKED_MODES, digits_mode, is_stacked_mnist, mode_digits
from gankit.errors import GankitError
from gankit.metrics.features import SmallCNN, cached_classifier, extract_features
from gankit.metrics.modes import class_coverage

if TYPE_CHECKING:
    from gankit.data import ArrayDataset

__all__ = [
    "CHANNEL_FEATURES_VERSION",
    "DIGIT_CLASSIFIER_OPTIONS",
    "STACKED_SAMPLES",
    "ChannelFeatures",
    "StackedModeJudge",
    "stacked_mode_judge",
    "stacked_mode_scores",
]

#: generated samples per evaluation in the published tables
STACKED_SAMPLES = 26_000
#: how the digit classifier is trained (part of its cache key)
DIGIT_CLASSIFIER_OPTIONS: dict[str, Any] = {"epochs": 5, "max_steps": 1000, "width": 16,
                                            "feature_dim": 64, "seed": 0}
#: the protocol name of FID/KID/PR in the judge's features (:class:`ChannelFeatures`)
CHANNEL_FEATURES_VERSION = "gankit-smallcnn-v1-channels"
#: single-channel digits it trains on, and the held-out ones it is scored on, at most
DIGIT_TRAIN_MAX = 30_000
DIGIT_VAL_MAX = 10_000


@dataclass
class StackedModeJudge:
    """A digit classifier that labels each channel of Stacked MNIST images.

    ``accuracy`` is its accuracy on single held-out digits.
    """

    classifier: SmallCNN
    accuracy: float

    def digits(self, images: Tensor, batch_size: int = 1536) -> Tensor:
        """Predicted digits (N, 3), red channel's first, for images (N, 3, H, W)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise GankitError(f"Stacked MNIST samples have 3 channels, not shape "
                              f"{tuple(images.shape)}; pass (N, 3, H, W) images")
        n, _, h, w = images.shape
        channels = to_unit(images).reshape(n * 3, 1, h, w)
        logits = extract_features(self.classifier, channels, batch_size)
        return logits.argmax(1).reshape(n, 3)

    def modes(self, images: Tensor) -> Tensor:
        """Mode indices 0..999 (N,) of images (N, 3, H, W)."""
        return digits_mode(self.digits(images))

    def to(self, device: str | torch.device) -> StackedModeJudge:
        """Move the classifier to ``device`` (in place) and return self."""
        self.classifier.to(device)
        return self


class ChannelFeatures(nn.Module):
    """The digit classifier's features of each channel, side by side: (N, C * D) for images
    (N, C, H, W), the first channel's first.

    Stacked MNIST's FID, KID and precision/recall are computed in these: a classifier of its
    1,000 modes (about 128 training images each) does not learn in the classifier's budget,
    while each channel is a digit the judge knows.
    """

    def __init__(self, classifier: SmallCNN) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        """Features (N, C * feature_dim)."""
        n, c, h, w = x.shape
        out: Tensor = self.classifier.features(x.reshape(n * c, 1, h, w)).reshape(n, -1)
        return out


def _channels(data: ArrayDataset, cap: int) -> tuple[Tensor, Tensor]:
    """The first ``cap`` single-channel digits (K, 1, H, W) of ``data`` and their labels."""
    assert data.y is not None
    per = -(-cap // 3)  # stacks needed for cap channels
    x, y = data.x[:per], mode_digits(data.y[:per])
    n, _, h, w = x.shape
    return x.reshape(n * 3, 1, h, w)[:cap], y.reshape(-1)[:cap]


def stacked_mode_judge(train: ArrayDataset, val: ArrayDataset, *,
                       cache_dir: str | Path | None = None, device: str | torch.device = "cpu",
                       progress: bool = True, max_steps: int | None = None) -> StackedModeJudge:
    """The digit classifier for Stacked MNIST data ``train`` / ``val`` (see the module).

    ``max_steps`` replaces the step bound of ``DIGIT_CLASSIFIER_OPTIONS``. Prints its held-out
    accuracy on stderr when ``progress``.
    """
    for data in (train, val):
        if not is_stacked_mnist(data) or data.y is None:
            raise GankitError(f"data {data.name!r} of shape {tuple(data.shape)} is not Stacked "
                              f"MNIST; load it with load_stacked_mnist (stackedmnist:DIR)")
    fit_x, fit_y = _channels(train, DIGIT_TRAIN_MAX)
    held_x, held_y = _channels(val, DIGIT_VAL_MAX)
    options = dict(DIGIT_CLASSIFIER_OPTIONS)
    if max_steps is not None:
        options["max_steps"] = max_steps
    model, accuracy = cached_classifier(fit_x, fit_y, held_x, held_y, n_classes=10,
                                        cache_dir=cache_dir, device=device, progress=progress,
                                        **options)
    if progress:
        print(f"Stacked MNIST digit classifier: held-out accuracy {accuracy:.2%} per channel "
              f"({len(held_y)} digits)", file=sys.stderr, flush=True)
    return StackedModeJudge(model, accuracy)


def stacked_mode_scores(judge: StackedModeJudge, samples: Tensor) -> dict[str, float]:
    """``{"modes": modes covered, "kl": KL(mode histogram || uniform), "kl_digits": the sum
    over the three channels of KL(digit histogram || uniform over 10)}`` of ``samples``.

    ``kl`` is ``kl_digits`` plus the channels' total correlation (their dependence), exactly,
    so the two tell a generator with unbalanced digits from one whose channels agree too often.
    The published tables score 26,000 samples (``STACKED_SAMPLES``); fewer cover fewer modes
    by chance alone.
    """
    d = judge.digits(samples).cpu()
    scores = class_coverage(digits_mode(d), STACKED_MODES)
    per_channel = (class_coverage(d[:, c], 10)["class_kl"] for c in range(3))
    return {"modes": float(scores["classes"]), "kl": float(scores["class_kl"]),
            "kl_digits": float(sum(per_channel))}
