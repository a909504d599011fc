"""Terms: the regularisers added to a network's loss in a GAN step, one small class each.

A discriminator or generator objective is a loss plus a list of terms. A term owns its
weight (a number or a :class:`~gankit.training.schedules.Schedule`), its interval (``every``
k steps, lazy regularisation: the term is scaled by k on the steps it runs, and the
optimizer's rate and betas are rescaled once for it), its state (saved in snapshots), its
checks and its reports. :class:`~gankit.gan.updaters.GANUpdater` knows none of them by name:

    GANUpdater(gen, dis, opt_g, opt_d, loader, loss="hinge",
               dis_terms=[R1(0.1, every=16), LeCam(0.01)], gen_terms=[PathLength(2.0)])

A new regulariser is a subclass of :class:`DisTerm` or :class:`GenTerm` that implements
``value`` (and ``state_dict``/``load_state_dict`` if it keeps state), registered with
:func:`register_term` so it can be found by name. See docs/custom_updater.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn

from gankit.data.augment import DiffAugment
from gankit.errors import GankitError
from gankit.gan.penalties import gradient_penalty, path_length_penalty, r1_penalty, r2_penalty
from gankit.gan.regularizers import LeCamAnchors, bcr_penalty
from gankit.training.schedules import Progress, Scheduled, check_scheduled, value_at

__all__ = ["BCR", "GP", "R1", "R2", "TERMS", "DisStep", "DisTerm", "GenStep", "GenTerm",
           "LeCam", "PathLength", "Term", "ZeroCentredPenalty", "register_term"]

#: a discriminator as the terms call it: D(x, labels)
Critic = Callable[[Tensor, "Tensor | None"], Tensor]


@dataclass
class DisStep:
    """What a discriminator term sees of the step.

    ``real``/``fake`` are D's inputs before augmentation (``real`` requires grad when a term
    asked for ``"real_grad"``, ``fake`` for ``"fake_grad"``), ``real_seen``/``fake_seen``
    after it, ``real_out``/``fake_out`` D's outputs on those. ``dis(x, y)`` is the trained
    discriminator, ``augment`` what D's inputs go through.
    """

    real: Tensor
    fake: Tensor
    real_seen: Tensor
    fake_seen: Tensor
    real_out: Tensor
    fake_out: Tensor
    y_real: Tensor | None
    y_fake: Tensor | None
    dis: Critic
    augment: Callable[[Tensor], Tensor]


@dataclass
class GenStep:
    """What a generator term sees: the fakes, their styles ``ws`` (when a term asked for
    ``"ws"``: a style-based generator's forward with ``return_ws=True``), D's outputs on
    them, and D's outputs on reals where the loss pairs them (else None)."""

    fake: Tensor
    ws: Tensor | None
    fake_out: Tensor
    real_out: Tensor | None
    y_fake: Tensor | None


S = TypeVar("S", DisStep, GenStep)


class Term(Generic[S]):
    """One regulariser: ``every * factor * weight * value(step)`` added to a network's loss.

    Args:
        weight: the term's weight, a number >= 0 or a Schedule of one (its value is read at
            the updater's progress on each step it runs).
        every: run on every k-th step of its network only, scaled by k (lazy regularisation);
            the updater rescales that network's Adam rate and betas once for it.

    Class attributes a subclass sets: ``name`` (its registry and report key: reported as
    ``dis/NAME`` or ``gen/NAME``), ``factor`` (a constant beside the weight: R1's 1/2),
    ``needs`` (what the step must prepare: ``"real_grad"``, ``"fake_grad"``, ``"ws"``),
    ``double_backward`` (its gradient is taken through a gradient: such a network is not
    compiled) and ``fp32`` (computed outside autocast: a double backward underflows in half).
    """

    net: ClassVar[str] = ""
    name: ClassVar[str] = ""
    factor: ClassVar[float] = 1.0
    needs: ClassVar[frozenset[str]] = frozenset()
    double_backward: ClassVar[bool] = False
    fp32: ClassVar[bool] = False
    #: the interval a term of this kind runs at unless told (PathLength: 4)
    default_every: ClassVar[int] = 1

    def __init__(self, weight: Scheduled = 1.0, *, every: int | None = None) -> None:
        self.weight = check_scheduled(weight, f"the {self.name} weight")
        every = self.default_every if every is None else every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise GankitError(f"the {self.name} interval must be a whole number of steps >= 1, "
                              f"got {every!r}.")
        self.every = every

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.weight!r}, every={self.every})"

    def runs_at(self, step: int) -> bool:
        """Whether the term runs at step ``step`` of its network (counted from 0)."""
        return step % self.every == 0

    def coefficient(self, progress: Progress) -> float:
        """What the value is multiplied by on a step it runs: factor, weight, interval."""
        coef = self.factor * value_at(self.weight, progress)
        return coef if self.every == 1 else coef * self.every

    def value(self, step: S) -> Tensor:
        """The unweighted term."""
        raise NotImplementedError

    def check(self, gen: nn.Module, dis: nn.Module) -> None:
        """Refuse networks the term cannot work with (GankitError)."""

    def report(self, value: Tensor) -> dict[str, Tensor]:
        """What to log on a step the term ran, keys under the network (``NAME`` -> dis/NAME)."""
        return {self.name: value}

    def state_dict(self) -> dict[str, Any]:
        """State to save in snapshots (empty: none)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class DisTerm(Term[DisStep]):
    """A term of the discriminator's loss: ``value`` takes a :class:`DisStep`."""

    net = "dis"


