"""GANUpdater: one discriminator step per batch, one generator step every ``n_dis`` batches.

Correct by construction, unlike the article's updater:
- the discriminator sees fakes made under ``no_grad`` (the article fed it zeros), so its
  step builds no graph through the generator;
- the generator step backpropagates into the generator's parameters only, through the
  discriminator's raw module, so no discriminator parameter or gradient changes (and a DDP
  discriminator does not wait for a gradient sync that never comes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import torch
from torch import nn

from gankit.gan.augment import Augment, DiffAugment, get_augment
from gankit.gan.losses import get_loss
from gankit.gan.penalties import (
    PENALTIES,
    gradient_penalty,
    path_length_penalty,
    r1_penalty,
    r2_penalty,
)
from gankit.gan.regularizers import LeCam, bcr_penalty
from gankit.training.reporter import report
from gankit.training.updater import Updater


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``x`` or ``(x, y)`` -> ``(x, y or None)``."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


class GANUpdater(Updater):
    """Trains ``gen`` against ``dis`` with a loss from ``gankit.gan.losses``.

    Args:
        gen, dis: the networks; ``gen.sample_z(n, device)`` draws noise, and both take
            labels ``y`` when ``gen.n_classes > 0`` (class-conditional training).
        loss: ``ns``, ``minimax``, ``hinge``, ``wgan`` or ``lsgan``.
        n_dis: discriminator steps per generator step (one batch each).
        penalty: ``r1`` / ``r2`` (zero-centred, on real / fake), ``gp`` (WGAN-GP) or ``none``.
        penalty_weight: γ for R1/R2 (the penalty added is γ/2·R), λ for GP.
        penalty_every: apply the penalty every k discriminator steps, scaled by k (lazy
            regularisation), which saves the double backward on the other steps.
        augment: an ``Augment`` (``DiffAugment``, ``ADA``) or its spec (``"diffaug"``,
            ``"ada:0.6"``): applied to every batch D sees, real and fake, in both steps.
        lecam: weight of the LeCam regulariser (0: off); its anchors are saved in snapshots.
        bcr: λ of balanced consistency regularisation on reals and on fakes (0: off),
            consistency under ``bcr_transform`` (default: DiffAugment's translation).
        path_length_weight: StyleGAN2's path-length regulariser on the generator (0: off;
            the paper uses 2). It needs a generator whose forward takes ``return_ws=True``
            (``StyleGAN2Generator``). Its running mean is updater state, saved in snapshots.
        path_length_every, path_length_decay: applied every k generator steps (scaled by
            k, 4 in the paper), and the running mean's decay (0.01).

    For lazy regularisation rescale the optimizers' lr and betas once when building them:
    ``gankit.gan.lazy_regularization(opt, every)`` (Karras et al. 2020, appendix B).
    """

    def __init__(
        self,
        gen: nn.Module,
        dis: nn.Module,
        opt_gen: torch.optim.Optimizer,
        opt_dis: torch.optim.Optimizer,
        loaders: Iterable[Any] | Mapping[str, Iterable[Any]],
        *,
        loss: str = "ns",
        n_dis: int = 1,
        penalty: str = "none",
        penalty_weight: float = 10.0,
        penalty_every: int = 1,
        augment: Augment | str | None = None,
        lecam: float = 0.0,
        bcr: float = 0.0,
        bcr_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        path_length_weight: float = 0.0,
        path_length_every: int = 4,
        path_length_decay: float = 0.01,
        **kwargs: Any,
    ) -> None:
        super().__init__({"gen": gen, "dis": dis}, {"gen": opt_gen, "dis": opt_dis}, loaders,
                         **kwargs)
        if penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {', '.join(PENALTIES)}, got {penalty!r}.")
        if n_dis < 1 or penalty_every < 1:
            raise ValueError("n_dis and penalty_every must be at least 1.")
        self.loss = get_loss(loss)
        self.n_dis = n_dis
        self.penalty = penalty
        self.penalty_weight = penalty_weight
        self.penalty_every = penalty_every
        self.n_classes = int(getattr(gen, "n_classes", 0))
        if path_length_weight < 0 or path_length_every < 1 or not 0 < path_length_decay <= 1:
            raise ValueError(
                "path_length_weight must be >= 0, path_length_every >= 1 and "
                f"path_length_decay in (0, 1]; got {path_length_weight}, "
                f"{path_length_every}, {path_length_decay}."
            )
        if path_length_weight > 0 and not hasattr(gen, "synthesis"):
            raise ValueError(
                f"path_length_weight={path_length_weight} needs a style-based generator "
                "whose forward takes return_ws=True (StyleGAN2Generator); "
                f"{type(gen).__name__} is not one, so set path_length_weight=0."
            )
        self.path_length_weight = path_length_weight
        self.path_length_every = path_length_every
        self.path_length_decay = path_length_decay
        # The running mean of path lengths: state of the regulariser, saved in snapshots.
        self.path_length_mean = torch.zeros((), device=self.device)
        if lecam < 0 or bcr < 0:
            raise ValueError(f"lecam and bcr weights must be non-negative, got {lecam}, {bcr}.")
        self.augment = get_augment(augment) if isinstance(augment, str) else augment
        self.lecam_weight, self.bcr_weight = lecam, bcr
        self.lecam = LeCam() if lecam else None
        self.bcr_transform = bcr_transform or DiffAugment(("translation",))

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.augment is None else self.augment(x)

    def _z(self, n: int) -> torch.Tensor:
        sample_z = cast(Callable[..., torch.Tensor], self.raw_models["gen"].sample_z)
        return sample_z(n, device=self.device)

    def _fake_labels(self, n: int) -> torch.Tensor | None:
        if not self.n_classes:
            return None
        return torch.randint(self.n_classes, (n,), device=self.device)

    def update_core(self, batch: Any) -> None:
        x, y = split_batch(batch)
        if not self.n_classes:
            y = None
        gen, dis = self.models["gen"], self.models["dis"]
        n = x.shape[0]
        d_step = self.iteration  # one discriminator step per iteration

        # Discriminator step.
        y_fake = self._fake_labels(n)
        with torch.no_grad():
            fake = gen(self._z(n), y_fake)
        apply_penalty = self.penalty != "none" and d_step % self.penalty_every == 0
        if apply_penalty and self.penalty == "r1":
            x = x.detach().requires_grad_(True)
        if apply_penalty and self.penalty == "r2":
            fake = fake.detach().requires_grad_(True)
        real_seen, fake_seen = self._aug(x), self._aug(fake)
        real_out = dis(real_seen, y)
        fake_out = dis(fake_seen, y_fake)
        loss_dis = self.loss.dis(real_out, fake_out)
        observed = {"dis/loss": loss_dis, "dis/real": real_out.mean(), "dis/fake": fake_out.mean()}
        if self.augment is not None:
            self.augment.observe(real_out)
            observed.update(self.augment.stats())
        if self.lecam is not None:
            value = self.lecam(real_out, fake_out)
            loss_dis = loss_dis + self.lecam_weight * value
            observed["dis/lecam"] = value
        if self.bcr_weight:
            value = (bcr_penalty(lambda t: dis(t, y), real_seen, real_out, self.bcr_transform)
                     + bcr_penalty(lambda t: dis(t, y_fake), fake_seen, fake_out,
                                   self.bcr_transform))
            loss_dis = loss_dis + self.bcr_weight * value
            observed["dis/bcr"] = value
        if apply_penalty:
            # Penalties are computed in fp32: their double backward underflows in half.
            with torch.autocast(self.device.type, enabled=False):
                if self.penalty == "r1":
                    value = r1_penalty(real_out.float(), x)
                    term = 0.5 * self.penalty_weight * value
                elif self.penalty == "r2":
                    value = r2_penalty(fake_out.float(), fake)
                    term = 0.5 * self.penalty_weight * value
                else:
                    value = gradient_penalty(lambda t: dis(self._aug(t), y), x.float(),
                                             fake.float())
                    term = self.penalty_weight * value
            loss_dis = loss_dis + self.penalty_every * term
            observed[f"dis/{self.penalty}"] = value
        if not self.step("dis", loss_dis):
            observed = {}  # a skipped non-finite step: keep NaN out of the log

        # Generator step, every n_dis discriminator steps.
        if (d_step + 1) % self.n_dis == 0:
            y_fake = self._fake_labels(n)
            g_step = d_step // self.n_dis
            apply_pl = self.path_length_weight > 0 and g_step % self.path_length_every == 0
            if apply_pl:
                # One forward serves both terms (a DDP generator allows one per backward).
                fake, ws = gen(self._z(n), y_fake, return_ws=True)
            else:
                fake = gen(self._z(n), y_fake)
            loss_gen = self.loss.gen(self.frozen("dis")(self._aug(fake), y_fake))
            total = loss_gen
            if apply_pl:
                with torch.autocast(self.device.type, enabled=False):
                    value = path_length_penalty(fake, ws, self.path_length_mean,
                                                self.path_length_decay)
                total = loss_gen + self.path_length_every * self.path_length_weight * value
            if self.step("gen", total):
                observed["gen/loss"] = loss_gen
                if apply_pl:
                    observed["gen/pl"] = value
                    observed["gen/pl_mean"] = self.path_length_mean.clone()
        report(observed)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.path_length_weight > 0:
            state["path_length_mean"] = self.path_length_mean.clone()
        if self.augment is not None:
            state["augment"] = self.augment.state_dict()
        if self.lecam is not None:
            state["lecam"] = self.lecam.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # A run that uses ADA, LeCam or the path-length regulariser must get their state back:
        # restarting ADA's p at 0 on resume is the bug of stylegan2-ada's peers this class does
        # not repeat.
        if self.path_length_weight > 0 and "path_length_mean" not in state:
            raise ValueError(
                "the snapshot has no path-length mean but this run uses "
                "path_length_weight > 0; resume it with path_length_weight=0."
            )
        for key, part in (("augment", self.augment), ("lecam", self.lecam)):
            if part is not None and part.state_dict() and key not in state:
                raise ValueError(f"the snapshot has no {key} state but this run uses {key}; "
                                 "resume it with the options it was trained with.")
        super().load_state_dict(state)
        if self.path_length_weight > 0:
            self.path_length_mean.copy_(state["path_length_mean"])
        if self.augment is not None and "augment" in state:
            self.augment.load_state_dict(state["augment"])
        if self.lecam is not None:
            self.lecam.load_state_dict(state["lecam"])
