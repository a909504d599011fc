"""VAE-GAN (Larsen et al. 2016): a VAE whose reconstruction error is measured in the
discriminator's feature space, trained jointly with that discriminator.

Three networks and three optimizers on one forward pass:
- the encoder minimises ``L_prior + L_llike`` (KL to N(0, I) plus the feature-space error);
- the decoder (the generator) minimises ``γ·L_llike + L_GAN_dec`` (fool the discriminator on
  reconstructions x̃ and on prior samples x_p, non-saturating form);
- the discriminator minimises the GAN loss on x (real), x̃ and x_p (fake).
The discriminator never sees ``L_llike``: it would learn to shrink its features to zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.gan.losses import SEPARABLE_LOSSES
from gankit.gan.updaters import split_batch
from gankit.models.encoder import ConvEncoder
from gankit.training.eval_mode import eval_mode
from gankit.training.evaluator import Evaluator
from gankit.training.reporter import report
from gankit.training.triggers import TriggerLike
from gankit.training.updater import Updater

__all__ = ["ConvEncoder", "ReconstructionEvaluator", "VAEGANUpdater", "kl_normal",
           "reconstruct", "vaegan_losses"]


_NS = SEPARABLE_LOSSES["ns"]


def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over dimensions, averaged over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


def vaegan_losses(enc: nn.Module, dec: nn.Module, dis: nn.Module, x: Tensor, gamma: float,
                  features: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
    """The three losses of one VAE-GAN step (one forward pass), plus their parts.

    ``dis(x)`` gives logits and ``features(x)`` (default ``dis.features``) the learned
    similarity layer. Returns ``enc``, ``dec``, ``dis`` (the losses), ``kl``, ``llike``,
    ``gan_dec`` and the reconstructions ``x_tilde``.
    """
    if features is None:
        features = cast(Callable[[Tensor], Tensor], dis.features)
    n = x.shape[0]
    mu, logvar = enc(x)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
    z_p = torch.randn_like(mu)
    # One decoder pass for x̃ and x_p together (its BatchNorm normalises them as one batch).
    x_tilde, x_p = dec(torch.cat([z, z_p])).split(n)
    f_x, f_tilde = features(torch.cat([x, x_tilde])).split(n)
    # Gaussian observation model in feature space: -log p = 0.5·||f(x̃) - f(x)||² + const.
    llike = 0.5 * (f_tilde - f_x.detach()).pow(2).sum(dim=1).mean()
    kl = kl_normal(mu, logvar)
    d_x, d_tilde, d_p = dis(torch.cat([x, x_tilde, x_p])).split(n)
    # L_GAN = log D(x) + log(1 - D(x̃)) + log(1 - D(x_p)): the non-saturating loss with two
    # kinds of fakes; the decoder takes its non-saturating generator term on both.
    loss_dis = _NS.dis_real(d_x) + _NS.dis_fake(d_tilde) + _NS.dis_fake(d_p)
    gan_dec = _NS.gen(d_tilde) + _NS.gen(d_p)
    return {"enc": kl + llike, "dec": gamma * llike + gan_dec, "dis": loss_dis, "kl": kl,
            "llike": llike, "gan_dec": gan_dec, "x_tilde": x_tilde}


class VAEGANUpdater(Updater):
    """Trains ``enc``, ``dec`` and ``dis`` with optimizers named ``enc``, ``dec``, ``dis``.

    All three losses come from one forward pass, so they are stepped with ``step_all``: each
    backpropagates into its own optimizer's parameters only, and no optimizer steps before
    every backward is done. ``enc(x)`` returns ``(mu, logvar)``; ``dec`` maps (B, z_dim) codes
    to images, like ``DCGANGenerator``; ``dis`` has ``features(x)`` besides its logits.

    Args:
        gamma: γ, the weight of the feature-space reconstruction error against the GAN loss
            in the decoder's objective.
    """

    def __init__(
        self,
        enc: nn.Module,
        dec: nn.Module,
        dis: nn.Module,
        opt_enc: torch.optim.Optimizer,
        opt_dec: torch.optim.Optimizer,
        opt_dis: torch.optim.Optimizer,
        loaders: Iterable[Any] | Mapping[str, Iterable[Any]],
        *,
        gamma: float = 1e-2,
        **kwargs: Any,
    ) -> None:
        super().__init__({"enc": enc, "dec": dec, "dis": dis},
                         {"enc": opt_enc, "dec": opt_dec, "dis": opt_dis}, loaders, **kwargs)
        if gamma < 0:
            raise GankitError(f"gamma must not be negative, got {gamma}.")
        self.gamma = gamma

    def update_core(self, batch: Any) -> None:
        x, _ = split_batch(batch)
        m = self.models
        # Features through the frozen discriminator: a DDP or compiled wrapper has no
        # ``features``, and the discriminator never learns from them, so no gradient of its
        # own has to be synchronised for that pass.
        out = vaegan_losses(m["enc"], m["dec"], m["dis"], x, self.gamma,
                            features=cast(Callable[[Tensor], Tensor], self.frozen("dis").features))
        self.step_all({"enc": out["enc"], "dec": out["dec"], "dis": out["dis"]})
        report({"enc/kl": out["kl"], "enc/llike": out["llike"], "dec/loss": out["dec"],
                "dec/gan": out["gan_dec"], "dis/loss": out["dis"]})


@torch.no_grad()
def reconstruct(enc: nn.Module, dec: nn.Module, x: Tensor) -> Tensor:
    """``dec(mu(x))`` in eval mode (previous modes restored): the deterministic reconstruction."""
    with eval_mode(enc, dec):
        return cast(Tensor, dec(enc(x)[0]).float())


class ReconstructionEvaluator(Evaluator):
    """Reports ``val/rec``: the held-out mean squared error of ``dec(mu(x))`` against ``x``
    in [-1, 1] pixel space, and ``val/kl``, the held-out KL term."""

    name = "ReconstructionEvaluator"

    def __init__(self, loader: Iterable[Any], *, prefix: str = "val",
                 trigger: TriggerLike | None = None) -> None:
        super().__init__(loader, eval_fn=self._eval_batch, prefix=prefix, trigger=trigger)

    @staticmethod
    def _eval_batch(models: dict[str, nn.Module], batch: Any) -> None:
        enc, dec = models["enc"], models["dec"]
        x, _ = split_batch(batch)
        mu, logvar = enc(x)
        report({"rec": F.mse_loss(dec(mu).float(), x), "kl": kl_normal(mu, logvar)})
