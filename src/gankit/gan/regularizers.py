"""Discriminator regularisers for little data: LeCam and balanced consistency (bCR).

The terms :class:`gankit.gan.terms.LeCam` and :class:`gankit.gan.terms.BCR` add them to a
discriminator's loss; they are written here as plain functions plus the small state LeCam
needs, so another updater can use them too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError

__all__ = ["LeCamAnchors", "bcr_penalty", "lecam_penalty"]


def lecam_penalty(real_out: Tensor, fake_out: Tensor, anchor_real: Tensor,
                  anchor_fake: Tensor) -> Tensor:
    """LeCam (Tseng et al. 2021): ``mean(relu(D_real - a_fake)²) + mean(relu(a_real - D_fake)²)``.

    It keeps D's outputs on reals from running away above what it gives fakes (and vice versa),
    measured against slowly moving anchors rather than the current batch. Unweighted.
    """
    return (F.relu(real_out - anchor_fake).pow(2).mean()
            + F.relu(anchor_real - fake_out).pow(2).mean())


class LeCamAnchors:
    """The anchors of LeCam: EMAs (decay 0.99) of D's mean output on reals and on fakes.

    The first update sets the anchors to that batch's means; later ones move them by
    ``1 - decay``. The anchors are tensors on D's device (no host sync), saved by the term
    that owns them.
    """

    def __init__(self, decay: float = 0.99) -> None:
        if not 0 <= decay < 1:
            raise GankitError(f"LeCam decay must be in [0, 1), got {decay!r}.")
        self.decay = decay
        self.anchor_real = torch.tensor(0.0)
        self.anchor_fake = torch.tensor(0.0)
        self.started = False

    def __call__(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """Update the anchors with this batch, then return the (unweighted) penalty."""
        real_mean, fake_mean = real_out.detach().float().mean(), fake_out.detach().float().mean()
        if not self.started:
            self.anchor_real, self.anchor_fake, self.started = real_mean, fake_mean, True
        else:
            d = self.decay
            self.anchor_real = d * self.anchor_real.to(real_mean.device) + (1 - d) * real_mean
            self.anchor_fake = d * self.anchor_fake.to(fake_mean.device) + (1 - d) * fake_mean
        return lecam_penalty(real_out.float(), fake_out.float(), self.anchor_real,
                             self.anchor_fake)

    def state_dict(self) -> dict[str, Any]:
        return {"anchor_real": self.anchor_real.clone(), "anchor_fake": self.anchor_fake.clone(),
                "started": self.started}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.anchor_real = state["anchor_real"].clone()
        self.anchor_fake = state["anchor_fake"].clone()
        self.started = bool(state["started"])


def bcr_penalty(dis: Callable[[Tensor], Tensor], x: Tensor, out: Tensor,
                transform: Callable[[Tensor], Tensor]) -> Tensor:
    """Consistency term of bCR (Zhao et al. 2021): ``mean_i ||D(x_i) - D(T(x_i))||²``.

    ``out`` is ``D(x)``, already computed by the caller; ``x`` is detached, so only D learns
    from it. bCR adds ``λ_real`` times this on reals and ``λ_fake`` times it on fakes.
    """
    other = dis(transform(x.detach()))
    n = out.shape[0]
    return (out.float() - other.float()).reshape(n, -1).pow(2).sum(dim=1).mean()
