"""Feature networks for the metrics, none of which is ever downloaded.

For images gankit trains a small network on the user's own data and caches it: a classifier
of labelled images (here), the same network trained without labels for unlabelled ones
(:mod:`gankit.metrics.ssl`, on this module's training loop and cache); or it loads a network
the user supplies; for 2-D toy data the coordinates are the features.
FID/KID/precision-recall numbers are comparable only when computed with the same network.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.data.datasets import to_unit
from gankit.errors import GankitError
from gankit.training.checkpoint import hash_tensor, write_atomic
from gankit.training.distributed import all_gather_object, any_rank
from gankit.training.eval_mode import eval_mode
from gankit.training.stop import check_stop

__all__ = [
    "DigitClassifier",
    "FeatureNet",
    "RawFeatures",
    "SmallCNN",
    "cached_classifier",
    "cached_smallcnn",
    "extract_features",
    "fit_steps",
    "load_feature_net",
    "train_classifier",
]

# Part of the cache key: bump it whenever the architecture or the training recipe changes,
# so that old cached weights are never loaded into a different network.
CLASSIFIER_VERSION = "gankit-smallcnn-v1"


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """A small conv net for square images in [-1, 1] of side ``image_size`` >= 8.

    Stride-2 convolutions halve the side until it is at most 4, the map is flattened (digit
    shapes depend on where strokes are, so no global pooling) and projected to
    ``feature_dim`` ReLU units: ``features(x)`` returns those (N, feature_dim) activations and
    ``forward(x)`` the (N, n_classes) logits computed from them.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        n_classes: int,
        width: int = 32,
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        if image_size < 8 or in_channels < 1 or n_classes < 2 or width < 1 or feature_dim < 1:
            raise GankitError(
                f"SmallCNN(in_channels={in_channels}, image_size={image_size}, "
                f"n_classes={n_classes}, width={width}, feature_dim={feature_dim}) is invalid; "
                "use images of side >= 8, at least 2 classes and positive sizes."
            )
        self.config = {
            "in_channels": in_channels,
            "image_size": image_size,
            "n_classes": n_classes,
            "width": width,
            "feature_dim": feature_dim,
        }
        layers = [_conv_block(in_channels, width, 1)]
        channels, side = width, image_size
        while side > 4:
            out = min(2 * channels, 4 * width)
            layers.append(_conv_block(channels, out, 2))
            channels, side = out, math.ceil(side / 2)
        self.body = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(channels * side * side, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, n_classes)
        #: the optimiser steps it was trained for (None: not known, e.g. loaded weights)
        self.trained_steps: int | None = None

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations (N, feature_dim) for images (N, C, S, S) in [-1, 1]."""
        # The readable shape check is Python-only; scripted/traced copies rely on torch's own.
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            self._check_input(x)
        out: Tensor = self.project(self.body(x).flatten(1))  # (TorchScript has no cast)
        return out

    @torch.jit.unused
    def _check_input(self, x: Tensor) -> None:
        c, s = self.config["in_channels"], self.config["image_size"]
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise GankitError(
                f"the classifier expects images of shape (N, {c}, {s}, {s}) but got "
                f"{tuple(x.shape)}; resize the images or train a classifier for this size."
            )

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, n_classes)."""
        logits: Tensor = self.head(self.features(x))
        return logits


class DigitClassifier(SmallCNN):
    """SmallCNN for 8x8 single-channel digits with 10 classes (sklearn's embedded digits)."""

    def __init__(self, width: int = 32, feature_dim: int = 128) -> None:
        super().__init__(1, 8, 10, width=width, feature_dim=feature_dim)


class RawFeatures(nn.Module):
    """Identity feature map for low-dimensional data (2-D points): features are the inputs."""

    def forward(self, x: Tensor) -> Tensor:
        """Return x flattened to (N, D)."""
        return x.reshape(x.shape[0], -1)

    def features(self, x: Tensor) -> Tensor:
        """Same as forward, so RawFeatures fits wherever a classifier's features do."""
        out: Tensor = self(x)
        return out


