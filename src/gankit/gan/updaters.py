"""GANUpdater: one discriminator step per batch, one generator step every ``n_dis`` batches.

Correct by construction, unlike the article's updater:
- the discriminator sees fakes made under ``no_grad`` (the article fed it zeros), so its
  step builds no graph through the generator;
- the generator step backpropagates into the generator's parameters only, through the
  discriminator's raw module, so no discriminator parameter or gradient changes (and a DDP
  discriminator does not wait for a gradient sync that never comes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from gankit.data.augment import Augment, get_augment
from gankit.errors import GankitError
from gankit.gan.losses import Loss, get_loss
from gankit.gan.penalties import lazy_regularization
from gankit.gan.terms import DisStep, DisTerm, GenStep, GenTerm, S, Term
from gankit.training.reporter import report
from gankit.training.updater import Updater

#: where gankit before terms kept a term's state in the updater's snapshot: the old key, the
#: term's key, and the conversion to the term's state
_LEGACY_STATE: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "lecam": ("dis/lecam", dict),
    "path_length_mean": ("gen/pl", lambda mean: {"mean": mean}),
}


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``x`` or ``(x, y)`` -> ``(x, y or None)``."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


class GANUpdater(Updater):
    """Trains ``gen`` against ``dis``: a loss plus a list of terms for each network.

    Args:
        gen, dis: the networks; ``gen.sample_z(n, device)`` draws noise, and both take
            labels ``y`` when ``gen.n_classes > 0`` (class-conditional training).
        loss: a :class:`~gankit.gan.losses.Loss` or its name (``ns``, ``minimax``, ``hinge``,
            ``wgan``, ``lsgan``, ``rpgan``).
        n_dis: discriminator steps per generator step (one batch each).
        dis_terms, gen_terms: the regularisers of each network's loss
            (:mod:`gankit.gan.terms`: ``R1``, ``R2``, ``GP``, ``LeCam``, ``BCR``,
            ``PathLength``, or your own), at most one of each name per network. A term with
            ``every=k > 1`` runs lazily; the updater then rescales that network's optimizer
            once, here (``lazy_regularization``: do not rescale it yourself as well).
        augment: an ``Augment`` (``DiffAugment``, ``ADA``) or its spec (``"diffaug"``,
            ``"ada:0.6"``): applied to every batch D sees, real and fake, in both steps.
    """

    def __init__(
        self,
        gen: nn.Module,
        dis: nn.Module,
        opt_gen: torch.optim.Optimizer,
        opt_dis: torch.optim.Optimizer,
        loaders: Iterable[Any] | Mapping[str, Iterable[Any]],
        *,
        loss: str | Loss = "ns",
        n_dis: int = 1,
        dis_terms: Sequence[DisTerm] = (),
        gen_terms: Sequence[GenTerm] = (),
        augment: Augment | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__({"gen": gen, "dis": dis}, {"gen": opt_gen, "dis": opt_dis}, loaders,
                         **kwargs)
        if isinstance(n_dis, bool) or not isinstance(n_dis, int) or n_dis < 1:
            raise GankitError(f"n_dis must be a whole number >= 1, got {n_dis!r}.")
        self.loss = get_loss(loss) if isinstance(loss, str) else loss
        self.n_dis = n_dis
        self.n_classes = int(getattr(gen, "n_classes", 0))
        self.augment = get_augment(augment) if isinstance(augment, str) else augment
        self.terms: dict[str, list[Term[Any]]] = {"dis": list(dis_terms), "gen": list(gen_terms)}
        for net, terms in self.terms.items():
            _check_terms(net, terms, gen, dis)
            lazy = sorted({t.every for t in terms if t.every > 1})
            if len(lazy) > 1:
                raise GankitError(f"the {net} terms run at intervals {lazy}; lazy terms of one "
                                  "network must share one interval (the optimizer is rescaled "
                                  "for it).")
            if lazy:
                lazy_regularization(self.optimizers[net], lazy[0])

    @property
    def double_backward_models(self) -> set[str]:
        """The models a term differentiates through a gradient (they cannot be compiled)."""
        return {net for net, terms in self.terms.items() if any(t.double_backward
                                                                 for t in terms)}

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.augment is None else self.augment(x)

    def _fakes(self, n: int, return_ws: bool = False) -> Any:
        sample_z = cast(Callable[..., torch.Tensor], self.raw_models["gen"].sample_z)
        y = torch.randint(self.n_classes, (n,), device=self.device) if self.n_classes else None
        z = sample_z(n, device=self.device)
        gen = self.models["gen"]
        return (*gen(z, y, return_ws=True), y) if return_ws else (gen(z, y), None, y)

    def update_core(self, batch: Any) -> None:
        x, y = split_batch(batch)
        y = y if self.n_classes else None
        observed = self.dis_step(x, y)
        if (self.iteration + 1) % self.n_dis == 0:  # one generator step per n_dis D steps
            observed.update(self.gen_step(x, y))
        report(observed)

    def dis_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """D's loss on reals and on fakes made without a graph, plus each term that runs now;
        returns what to report (nothing when a non-finite step was skipped)."""
        terms = [t for t in self.terms["dis"] if t.runs_at(self.iteration)]
        needs = set().union(*(t.needs for t in terms))
        with torch.no_grad():
            fake, _, y_fake = self._fakes(x.shape[0])
        if "real_grad" in needs:
            x = x.detach().requires_grad_(True)
        if "fake_grad" in needs:
            fake = fake.detach().requires_grad_(True)
        dis, real_seen, fake_seen = self.models["dis"], self._aug(x), self._aug(fake)
        real_out, fake_out = dis(real_seen, y), dis(fake_seen, y_fake)
        loss = self.loss.dis(real_out, fake_out)
        observed = {"dis/loss": loss, "dis/real": real_out.mean(), "dis/fake": fake_out.mean()}
        if self.augment is not None:
            self.augment.observe(real_out)
            observed.update(self.augment.stats())
        step = DisStep(x, fake, real_seen, fake_seen, real_out, fake_out, y, y_fake, dis,
                       self._aug)
        ok = self.step("dis", self._add_terms(loss, terms, step, observed))
        return observed if ok else {}

    def gen_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """G's loss through the frozen discriminator (which also judges the reals when the
        loss pairs them), plus each term that runs now; returns what to report."""
        terms = [t for t in self.terms["gen"] if t.runs_at(self.iteration // self.n_dis)]
        fake, ws, y_fake = self._fakes(x.shape[0], any("ws" in t.needs for t in terms))
        dis = self.frozen("dis")
        fake_out, real_out = dis(self._aug(fake), y_fake), None
        if self.loss.pairs_real:
            with torch.no_grad():
                real_out = dis(self._aug(x.detach()), y)
        loss = self.loss.gen(fake_out, real_out)
        observed = {"gen/loss": loss}
        step = GenStep(fake, ws, fake_out, real_out, y_fake)
        ok = self.step("gen", self._add_terms(loss, terms, step, observed))
        return observed if ok else {}

    def _add_terms(self, loss: torch.Tensor, terms: Sequence[Term[S]], step: S,
                   observed: dict[str, torch.Tensor]) -> torch.Tensor:
        for term in terms:
            if term.fp32:  # a double backward underflows in half precision
                with torch.autocast(self.device.type, enabled=False):
                    value = term.value(step)
            else:
                value = term.value(step)
            loss = loss + term.coefficient(self) * value
            observed.update({f"{term.net}/{k}": v for k, v in term.report(value).items()})
        return loss

    def _all_terms(self) -> list[Term[Any]]:
        return [*self.terms["dis"], *self.terms["gen"]]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        terms = {f"{t.net}/{t.name}": s for t in self._all_terms() if (s := t.state_dict())}
        if terms:
            state["terms"] = terms
        if self.augment is not None:
            state["augment"] = self.augment.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # A run that uses ADA or a term with state must get it back: restarting ADA's p at 0
        # on resume is the bug of stylegan2-ada's peers this class does not repeat.
        saved = dict(state.get("terms", {}))
        for old, (key, convert) in _LEGACY_STATE.items():
            if old in state:
                saved.setdefault(key, convert(state[old]))
        for term in self._all_terms():
            key = f"{term.net}/{term.name}"
            if term.state_dict() and key not in saved:
                raise GankitError(f"the snapshot has no state of the {key} term but this run "
                                 "uses it; resume it with the terms it was trained with.")
        if self.augment is not None and self.augment.state_dict() and "augment" not in state:
            raise GankitError("the snapshot has no augment state but this run uses an adaptive "
                             "augmentation; resume it with the options it was trained with.")
        super().load_state_dict(state)
        for term in self._all_terms():
            key = f"{term.net}/{term.name}"
            if key in saved:
                term.load_state_dict(saved[key])
        if self.augment is not None and "augment" in state:
            self.augment.load_state_dict(state["augment"])


def _check_terms(net: str, terms: list[Term[Any]], gen: nn.Module, dis: nn.Module) -> None:
    kind = DisTerm if net == "dis" else GenTerm
    names: set[str] = set()
    for term in terms:
        if not isinstance(term, kind):
            raise GankitError(f"{term!r} is not a {kind.__name__}; put discriminator terms in "
                              "dis_terms and generator terms in gen_terms.")
        if term.name in names:
            raise GankitError(f"the {net} terms hold {term.name!r} twice; give each once.")
        names.add(term.name)
        term.check(gen, dis)
