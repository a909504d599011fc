"""CycleGAN (Zhu et al. 2017): two generators, two discriminators, unpaired data.

``gen_ab`` (G in the paper) maps domain A to B and ``gen_ba`` (F) maps B to A. Each is
trained to fool the other domain's discriminator (least-squares GAN loss, as in the paper),
to undo the other (cycle loss ``|F(G(a)) - a| + |G(F(b)) - b|``, weight λ = 10) and to leave
images already in its output domain alone (identity loss, weight 0.5·λ). The discriminators
see fakes drawn from a history of the last 50 generated images (Shrivastava et al. 2017), as in
the paper, which keeps them from chasing the generators' latest output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.gan.losses import SEPARABLE_LOSSES
from gankit.models.translator import ResnetTranslator
from gankit.training.distributed import all_gather_object, is_distributed, own_entry
from gankit.training.eval_mode import eval_mode
from gankit.training.evaluator import Evaluator
from gankit.training.reporter import report
from gankit.training.triggers import TriggerLike
from gankit.training.updater import Updater

__all__ = ["CycleEvaluator", "CycleGANUpdater", "HistoryBuffer", "ResnetTranslator",
           "cycle_losses", "translate"]


_LSGAN = SEPARABLE_LOSSES["lsgan"]


def _lsgan_gen(out: Tensor) -> Tensor:
    # The paper's generator term (D(G(a)) - 1)^2: twice gankit's "lsgan" generator loss (which
    # has a factor 1/2), so that λ = 10 weighs the cycle loss against it as in the paper.
    return 2.0 * _LSGAN.gen(out)


# The paper's discriminator term is gankit's "lsgan" as it is: halved, which "slows down the
# rate at which D learns relative to G".
_lsgan_dis = _LSGAN.dis


class HistoryBuffer:
    """The last ``size`` generated images, from which the discriminator's fakes are drawn.

    Until it is full, every image goes in and comes back out unchanged. Then each image of a
    batch, with probability 1/2, is swapped for a stored one chosen at random (which leaves
    the buffer and is returned) and otherwise returned itself. The draws use torch's global
    generator, which snapshots save; the contents are in ``state_dict``, so a resumed run
    draws the same fakes. Works on the images' device without a host sync.
    """

    def __init__(self, size: int = 50) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise GankitError(f"size={size!r} must be a positive number of images.")
        self.size = size
        self.count = 0
        self.images: Tensor | None = None

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def __call__(self, fakes: Tensor) -> Tensor:
        """A batch of the same shape as ``fakes`` (detached), mixed with the history."""
        fakes = fakes.detach()
        if self.images is None:
            self.images = fakes.new_empty((self.size, *fakes.shape[1:]))
        elif self.images.device != fakes.device or self.images.dtype != fakes.dtype:
            self.images = self.images.to(fakes.device, fakes.dtype)
        stored = self.images
        outs = []
        start = 0
        if self.count < self.size:  # filling: store the first ones and return them as they are
            k = min(self.size - self.count, len(fakes))
            stored[self.count:self.count + k] = fakes[:k]
            self.count += k
            outs.append(fakes[:k])
            start = k
        # Full: at most `size` images at a time, to distinct slots, so the writes never collide
        # (a duplicate index would make the result depend on write order).
        for i in range(start, len(fakes), self.size):
            new = fakes[i:i + self.size]
            slots = torch.randperm(self.size)[:len(new)].to(stored.device)
            swap = (torch.rand(len(new)) < 0.5).to(stored.device)
            swap = swap.view(-1, *([1] * (new.dim() - 1)))
            old = stored[slots]
            outs.append(torch.where(swap, old, new))
            stored[slots] = torch.where(swap, new, old)
        return torch.cat(outs)

    def state_dict(self) -> dict[str, Any]:
        images = None if self.images is None else self.images[:self.count].clone()
        return {"size": self.size, "count": self.count, "images": images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["size"] != self.size:
            raise GankitError(f"the snapshot's history holds {state['size']} images, this "
                             f"run's {self.size}.")
        self.count = int(state["count"])
        images = state["images"]
        if images is None:
            self.images = None
        else:
            self.images = images.new_empty((self.size, *images.shape[1:]))
            self.images[:self.count] = images


def cycle_losses(
    gen_ab: nn.Module, gen_ba: nn.Module, a: Tensor, b: Tensor, *, identity: bool = True
) -> dict[str, Tensor]:
    """Translations and the L1 cycle / identity errors of a batch of ``a`` and ``b``.

    Returns ``fake_b = G(a)``, ``fake_a = F(b)``, ``cycle_aba = |F(G(a)) - a|``,
    ``cycle_bab = |G(F(b)) - b|`` and, with ``identity``, ``identity_b = |G(b) - b|`` and
    ``identity_a = |F(a) - a|`` (means over pixels and batch).
    """
    n = a.shape[0]
    if identity:
        # One pass per generator over both domains: instance norm treats every image on its
        # own, so this is the same as two passes, and faster.
        fake_b, same_b = gen_ab(torch.cat([a, b])).split(n)
        fake_a, same_a = gen_ba(torch.cat([b, a])).split(n)
    else:
        fake_b, fake_a = gen_ab(a), gen_ba(b)
    out = {
        "fake_b": fake_b,
        "fake_a": fake_a,
        "cycle_aba": F.l1_loss(gen_ba(fake_b), a),
        "cycle_bab": F.l1_loss(gen_ab(fake_a), b),
    }
    if identity:
        out["identity_b"] = F.l1_loss(same_b, b)
        out["identity_a"] = F.l1_loss(same_a, a)
    return out


class CycleGANUpdater(Updater):
    """Trains ``gen_ab``/``gen_ba`` against ``dis_a``/``dis_b`` on unpaired ``(a, b)`` batches.

    Two optimizers: ``"gen"`` over both generators, ``"dis"`` over both discriminators. The
    generators share one loss (the cycle terms tie them together), so they must step
    together; the discriminators' losses are independent, and one Adam over both nets is the
    same as one Adam each (Adam is per parameter), so two optimizers lose nothing, as in the
    paper's code.

    Args:
        cycle: λ, the weight of the cycle loss (the paper's 10).
        identity: the weight of the identity loss as a fraction of λ (the paper's 0.5);
            0 turns it off and skips its two forward passes.
        history: images in each discriminator's ``HistoryBuffer`` (the paper's 50); 0 shows
            the discriminators only the latest fakes.
    """

    def __init__(
        self,
        gen_ab: nn.Module,
        gen_ba: nn.Module,
        dis_a: nn.Module,
        dis_b: nn.Module,
        opt_gen: torch.optim.Optimizer,
        opt_dis: torch.optim.Optimizer,
        loaders: Iterable[Any] | Mapping[str, Iterable[Any]],
        *,
        cycle: float = 10.0,
        identity: float = 0.5,
        history: int = 50,
        **kwargs: Any,
    ) -> None:
        models = {"gen_ab": gen_ab, "gen_ba": gen_ba, "dis_a": dis_a, "dis_b": dis_b}
        super().__init__(models, {"gen": opt_gen, "dis": opt_dis}, loaders, **kwargs)
        if cycle < 0 or identity < 0:
            raise GankitError(f"cycle={cycle} and identity={identity} must not be negative.")
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise GankitError(f"history={history!r} must be a non-negative number of images.")
        self.cycle = cycle
        self.identity = identity
        self.history = history
        # Fakes of domain A (for dis_a) and of domain B (for dis_b).
        self.history_a = HistoryBuffer(history) if history else None
        self.history_b = HistoryBuffer(history) if history else None

    def update_core(self, batch: Any) -> None:
        a, b = batch
        m = self.models
        # Generators: fool the other domain's discriminator, undo each other, keep their own
        # domain. The discriminators are frozen here: the step backpropagates into the
        # generators only (Updater.step), so no discriminator gradient is made.
        t = cycle_losses(m["gen_ab"], m["gen_ba"], a, b, identity=self.identity > 0)
        adv = (_lsgan_gen(self.frozen("dis_b")(t["fake_b"]))
               + _lsgan_gen(self.frozen("dis_a")(t["fake_a"])))
        cyc = t["cycle_aba"] + t["cycle_bab"]
        loss_gen = adv + self.cycle * cyc
        observed = {"gen/adv": adv, "gen/cycle": cyc}
        if self.identity > 0:
            idt = t["identity_a"] + t["identity_b"]
            loss_gen = loss_gen + self.identity * self.cycle * idt
            observed["gen/identity"] = idt
        self.step("gen", loss_gen)

        # Discriminators, on fakes from the history (or the ones just made): detached, so
        # their step builds no graph through the generators.
        fake_a, fake_b = t["fake_a"].detach(), t["fake_b"].detach()
        if self.history_a is not None and self.history_b is not None:
            fake_a, fake_b = self.history_a(fake_a), self.history_b(fake_b)
        loss_a = _lsgan_dis(m["dis_a"](a), m["dis_a"](fake_a))
        loss_b = _lsgan_dis(m["dis_b"](b), m["dis_b"](fake_b))
        self.step("dis", loss_a + loss_b)
        report({**observed, "gen/loss": loss_gen, "dis/loss": loss_a + loss_b,
                "dis/a": loss_a, "dis/b": loss_b})


    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.history_a is not None and self.history_b is not None:
            own = {"a": self.history_a.state_dict(), "b": self.history_b.state_dict()}
            state["history"] = own
            if is_distributed():
                # Each rank keeps its own fakes: collective (every rank snapshots, as for the
                # RNG streams), so each resumes its own history, not rank 0's.
                state["history_per_rank"] = all_gather_object(
                    {k: {**h, "images": None if h["images"] is None else h["images"].cpu()}
                     for k, h in own.items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if self.history_a is not None and self.history_b is not None:
            if "history" not in state:
                raise GankitError("the snapshot has no history buffers but this run keeps "
                                 f"{self.history} images of history.")
            # A rank the snapshot has no history for (more ranks now) starts from rank 0's.
            history = own_entry(state.get("history_per_rank"), state["history"])
            self.history_a.load_state_dict(history["a"])
            self.history_b.load_state_dict(history["b"])


@torch.no_grad()
def translate(model: nn.Module, x: Tensor, batch_size: int = 500) -> Tensor:
    """``model(x)`` in eval mode (every submodule's mode restored), on ``x``'s device."""
    with eval_mode(model):
        return torch.cat([model(x[i:i + batch_size]).float()
                          for i in range(0, len(x), batch_size)])


class CycleEvaluator(Evaluator):
    """Reports the held-out cycle errors ``val/cycle_aba``, ``val/cycle_bab`` and their mean
    ``val/cycle`` (L1 in [-1, 1] pixel units, as in the training loss).

    ``domains`` is the held-out ``UnpairedDomains``; ``loader`` iterates it in order.
    """

    name = "CycleEvaluator"

    def __init__(self, loader: Iterable[Any], domains: Any, *, prefix: str = "val",
                 trigger: TriggerLike | None = None) -> None:
        super().__init__(loader, eval_fn=self._eval_batch, prefix=prefix, trigger=trigger)
        self.domains = domains

    @staticmethod
    def _eval_batch(models: dict[str, nn.Module], batch: Any) -> None:
        a, b = batch
        t = cycle_losses(models["gen_ab"], models["gen_ba"], a, b, identity=False)
        aba, bab = t["cycle_aba"], t["cycle_bab"]
        report({"cycle_aba": aba, "cycle_bab": bab, "cycle": 0.5 * (aba + bab)})
