"""Fully connected generator and discriminator for low-dimensional data (e.g. 2D toys)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.layers import (
    NoiseSampling,
    apply_spectral_norm,
    check_labels,
    check_positive,
    projection_logits,
)

__all__ = ["MLPDiscriminator", "MLPGenerator"]

_NORMS = ("none", "spectral")


def _hidden_stack(
    in_dim: int, hidden: int, depth: int, act: Callable[[], nn.Module]
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), act()]
    return nn.Sequential(*layers)


class MLPGenerator(NoiseSampling, nn.Module):
    """Maps noise (B, z_dim) to points (B, out_dim) through ``depth`` ReLU hidden layers.

    The output layer is linear (no tanh) because point data is not confined to [-1, 1].
    With ``n_classes > 0`` a learned label embedding (size ``z_dim``) is concatenated to z.
    """

    def __init__(
        self,
        z_dim: int = 2,
        out_dim: int = 2,
        hidden: int = 256,
        depth: int = 3,
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        check_positive(n_classes, z_dim=z_dim, out_dim=out_dim, hidden=hidden, depth=depth)
        self.z_dim, self.n_classes, self.shape = z_dim, n_classes, (out_dim,)
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes > 0 else None
        in_dim = z_dim * (2 if n_classes > 0 else 1)
        self.body = _hidden_stack(in_dim, hidden, depth, lambda: nn.ReLU(inplace=True))
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return cast(Tensor, self.out(self.body(z)))


class MLPDiscriminator(nn.Module):
    """Scores points (B, in_dim) with one raw logit each, shape (B,).

    ``depth`` LeakyReLU(0.2) hidden layers; ``norm="spectral"`` spectral-normalises every
    linear layer. With ``n_classes > 0`` it is a projection discriminator:
    ``out = linear(h) + sum(embed(y) * h)`` with ``h = features(x)``.
    """

    def __init__(
        self,
        in_dim: int = 2,
        hidden: int = 256,
        depth: int = 3,
        n_classes: int = 0,
        norm: str = "none",
    ) -> None:
        super().__init__()
        if norm not in _NORMS:
            raise GankitError(f"unknown norm {norm!r}; choose one of: {', '.join(_NORMS)}")
        check_positive(n_classes, in_dim=in_dim, hidden=hidden, depth=depth)
        self.n_classes, self.shape, self.norm = n_classes, (in_dim,), norm
        self.body = _hidden_stack(in_dim, hidden, depth, lambda: nn.LeakyReLU(0.2, inplace=True))
        self.feature_dim = hidden
        self.head = nn.Linear(hidden, 1)
        self.embed = nn.Embedding(n_classes, hidden) if n_classes > 0 else None
        if self.embed is not None:
            # Default N(0, 1) embeddings would swamp the linear head at initialisation.
            nn.init.normal_(self.embed.weight, 0.0, hidden**-0.5)
        if norm == "spectral":
            apply_spectral_norm(self)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer's activations, shape (B, hidden)."""
        return cast(Tensor, self.body(x))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.n_classes, type(self).__name__)
        return projection_logits(self.head, self.embed, self.features(x), y)
