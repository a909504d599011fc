"""Reference statistics of real data: cached per protocol, exported and imported as ``.npz``.

The real side of FID is the same at every evaluation of every run on a data set, and with
Inception its features are the slow part, so they are computed once per (samples, split,
feature network weights, n) and kept in ``$GANKIT_CACHE`` (or ``~/.cache/gankit``). The
``.npz`` layout is pytorch-fid's ``--save-stats`` one (``mu``, ``sigma``), so a file written
here scores in pytorch-fid and a published statistics file scores here.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.features import default_cache_dir, extract_features
from gankit.metrics.fid import feature_statistics
from gankit.training.checkpoint import hash_tensor, write_atomic

__all__ = ["ReferenceStats", "load_stats", "reference_stats", "samples_hash", "save_stats"]

STATS_VERSION = "gankit-stats-v1"


@dataclass
class ReferenceStats:
    """Mean (D,) and covariance (D, D) in float64, and the features when they are known.

    ``features`` (N, D) serve KID and precision/recall; statistics imported from a file have
    none. ``n`` is the number of samples (None when a file does not say).
    """

    mu: Tensor
    sigma: Tensor
    features: Tensor | None
    n: int | None

    @classmethod
    def of(cls, features: Tensor) -> ReferenceStats:
        """Statistics of a feature set (N, D)."""
        mu, sigma = feature_statistics(features)
        return cls(mu.cpu(), sigma.cpu(), features, int(features.shape[0]))


def samples_hash(x: Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes: which samples, exactly."""
    h = hashlib.sha256()
    hash_tensor(h, torch.as_tensor(x))
    return h.hexdigest()


def reference_stats(
    x: Tensor,
    features: Callable[[Tensor], Tensor],
    *,
    split: str,
    feature_hash: str | None,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 512,
) -> ReferenceStats:
    """Features and statistics of the real samples ``x``, from the cache when computed before.

    The key is the hash of the samples themselves (so of the data set and of which ``n`` of
    them), ``split``, ``feature_hash`` (the network's weights) and the number of samples;
    ``feature_hash=None`` (a network without a known identity) is never cached. An unreadable
    cache entry is recomputed with a warning.
    """
    if feature_hash is None:
        return ReferenceStats.of(extract_features(features, x, batch_size, device=device).cpu())
    key_fields = {"version": STATS_VERSION, "samples": samples_hash(x), "split": split,
                  "features": feature_hash, "n": int(x.shape[0])}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"stats-{key[:32]}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                if str(f["key"]) != key:
                    raise GankitError("cache key mismatch")
                return ReferenceStats(torch.from_numpy(f["mu"]), torch.from_numpy(f["sigma"]),
                                      torch.from_numpy(f["features"]), int(f["n"]))
        except Exception as exc:  # a damaged entry only costs the recomputation
            warnings.warn(f"ignoring unreadable statistics cache {path} ({exc!r}); recomputing",
                          RuntimeWarning, stacklevel=2)
    stats = ReferenceStats.of(extract_features(features, x, batch_size, device=device).cpu())
    assert stats.features is not None and stats.n is not None  # made from features
    try:
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, mu=stats.mu.numpy(), sigma=stats.sigma.numpy(),
                 features=stats.features.numpy(), n=np.int64(stats.n), key=np.str_(key))
        write_atomic(path, buffer.getvalue())
    except OSError as exc:
        warnings.warn(f"could not write statistics cache {path} ({exc!r})", RuntimeWarning,
                      stacklevel=2)
    return stats


def save_stats(path: str | Path, stats: ReferenceStats,
               protocol: dict[str, Any] | None = None) -> None:
    """Write ``mu`` and ``sigma`` as pytorch-fid's ``--save-stats`` does, plus ``n`` and the
    protocol (as JSON text), which pytorch-fid ignores. Features are not written: a 2048-d
    file of 50k samples would be 400 MB, and FID needs only the statistics."""
    extra: dict[str, Any] = {}
    if stats.n is not None:
        extra["n"] = np.int64(stats.n)
    if protocol is not None:
        extra["protocol"] = np.str_(json.dumps(protocol, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, mu=stats.mu.numpy(), sigma=stats.sigma.numpy(), **extra)
    try:
        write_atomic(Path(path), buffer.getvalue())
    except OSError as exc:
        raise GankitError(f"cannot write statistics file {path} ({exc.strerror or exc}); "
                          "give a writable path.") from None


def load_stats(path: str | Path) -> tuple[ReferenceStats, dict[str, Any] | None]:
    """Read a ``.npz`` with ``mu`` (D,) and ``sigma`` (D, D) (pytorch-fid's layout, or one
    written by :func:`save_stats`); returns the statistics and the stored protocol, if any."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"statistics file {path} does not exist; give a .npz with mu and "
                          "sigma (as pytorch-fid or gankit eval save them).")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "mu" not in f or "sigma" not in f:
                raise GankitError(f"statistics file {path} has {sorted(f.files)}, not mu and "
                                  "sigma; write it with pytorch-fid or gankit eval.")
            mu, sigma = np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
            n = int(f["n"]) if "n" in f else None
            protocol = json.loads(str(f["protocol"])) if "protocol" in f else None
    except GankitError:
        raise
    except Exception as exc:
        raise GankitError(f"cannot read statistics file {path} ({type(exc).__name__}); give a "
                          ".npz with mu and sigma.") from None
    d = mu.shape[0] if mu.ndim == 1 else -1
    if d < 1 or sigma.shape != (d, d) or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise GankitError(f"statistics file {path} has mu {mu.shape} and sigma {sigma.shape}; "
                          "it needs finite mu (D,) and sigma (D, D).")
    return ReferenceStats(torch.from_numpy(mu), torch.from_numpy(sigma), None, n), protocol
