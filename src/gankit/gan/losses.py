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

__all__ = ["LOSSES", "SEPARABLE_LOSSES", "GANLoss", "Loss", "RelativisticLoss", "get_loss"]


class Loss:
    """A named GAN objective: the discriminator's and the generator's loss, to be minimised.

    ``gen(fake_out, real_out)`` sees the discriminator's outputs on reals too, for losses
    that pair real and fake samples (relativistic ones); the others ignore it and
    ``pairs_real`` is False, so an updater need not compute D(real) in the generator step.
    Each returns a scalar tensor.
    """

    name: str
    #: whether ``gen`` needs the discriminator's outputs on reals
    pairs_real: bool = False

    def dis(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def gen(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class GANLoss(Loss):
    """A loss whose parts are each a function of one kind of output.

    The discriminator's loss is a sum of a term on real outputs and a term on fake ones, so a
    method with more than one kind of fake (VAE-GAN's reconstructions and prior samples) adds
    ``dis_fake`` terms instead of writing its own loss. The generator's is ``gen_fake``.
    """

    name: str
    dis_real: Callable[[Tensor], Tensor]
    dis_fake: Callable[[Tensor], Tensor]
    gen_fake: Callable[[Tensor], Tensor]

    def dis(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """``dis_real(real_out) + dis_fake(fake_out)``."""
        return self.dis_real(real_out) + self.dis_fake(fake_out)

    def gen(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        """``gen_fake(fake_out)``; ``real_out`` is not needed."""
        return self.gen_fake(fake_out)


class RelativisticLoss(Loss):
    """The relativistic pairing loss (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024).

    Over pairs of a real and a fake output, D minimises ``f(D(fake) - D(real))`` and G
    minimises ``f(D(real) - D(fake))`` with ``f = softplus``: each judges a fake against a
    real rather than alone. The pairs are the batches' rows in order, so both batches must
    have the same shape.
    """

    name = "rpgan"
    pairs_real = True

    def dis(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.softplus(fake_out - _paired(real_out, fake_out)).mean()

    def gen(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        if real_out is None:
            raise GankitError("the relativistic loss pairs each fake with a real output; "
                              "pass the discriminator's outputs on reals too.")
        return F.softplus(_paired(real_out, fake_out) - fake_out).mean()


def _paired(real_out: Tensor, fake_out: Tensor) -> Tensor:
    if real_out.shape != fake_out.shape:
        raise GankitError(f"the relativistic loss pairs real and fake outputs one to one, but "
                          f"their shapes differ ({tuple(real_out.shape)} and "
                          f"{tuple(fake_out.shape)}); use batches of one size.")
    return real_out


# Non-saturating (DCGAN): D minimises -log D(x) - log(1 - D(G(z))), G minimises -log D(G(z)).
# With D = sigmoid(l): -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).
def _softplus_neg(out: Tensor) -> Tensor:
    return F.softplus(-out).mean()


def _softplus(out: Tensor) -> Tensor:
    return F.softplus(out).mean()


# The original minimax game: G minimises log(1 - D(G(z))) = -softplus(l). Its gradient
# vanishes when D confidently rejects fakes, which is why "ns" is the usual default.
def _minimax_gen(fake_out: Tensor) -> Tensor:
    return -F.softplus(fake_out).mean()


def _hinge_real(real_out: Tensor) -> Tensor:
    return F.relu(1.0 - real_out).mean()


def _hinge_fake(fake_out: Tensor) -> Tensor:
    return F.relu(1.0 + fake_out).mean()


# WGAN's critic (and hinge's generator): scores go up for reals, down for fakes. Needs a
# Lipschitz constraint (gradient penalty or spectral norm) to be meaningful.
def _neg_mean(out: Tensor) -> Tensor:
    return -out.mean()


def _mean(out: Tensor) -> Tensor:
    return out.mean()


# Least squares (Mao et al. 2017) with targets a=0 (fake), b=1 (real), c=1 (G's aim).
def _lsgan_to_one(out: Tensor) -> Tensor:
    return 0.5 * (out - 1.0).pow(2).mean()


def _lsgan_to_zero(out: Tensor) -> Tensor:
    return 0.5 * out.pow(2).mean()


#: the losses whose parts each see one kind of output (what VAE-GAN and CycleGAN build on)
SEPARABLE_LOSSES: dict[str, GANLoss] = {
    loss.name: loss
    for loss in (
        GANLoss("ns", _softplus_neg, _softplus, _softplus_neg),
        GANLoss("minimax", _softplus_neg, _softplus, _minimax_gen),
        GANLoss("hinge", _hinge_real, _hinge_fake, _neg_mean),
        GANLoss("wgan", _neg_mean, _mean, _neg_mean),
        GANLoss("lsgan", _lsgan_to_one, _lsgan_to_zero, _lsgan_to_one),
    )
}
#: every loss by name (``GANUpdater(loss=NAME)``, ``--loss NAME``)
LOSSES: dict[str, Loss] = {**SEPARABLE_LOSSES, RelativisticLoss.name: RelativisticLoss()}


def get_loss(name: str) -> Loss:
    """Return the loss registered as ``name`` (one of the keys of ``LOSSES``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise GankitError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}") from None
