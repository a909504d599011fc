"""A feature network learned from unlabelled images: SimCLR's contrastive objective.

For images without labels there is no classifier to train, so gankit learns features from the
training images themselves, as SimCLR does (Chen et al., 2020): every image of a batch is
augmented twice, and the network learns to tell, for each view, which of the other 2N - 1
views in the batch comes from the same image (the NT-Xent loss: a softmax cross-entropy over
cosine similarities divided by a temperature). The views come from DiffAugment (colour,
translation, cutout: :class:`gankit.data.augment.DiffAugment`), the augmentation the
discriminator already uses, and the network is the same :class:`SmallCNN` as the classifier:
its ``features`` are what FID, KID and precision/recall are computed on, its ``head`` is the
projection the loss sees (the loss is computed after a projection, the features taken before
it, as in SimCLR).

The held-out score of the network is its *view-matching accuracy*: over batches of held-out
images, the fraction of first views whose most similar second view is the one of the same
image (chance is one over the batch size).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.data.augment import DiffAugment
from gankit.data.datasets import to_unit
from gankit.errors import GankitError
from gankit.metrics.features import SmallCNN, cached_smallcnn, fit_steps

__all__ = ["SSL_VERSION", "cached_ssl", "nt_xent", "train_ssl", "view_accuracy"]

# Part of the cache key and the protocol's feature-network name: bump it whenever the
# network, the views or the training recipe change.
SSL_VERSION = "gankit-simclr-v1"

#: images per batch when the held-out view-matching accuracy is measured
MATCH_BATCH = 256
#: held-out images the view-matching accuracy is measured on, at most
MATCH_IMAGES = 2048


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """SimCLR's NT-Xent loss for projections ``z1[i]``, ``z2[i]`` of two views of image i."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = (z @ z.T) / temperature
    self_pair = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_pair, float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, partner)


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """The global RNG streams (CPU, and ``device``'s when it is a GPU) seeded inside, restored
    after: the views draw from them, and a run must not depend on whether the net was cached."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def view_accuracy(model: SmallCNN, x: Tensor, *, seed: int = 0,
                  device: str | torch.device = "cpu") -> float:
    """Held-out view-matching accuracy of ``model`` on images ``x`` (N, C, S, S) in [-1, 1] or
    uint8: first views matched to the most similar second view within batches of
    ``MATCH_BATCH``, on the first ``MATCH_IMAGES`` images; a batch of one is left out (NaN
    when that leaves none)."""
    device = torch.device(device)
    views = DiffAugment()
    hits = total = 0
    with _seeded(seed, device):
        for start in range(0, min(len(x), MATCH_IMAGES), MATCH_BATCH):
            xb = to_unit(torch.as_tensor(x[start : start + MATCH_BATCH]).to(device))
            if xb.shape[0] < 2:
                continue
            z1 = F.normalize(model(views(xb)).float(), dim=1)
            z2 = F.normalize(model(views(xb)).float(), dim=1)
            match = (z1 @ z2.T).argmax(1)
            hits += int((match == torch.arange(len(xb), device=device)).sum())
            total += len(xb)
    return hits / total if total else math.nan


def train_ssl(
    train_x: Tensor,
    val_x: Tensor,
    *,
    epochs: int = 60,
    batch_size: int = 128,
    lr: float = 3e-3,
    width: int = 32,
    feature_dim: int = 128,
    projection_dim: int = 64,
    temperature: float = 0.2,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
    max_seconds: float | None = None,
    progress: bool = False,
) -> tuple[SmallCNN, float]:
    """Train a SmallCNN with SimCLR's objective on unlabelled images (N, C, S, S) in [-1, 1]
    (or uint8 0..255); return it (eval mode) and its held-out view-matching accuracy on
    ``val_x`` (NaN with a single held-out image).

    Each step draws ``batch_size`` training images, two DiffAugment views of each, and
    minimises :func:`nt_xent` at ``temperature`` on their ``projection_dim`` projections. The
    loop is the classifier's (:func:`gankit.metrics.features.fit_steps`): Adam with a cosine
    decay, at most ``epochs`` epochs or ``max_steps`` steps, fewer where ``max_seconds`` would
    be exceeded, a progress line with ``progress``, and a pending stop signal raises
    ``StopRequested``. Initialisation, order and views draw from ``seed`` only; the global
    RNG streams are left as they were.
    """
    train_x, val_x = torch.as_tensor(train_x), torch.as_tensor(val_x)
    for name, x, least in (("train_x", train_x, 2), ("val_x", val_x, 1)):
        if x.dim() != 4 or x.shape[2] != x.shape[3] or x.shape[0] < least:
            raise GankitError(f"{name} has shape {tuple(x.shape)}; pass at least {least} "
                              "square image(s) (N, C, S, S).")
    if tuple(val_x.shape[1:]) != tuple(train_x.shape[1:]):
        raise GankitError(f"val_x images have shape {tuple(val_x.shape[1:])} but train_x "
                          f"images {tuple(train_x.shape[1:])}; pass images of one size.")
    if epochs < 1 or batch_size < 2 or not temperature > 0 or projection_dim < 2:
        raise GankitError(f"epochs={epochs}, batch_size={batch_size}, temperature="
                          f"{temperature} and projection_dim={projection_dim} must be at least "
                          "1, 2, above 0 and at least 2.")
    device = torch.device(device)
    with _seeded(seed, device):
        model = SmallCNN(train_x.shape[1], train_x.shape[-1], projection_dim, width=width,
                         feature_dim=feature_dim)
        model.to(device).train()
        gen = torch.Generator().manual_seed(seed)
        x_all = train_x.to(device) if train_x.dtype == torch.uint8 else train_x.to(
            device=device, dtype=torch.float32)
        views = DiffAugment()

        def loss(idx: Tensor) -> Tensor:
            xb = to_unit(x_all[idx])
            return nt_xent(model(views(xb)), model(views(xb)), temperature)

        fit_steps(model, loss, n=x_all.shape[0], epochs=epochs, batch_size=batch_size, lr=lr,
                  gen=gen, device=device, max_steps=max_steps, max_seconds=max_seconds,
                  what="training the self-supervised feature network", progress=progress)
    model.eval()
    return model, view_accuracy(model, val_x, seed=seed, device=device)


def cached_ssl(
    train_x: Tensor,
    val_x: Tensor,
    *,
    cache_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    **options: Any,
) -> tuple[SmallCNN, float]:
    """:func:`train_ssl` with the training arguments ``options``, trained once per data +
    recipe and then loaded from the cache (:func:`gankit.metrics.features.cached_smallcnn`:
    keyed by the images' hash, every training argument and ``SSL_VERSION``; ``device`` is left
    out)."""
    unknown = sorted(set(options) - set(TRAINING_ARGS))
    if unknown:
        raise GankitError(f"unknown training argument(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(TRAINING_ARGS)}.")
    recipe = {"version": SSL_VERSION, **TRAINING_ARGS, **options}
    return cached_smallcnn(
        "ssl", recipe, (train_x, val_x),
        lambda: train_ssl(train_x, val_x, device=device, progress=progress, **options),
        cache_dir=cache_dir, device=device)


#: train_ssl's training arguments and their defaults (what the cache key holds)
TRAINING_ARGS: dict[str, Any] = {
    name: p.default for name, p in inspect.signature(train_ssl).parameters.items()
    if p.kind is p.KEYWORD_ONLY and name not in ("device", "progress")}
