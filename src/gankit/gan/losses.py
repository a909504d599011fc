"""GAN objectives as pure functions of discriminator outputs.

Every function takes raw logits (or critic values for "wgan"), of any shape, and reduces by
the mean. Sigmoid-based losses are written with ``softplus`` because ``log(sigmoid(x))``
underflows to ``-inf`` for large negative logits, while ``-softplus(-x)`` is the same value
computed stably.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError

__all__ = ["LOSSES", "GANLoss", "get_loss"]


@dataclass(frozen=True)
class GANLoss:
    """A named pair of objectives, both to be minimised.

    ``dis(real_out, fake_out)`` is the discriminator's loss, ``gen(fake_out)`` the
    generator's. Both return a scalar tensor.
    """

    name: str
    dis: Callable[[Tensor, Tensor], Tensor]
    gen: Callable[[Tensor], Tensor]


# Non-saturating (DCGAN): D minimises -log D(x) - log(1 - D(G(z))), G minimises -log D(G(z)).
# With D = sigmoid(l): -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).
def _ns_dis(real_out: Tensor, fake_out: Tensor) -> Tensor:
    return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()


def _ns_gen(fake_out: Tensor) -> Tensor:
    return F.softplus(-fake_out).mean()


# The original minimax game: G minimises log(1 - D(G(z))) = -softplus(l). Its gradient
# vanishes when D confidently rejects fakes, which is why "ns" is the usual default.
def _minimax_gen(fake_out: Tensor) -> Tensor:
    return -F.softplus(fake_out).mean()


def _hinge_dis(real_out: Tensor, fake_out: Tensor) -> Tensor:
    return F.relu(1.0 - real_out).mean() + F.relu(1.0 + fake_out).mean()


def _critic_gen(fake_out: Tensor) -> Tensor:
    # Shared by hinge and WGAN: G raises the critic's score of its samples.
    return -fake_out.mean()


def _wgan_dis(real_out: Tensor, fake_out: Tensor) -> Tensor:
    # Needs a Lipschitz constraint (gradient penalty or spectral norm) to be meaningful.
    return fake_out.mean() - real_out.mean()


# Least squares (Mao et al. 2017) with targets a=0 (fake), b=1 (real), c=1 (G's aim).
def _lsgan_dis(real_out: Tensor, fake_out: Tensor) -> Tensor:
    return 0.5 * ((real_out - 1.0).pow(2).mean() + fake_out.pow(2).mean())


def _lsgan_gen(fake_out: Tensor) -> Tensor:
    return 0.5 * (fake_out - 1.0).pow(2).mean()


LOSSES: dict[str, GANLoss] = {
    loss.name: loss
    for loss in (
        GANLoss("ns", _ns_dis, _ns_gen),
        GANLoss("minimax", _ns_dis, _minimax_gen),
        GANLoss("hinge", _hinge_dis, _critic_gen),
        GANLoss("wgan", _wgan_dis, _critic_gen),
        GANLoss("lsgan", _lsgan_dis, _lsgan_gen),
    )
}


def get_loss(name: str) -> GANLoss:
    """Return the loss registered as ``name`` (one of the keys of ``LOSSES``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise GankitError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}") from None
