"""The command line's regularisers: one table that the flags, their checks and the terms of
a run all come from.

A term with a weight of its own (``--lecam 0.3``) is a row of ``TERM_OPTIONS``; the gradient
penalties share ``--penalty NAME`` with ``--penalty-weight`` and ``--penalty-every``
(``PENALTY_TERMS``). A new term reaches the command line by one row here and a field of the
same name in ``TrainConfig`` (a test checks that the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gankit.cli.presets import preset_schedules
from gankit.gan.terms import BCR, GP, R1, R2, DisTerm, GenTerm, LeCam, PathLength, Term

if TYPE_CHECKING:
    from gankit.cli.config import TrainConfig


@dataclass(frozen=True)
class TermOption:
    """A term the command line switches on with a weight: ``--FLAG WEIGHT`` (0: off)."""

    field: str
    term: type[Term[Any]]
    help: str
    #: what it does, for the message that refuses it where it cannot apply
    does: str = ""
    #: it transforms images, so 2-D point data cannot have it
    images_only: bool = False
    #: the ``--arch`` values it works with (None: any)
    archs: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


#: in the order their values join the discriminator's loss (then the penalty's)
TERM_OPTIONS: tuple[TermOption, ...] = (
    TermOption("lecam", LeCam, "LeCam regularisation of D (e.g. 0.3; 0: off)"),
    TermOption("bcr", BCR, "balanced consistency regularisation of D (e.g. 10; 0: off)",
               does="transforms images", images_only=True),
    TermOption("path_length", PathLength, "StyleGAN2's path-length regulariser on G, every 4 G "
               "steps (--arch stylegan2; e.g. 2; 0: off)",
               does="regularises a style-based generator", archs=("stylegan2",)),
)
TERM_FIELDS = tuple(option.field for option in TERM_OPTIONS)

#: ``--penalty NAME``: the gradient penalties it adds, each weighted ``--penalty-weight``
#: (γ for R1 and R2, which add γ/2 each; λ for GP) every ``--penalty-every`` D steps
PENALTY_TERMS: dict[str, tuple[type[DisTerm], ...]] = {
    "none": (), "r1": (R1,), "r2": (R2,), "gp": (GP,), "r1r2": (R1, R2),
}


def term_problem(cfg: TrainConfig, kind: str, data: str) -> str | None:
    """Why a term option of ``cfg`` cannot apply to the ``kind`` data ``data`` with its
    ``--arch``; None when every one can."""
    for option in TERM_OPTIONS:
        if not cfg.get(option.field):
            continue
        if option.images_only and kind == "points":
            return (f"{option.flag} {option.does} and does not apply to the 2-D point data "
                    f"{data!r}; leave it out.")
        if option.archs is not None and cfg.model.arch not in option.archs:
            return (f"{option.flag} {option.does} and does not apply to --arch "
                    f"{cfg.model.arch}; use --arch {' or '.join(option.archs)} or leave it out.")
    return None


def build_terms(cfg: TrainConfig) -> tuple[list[DisTerm], list[GenTerm]]:
    """The discriminator's and the generator's terms that ``cfg`` asks for (the penalty's
    weight on its preset's ramp where it has one)."""
    dis: list[DisTerm] = []
    gen: list[GenTerm] = []
    for option in TERM_OPTIONS:
        weight = cfg.get(option.field)
        if weight:
            term = option.term(weight)
            if isinstance(term, DisTerm):
                dis.append(term)
            elif isinstance(term, GenTerm):
                gen.append(term)
    weight = preset_schedules(cfg).get("penalty_weight", cfg.objective.penalty_weight or 0.0)
    for penalty in PENALTY_TERMS[cfg.objective.penalty or "none"]:
        dis.append(penalty(weight, every=cfg.objective.penalty_every))
    return dis, gen