class FeatureNet(nn.Module):
    """Wraps a loaded module: ``features(x)`` if it has one, else its output flattened."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.net = module
        self.use_features = callable(getattr(module, "features", None))

    def forward(self, x: Tensor) -> Tensor:
        """Features (N, D) of a batch."""
        net = cast(Callable[[Tensor], Tensor], self.net.features if self.use_features else self.net)
        out = net(x)
        return out.reshape(out.shape[0], -1)


def _check_images(x: Tensor, y: Tensor, name: str, n_classes: int) -> None:
    if x.dim() != 4 or x.shape[2] != x.shape[3] or x.shape[0] == 0:
        raise GankitError(
            f"{name}_x has shape {tuple(x.shape)}; pass non-empty square images (N, C, S, S)."
        )
    if y.shape != (x.shape[0],) or y.is_floating_point():
        raise GankitError(
            f"{name}_y has shape {tuple(y.shape)} and dtype {y.dtype}; pass one integer label "
            f"per image ({x.shape[0]})."
        )
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise GankitError(
            f"{name}_y has labels in [{int(y.min())}, {int(y.max())}], outside "
            f"[0, {n_classes - 1}]; check n_classes."
        )


def _random_shift(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Translate each image by its own random offset in [-max_shift, max_shift] pixels."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    off = torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen).to(x.device)
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, h, 1)
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, :]  # (n, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indexing puts the indexed dims first: (n, h, w, C) -> (n, C, h, w).
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor, device: torch.device) -> float:
    logits = extract_features(model, x, device=device)
    return float((logits.argmax(1).cpu() == y.cpu()).double().mean())


def train_classifier(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    *,
    n_classes: int,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 3e-3,
    width: int = 32,
    feature_dim: int = 128,
    max_shift: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
    max_seconds: float | None = None,
    progress: bool = False,
) -> tuple[SmallCNN, float]:
    """Train a SmallCNN on images (N, C, S, S) in [-1, 1] (or uint8 0..255); return it (eval
    mode) and val accuracy.

    Adam with a cosine-decayed learning rate; each batch is shifted by up to ``max_shift``
    pixels (default ``max(1, S // 8)``) so features do not hinge on exact pixel positions.
    Initialisation, shuffling and augmentation draw from ``seed`` only, without touching the
    global RNG. On sklearn's digits (1497 train / 300 val) the defaults reach about 98%.
    Training stops after ``epochs`` or ``max_steps`` steps, whichever comes first, so a big
    data set costs a bounded time; with ``max_seconds`` the step count is lowered, from the
    pace measured once training runs (:class:`StepBudget`), to what ends in about that many
    seconds, the learning rate annealed over it (the model's ``trained_steps`` says how many
    it took); ``progress`` shows a line on stderr while it runs.

    A pending stop signal (:func:`gankit.training.stop.check_stop`, polled every batch)
    abandons the training by raising ``StopRequested``.
    """
    train_x, val_x = torch.as_tensor(train_x), torch.as_tensor(val_x)
    train_y, val_y = torch.as_tensor(train_y), torch.as_tensor(val_y)
    _check_images(train_x, train_y, "train", n_classes)
    _check_images(val_x, val_y, "val", n_classes)
    if tuple(val_x.shape[1:]) != tuple(train_x.shape[1:]):
        raise GankitError(
            f"val_x images have shape {tuple(val_x.shape[1:])} but train_x images "
            f"{tuple(train_x.shape[1:])}; pass images of one size."
        )
    if epochs < 1 or batch_size < 1 or (max_steps is not None and max_steps < 1):
        raise GankitError(f"epochs={epochs}, batch_size={batch_size} and max_steps={max_steps} "
                          "must all be positive.")
    device = torch.device(device)
    side = train_x.shape[-1]
    shift = max(1, side // 8) if max_shift is None else max_shift
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(train_x.shape[1], side, n_classes, width=width, feature_dim=feature_dim)
    model.to(device).train()
    gen = torch.Generator().manual_seed(seed)
    # uint8 stays uint8 on the device (a quarter of the memory); batches become float there.
    x_all = train_x.to(device) if train_x.dtype == torch.uint8 else train_x.to(
        device=device, dtype=torch.float32)
    y_all = train_y.to(device=device, dtype=torch.long)

    def loss(idx: Tensor) -> Tensor:
        xb = to_unit(x_all[idx])
        if shift > 0:
            xb = _random_shift(xb, shift, gen)
        return F.cross_entropy(model(xb), y_all[idx])

    fit_steps(model, loss, n=x_all.shape[0], epochs=epochs, batch_size=batch_size, lr=lr,
              gen=gen, device=device, max_steps=max_steps, max_seconds=max_seconds,
              what="training the feature classifier", progress=progress)
    model.eval()
    # uint8 images stay uint8: extract_features makes each batch float, not the whole set.
    held = val_x if val_x.dtype == torch.uint8 else val_x.float()
    return model, _accuracy(model, held, val_y, device)


def fit_steps(
    model: SmallCNN,
    loss: Callable[[Tensor], Tensor],
    *,
    n: int,
    epochs: int,
    batch_size: int,
    lr: float,
    gen: torch.Generator,
    device: torch.device,
    max_steps: int | None,
    max_seconds: float | None,
    what: str,
    progress: bool,
) -> int:
    """The training loop the feature networks share; returns the steps taken (also stored as
    ``model.trained_steps``).

    Each epoch visits ``n`` examples in an order drawn from ``gen``, ``batch_size`` at a time
    (a last batch of one is skipped: BatchNorm cannot normalise it); ``loss(indices)`` gives the
    batch's loss. Adam at ``lr`` with a cosine decay over ``epochs`` epochs or ``max_steps``
    steps, whichever is fewer, lowered by :class:`StepBudget` to fit ``max_seconds``; a
    :class:`StepLine` named ``what`` when ``progress``. A pending stop signal
    (:func:`gankit.training.stop.check_stop`, polled every batch) raises ``StopRequested``.
    """
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps,
                                                                    epochs * steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    line = StepLine(total, what, progress)
    budget = StepBudget(total, max_seconds)
    step = 0
    while step < total:
        order = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, batch_size):
            check_stop()  # a pending SIGTERM abandons the training (nothing is cached)
            idx = order[start : start + batch_size]
            if idx.numel() < 2:
                continue
            value = loss(idx)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            sched.step()
            step += 1
            if budget.replan(step):
                total = line.total = sched.T_max = budget.total
            line.update(step)
            if step >= total:
                break
    line.close(step)
    model.trained_steps = step
    return step


class StepBudget:
    """A training loop's step count, lowered to end about ``seconds`` after it started.

    :meth:`replan` is called after each step: at step ``PROBE + 1`` and every ``EVERY`` steps
    after, the pace since the first step (which pays for warm-up) projects the steps that fit,
    and the count only ever falls. Under torch.distributed the ranks adopt the lowest count
    (the same on every rank, as their loops must be). ``seconds`` None keeps ``total``.
    """

    PROBE = 20
    EVERY = 100

    def __init__(self, total: int, seconds: float | None) -> None:
        if seconds is not None and not seconds > 0:
            raise GankitError(f"max_seconds={seconds} must be positive (or None).")
        self.total, self.seconds = total, seconds
        self.start = self.first = time.perf_counter()

    def replan(self, step: int) -> bool:
        """True when ``total`` fell at this step."""
        if self.seconds is None:
            return False
        if step == 1:
            self.first = time.perf_counter()
            return False
        if step <= self.PROBE or (step - self.PROBE - 1) % self.EVERY:
            return False
        now = time.perf_counter()
        pace = (now - self.first) / (step - 1)
        fits = step + int(max(0.0, self.seconds - (now - self.start)) / pace)
        fits = min(all_gather_object(fits))
        if fits >= self.total:
            return False
        self.total = max(step, fits)
        return True


class StepLine:
    """``what: step k/N`` on stderr about once a second (a terminal) or every 30 s (a log)."""

    def __init__(self, total: int, what: str, enabled: bool) -> None:
        self.total, self.what, self.enabled = total, what, enabled
        self.start = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, step: int) -> None:
        now = time.perf_counter()
        if self.enabled and now - self.last >= (1.0 if self.tty else 30.0):
            self.last = now
            self._show(step, now)

    def _show(self, step: int, now: float) -> None:
        text = f"{self.what}: step {step}/{self.total} ({now - self.start:.0f} s)"
        print("\r" + text if self.tty else text, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def close(self, step: int) -> None:
        if self.enabled:
            self._show(step, time.perf_counter())
            if self.tty:
                print(file=sys.stderr)


def default_cache_dir() -> Path:
    """Where cached classifiers and statistics go: ``$GANKIT_CACHE``, else ~/.cache/gankit."""
    env = os.environ.get("GANKIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gankit"


def cached_classifier(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    *,
    n_classes: int,
    cache_dir: str | Path | None = None,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 3e-3,
    width: int = 32,
    feature_dim: int = 128,
    max_shift: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
    max_seconds: float | None = None,
    progress: bool = False,
) -> tuple[SmallCNN, float]:
    """:func:`train_classifier`, but trained once per data + recipe and then loaded from disk.

    The cache key is the sha256 of the four tensors (bytes, dtypes, shapes), ``n_classes``, the
    training arguments and ``CLASSIFIER_VERSION``; ``device`` is left out so a CPU-trained
    classifier serves GPU runs too. Files live in ``cache_dir`` (default ``$GANKIT_CACHE`` or
    ``~/.cache/gankit``) and are written to a temporary file then renamed, so a crash never
    leaves a half-written entry. An unreadable entry is ignored with a warning and retrained.
    """
    recipe = {
        "version": CLASSIFIER_VERSION,
        "n_classes": n_classes,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "width": width,
        "feature_dim": feature_dim,
        "max_shift": max_shift,
        "seed": seed,
    }
    if max_steps is not None:  # absent when unbounded, so older cache entries still match
        recipe["max_steps"] = max_steps
    if max_seconds is not None:
        recipe["max_seconds"] = max_seconds
    return cached_smallcnn(
        "classifier", recipe, (train_x, train_y, val_x, val_y),
        lambda: train_classifier(
            train_x, train_y, val_x, val_y, n_classes=n_classes, epochs=epochs,
            batch_size=batch_size, lr=lr, width=width, feature_dim=feature_dim,
            max_shift=max_shift, seed=seed, device=device, max_steps=max_steps,
            max_seconds=max_seconds, progress=progress),
        cache_dir=cache_dir, device=device)


def cached_smallcnn(
    kind: str,
    recipe: dict[str, Any],
    tensors: Sequence[Tensor],
    train: Callable[[], tuple[SmallCNN, float]],
    *,
    cache_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> tuple[SmallCNN, float]:
    """A SmallCNN and its held-out score: loaded from the cache when there, else ``train()``
    and written to it.

    The key is the sha256 of ``recipe`` (JSON) and of ``tensors`` (bytes, dtypes, shapes); the
    file is ``KIND-KEY.pt`` in ``cache_dir`` (default :func:`default_cache_dir`), written to a
    temporary file then renamed, so a crash never leaves a half-written entry. An unreadable
    entry is ignored with a warning and trained again; a failed write only warns.
    """
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for t in tensors:
        hash_tensor(h, torch.as_tensor(t))
    key = h.hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{kind}-{key[:32]}.pt"

    hit = _load_cached(kind, path, key, device)
    # Under torch.distributed every rank takes the same branch, since training polls the stop
    # flag collectively: one rank's hit beside another's miss (an entry written in between)
    # would leave the other's polls unanswered. A hit counts only when every rank hit.
    if any_rank(hit is None):
        hit = None
    if hit is not None:
        return hit

    model, score = train()
    entry = {
        "key": key,
        "config": model.config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "accuracy": score,
        "steps": model.trained_steps,
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(entry, buffer)
        write_atomic(path, buffer.getvalue())
    except OSError as exc:  # the model is trained; losing the cache only costs time later
        warnings.warn(
            f"could not write {kind} cache {path} ({exc!r})", RuntimeWarning, stacklevel=3
        )
    return model, score


def _load_cached(kind: str, path: Path, key: str,
                 device: str | torch.device) -> tuple[SmallCNN, float] | None:
    """The cache entry at ``path`` for ``key``; None when absent or unreadable (warned)."""
    if not path.exists():
        return None
    try:
        # weights_only: the entry holds only tensors and plain values, so no pickle code runs.
        entry = torch.load(path, map_location="cpu", weights_only=True)
        if entry["key"] != key:
            raise GankitError("cache key mismatch")
        # Built under a forked RNG: a cache hit must draw from the global streams no more
        # than a miss does (training forks too), or a run would depend on the cache.
        with torch.random.fork_rng(devices=[]):
            model = SmallCNN(**entry["config"])
        model.load_state_dict(entry["state_dict"])
        model.trained_steps = entry.get("steps")
        return model.to(device).eval(), float(entry["accuracy"])
    except Exception as exc:  # any damage to the file means: train again
        warnings.warn(f"ignoring unreadable {kind} cache {path} ({exc!r}); training again",
                      RuntimeWarning, stacklevel=4)
        return None


def load_feature_net(path: str | Path, *, device: str | torch.device = "cpu") -> FeatureNet:
    """Load a feature network from a TorchScript file or a whole module saved with torch.save.

    TorchScript is tried first; otherwise the file is unpickled with ``weights_only=False``,
    which **executes arbitrary code stored in the file: only load files you trust**. The
    result is a :class:`FeatureNet` in eval mode: it calls the module's ``features`` method
    when there is one, else its forward output flattened to (N, D).
    """
    path = Path(path)
    if not path.is_file():
        raise GankitError(
            f"feature network file {path} does not exist; pass a TorchScript file or a module "
            "saved with torch.save(model)."
        )
    try:
        with warnings.catch_warnings():
            # TorchScript is deprecated in recent torch, but it is the user's chosen format.
            warnings.simplefilter("ignore", DeprecationWarning)
            module: Any = torch.jit.load(str(path), map_location=device)
    except Exception:
        try:
            module = torch.load(path, map_location=device, weights_only=False)
        except Exception as exc:
            raise GankitError(
                f"cannot read feature network {path} ({type(exc).__name__}); save it with "
                "torch.jit.save(torch.jit.script(model), path) or torch.save(model, path)."
            ) from exc
    if not isinstance(module, nn.Module):
        raise GankitError(
            f"feature network file {path} holds a {type(module).__name__}, not a module; save "
            "the whole module (torch.save(model, path)), not its state_dict."
        )
    return FeatureNet(module).to(device).eval()


#: Input elements per batch of feature extraction and evaluation (256 images of 3 x 32 x 32):
#: larger images go in proportionally smaller batches, so activation memory stays bounded.
BATCH_ELEMENTS = 256 * 3 * 32 * 32


def bounded_batch(batch_size: int, sample_shape: Sequence[int]) -> int:
    """``batch_size``, lowered where needed so that a batch holds at most ``BATCH_ELEMENTS``
    input elements (at least one sample): 256 images of 3 x 32 x 32, 64 of 3 x 64 x 64."""
    return max(1, min(batch_size, BATCH_ELEMENTS // max(1, math.prod(sample_shape))))


def extract_features(
    net: Callable[[Tensor], Tensor],
    x: Tensor,
    batch_size: int = 512,
    device: str | torch.device | None = None,
) -> Tensor:
    """Run ``net`` over x in batches under ``torch.no_grad``; return (N, D) on x's device.

    uint8 images are converted to [-1, 1] per batch, on ``device``; half-precision features
    (a network run under autocast) come back as float32.

    ``net`` is a module or a bound method such as ``model.features``; its module is put in
    eval mode for the call and restored afterwards. Batches run on ``device``, by default
    the module's parameter device (x's device when it has none). Large samples go in
    smaller batches (:func:`bounded_batch`).
    """
    if x.shape[0] == 0 or batch_size < 1:
        raise GankitError(
            f"cannot extract features from {x.shape[0]} samples in batches of {batch_size}; "
            "pass at least one sample and a positive batch_size."
        )
    owner = net if isinstance(net, nn.Module) else getattr(net, "__self__", None)
    module = owner if isinstance(owner, nn.Module) else None
    if device is None:
        param = next(module.parameters(), None) if module is not None else None
        device = param.device if param is not None else x.device
    batch_size = bounded_batch(batch_size, x.shape[1:])
    outs = []
    with eval_mode(*([module] if module is not None else [])), torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            check_stop(uneven=True)  # each rank extracts its own share
            out = net(to_unit(x[start : start + batch_size].to(device)))
            if out.dtype in (torch.float16, torch.bfloat16):  # run under autocast: statistics
                out = out.float()  # and caches are float32
            outs.append(out.reshape(out.shape[0], -1).to(x.device))
    return torch.cat(outs)