class GenTerm(Term[GenStep]):
    """A term of the generator's loss: ``value`` takes a :class:`GenStep`."""

    net = "gen"


#: every registered term by name
TERMS: dict[str, type[Term[Any]]] = {}
T = TypeVar("T", bound=type[Term[Any]])


def register_term(cls: T) -> T:
    """Class decorator: make a term findable by its ``name`` in ``TERMS``."""
    if not cls.name or cls.net not in ("dis", "gen"):
        raise GankitError(f"{cls.__name__} needs a name and must subclass DisTerm or GenTerm.")
    if TERMS.get(cls.name, cls) is not cls:
        raise GankitError(f"a term named {cls.name!r} is registered already "
                          f"({TERMS[cls.name].__name__}); choose another name.")
    TERMS[cls.name] = cls
    return cls


# ------------------------------------------------------------------ gradient penalties
class ZeroCentredPenalty(DisTerm):
    """γ/2 · E||∇D(x)||² on D's real (R1) or generated (R2) inputs; ``weight`` is γ."""

    factor = 0.5
    double_backward = fp32 = True


@register_term
class R1(ZeroCentredPenalty):
    """R1 (Mescheder et al. 2018): the gradient at the real inputs before augmentation."""

    name = "r1"
    needs = frozenset({"real_grad"})

    def value(self, step: DisStep) -> Tensor:
        return r1_penalty(step.real_out.float(), step.real)


@register_term
class R2(ZeroCentredPenalty):
    """R2: R1 on the generated inputs."""

    name = "r2"
    needs = frozenset({"fake_grad"})

    def value(self, step: DisStep) -> Tensor:
        return r2_penalty(step.fake_out.float(), step.fake)


@register_term
class GP(DisTerm):
    """WGAN-GP (Gulrajani et al. 2017): λ · E(||∇D(x̂)|| - 1)² at random mixes x̂ of each
    real with its fake (through the augmentation). ``weight`` is λ."""

    name = "gp"
    double_backward = fp32 = True

    def value(self, step: DisStep) -> Tensor:
        dis, augment, y = step.dis, step.augment, step.y_real
        return gradient_penalty(lambda t: dis(augment(t), y), step.real.float(),
                                step.fake.float())


# -------------------------------------------------------------- little-data regularisers
@register_term
class LeCam(DisTerm):
    """LeCam (Tseng et al. 2021): D's outputs held near moving anchors of each other.

    ``decay`` is the anchors' EMA decay; the anchors are the term's state (in snapshots).
    """

    name = "lecam"

    def __init__(self, weight: Scheduled = 1.0, *, every: int | None = None,
                 decay: float = 0.99) -> None:
        super().__init__(weight, every=every)
        self.anchors = LeCamAnchors(decay)

    def value(self, step: DisStep) -> Tensor:
        return self.anchors(step.real_out, step.fake_out)

    def state_dict(self) -> dict[str, Any]:
        return self.anchors.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.anchors.load_state_dict(state)


@register_term
class BCR(DisTerm):
    """Balanced consistency regularisation (Zhao et al. 2021): ||D(x) - D(T(x))||² on the
    reals and on the fakes D saw, T by default DiffAugment's translation."""

    name = "bcr"

    def __init__(self, weight: Scheduled = 1.0, *, every: int | None = None,
                 transform: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__(weight, every=every)
        self.transform = transform or DiffAugment(("translation",))

    def value(self, step: DisStep) -> Tensor:
        dis, t = step.dis, self.transform
        y_real, y_fake = step.y_real, step.y_fake
        return (bcr_penalty(lambda x: dis(x, y_real), step.real_seen, step.real_out, t)
                + bcr_penalty(lambda x: dis(x, y_fake), step.fake_seen, step.fake_out, t))


# ------------------------------------------------------------------------ generator terms
@register_term
class PathLength(GenTerm):
    """StyleGAN2's path-length regulariser (Karras et al. 2020, section 3.2): the image's
    change per unit change of the styles held near its running mean (the term's state).
    Every 4 generator steps by default, as in the paper; needs a style-based generator."""

    name = "pl"
    needs = frozenset({"ws"})
    double_backward = fp32 = True
    default_every = 4

    def __init__(self, weight: Scheduled = 2.0, *, every: int | None = None,
                 decay: float = 0.01) -> None:
        super().__init__(weight, every=every)
        if not (isinstance(decay, (int, float)) and 0 < decay <= 1):
            raise GankitError(f"the path-length decay must be in (0, 1], got {decay!r}.")
        self.decay = float(decay)
        self.mean = torch.zeros(())

    def check(self, gen: nn.Module, dis: nn.Module) -> None:
        if not hasattr(gen, "synthesis"):
            raise GankitError(f"the path-length term needs a style-based generator whose "
                              f"forward takes return_ws=True (StyleGAN2Generator); "
                              f"{type(gen).__name__} is not one, so leave the term out.")

    def value(self, step: GenStep) -> Tensor:
        if step.ws is None:
            raise GankitError("the path-length term needs the generator's styles (ws).")
        if self.mean.device != step.fake.device:
            self.mean = self.mean.to(step.fake.device)
        return path_length_penalty(step.fake, step.ws, self.mean, self.decay)

    def report(self, value: Tensor) -> dict[str, Tensor]:
        return {self.name: value, "pl_mean": self.mean.clone()}

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.mean = state["mean"].clone().to(self.mean.device)
