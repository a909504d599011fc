"""Layer helpers shared by the networks: normalisations and spectral norm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["NORMS", "apply_spectral_norm"]

#: discriminator normalisations (``--norm``)
NORMS = ("batch", "none", "spectral", "layer")

_SN_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral-normalise, in place, the weight of every Linear and Conv layer in ``module``.

    Returns ``module``. Layers that already carry a weight parametrization are left alone,
    so calling this twice is harmless.
    """
    # Collect first: registering a parametrization while iterating modules() would visit
    # the new ParametrizationList children too.
    targets = [
        m
        for m in module.modules()
        if isinstance(m, _SN_TYPES) and not _is_parametrized(m, "weight")
    ]
    for m in targets:
        spectral_norm(m)
    return module


def _is_parametrized(m: nn.Module, name: str) -> bool:
    return torch.nn.utils.parametrize.is_parametrized(m, name)
