"""Presets: a paper's recipe as one ``--preset NAME``, its option values and its schedules.

A preset gives option values (below the user's own, above the recipe's defaults) and ramps:
values that follow a schedule over the run (``gankit.training.schedules``), each from a start
value to an end value over ``length_kimg`` thousand real images. The ramps are rebuilt from
the preset's name, which config.json keeps, so a resumed run follows them exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError
from gankit.training.schedules import Ramp, Schedule

if TYPE_CHECKING:
    from gankit.cli.config import TrainConfig

#: what a preset may ramp, and the options each ramp stands for (which the user may not set)
RAMPED = {
    "lr": ("lr_gen", "lr_dis"),
    "penalty_weight": ("penalty_weight",),
    "beta2": ("beta2",),
    "ema_half_life": ("ema",),
    "augment_p": (),
}
#: options that would fight a ramp: (option, the values that do not, why the others do)
_SCHEDULE = "a learning-rate schedule would set the rates the ramp sets"
_LAZY = ("a lazy penalty rescales the optimizer's rate and betas once, and the ramp would "
         "overwrite that rescale on every update")
CLASHES: dict[str, tuple[tuple[str, tuple[Any, ...], str], ...]] = {
    "lr": (("lr_decay", (None, "none"), _SCHEDULE), ("lr_warmup", (0,), _SCHEDULE),
           ("penalty_every", (None, 1), _LAZY)),
    "beta2": (("penalty_every", (None, 1), _LAZY),),
}


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    options: Mapping[str, Any]
    ramps: Mapping[str, tuple[float, float]]
    length_kimg: float
    shape: str = "cosine"

    def ramp(self, what: str) -> Ramp | None:
        if what not in self.ramps:
            return None
        start, end = self.ramps[what]
        return Ramp(start, end, self.length_kimg, unit="kimg", shape=self.shape)


# Huang et al. 2024 (R3GAN), the CIFAR-10 configuration ("config E"): the relativistic loss
# with R1 and R2, Adam beta1 0, and five values on one cosine ramp over 20 Mimg.
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("r3gan-cifar10", "Huang et al. 2024, CIFAR-10",
           options=dict(arch="r3gan", loss="rpgan", penalty="r1r2", penalty_every=1, n_dis=1,
                        beta1=0.0, z_dim=64, width=768, batch_size=512, augment="ada:fixed",
                        ema=0.999, lr_gen=2e-4, lr_dis=2e-4, penalty_weight=0.05, beta2=0.9),
           ramps={"lr": (2e-4, 5e-5), "penalty_weight": (0.05, 0.005), "beta2": (0.9, 0.99),
                  "ema_half_life": (0.0, 5000.0), "augment_p": (0.0, 0.55)},
           length_kimg=20_000.0),
)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise GankitError(f"unknown preset {name!r}; choose one of: "
                          f"{', '.join(PRESETS)}.") from None


def with_preset(given: dict[str, Any]) -> dict[str, Any]:
    """The user's options ``given`` (only those given) over their preset's values; refuses an
    option the preset ramps, and one that would fight a ramp (``CLASHES``)."""
    name = given.get("preset")
    if name is None:
        return given
    preset = get_preset(name)
    ramped = sorted({opt for what in preset.ramps for opt in RAMPED[what]} & set(given))
    if ramped:
        raise GankitError(f"--{ramped[0].replace('_', '-')} is ramped by --preset {name}; leave "
                          "it out or train without the preset.")
    for what in preset.ramps:
        for option, harmless, why in CLASHES.get(what, ()):
            if option in given and given[option] not in harmless:
                raise GankitError(
                    f"--{option.replace('_', '-')} {given[option]} does not go with --preset "
                    f"{name}, which ramps {what}: {why}; leave it out or train without the "
                    "preset.")
    return {**preset.options, **given}


def preset_schedules(cfg: TrainConfig) -> dict[str, Schedule]:
    """The ramps of ``cfg``'s preset by what they set (none without a preset)."""
    if cfg.model.preset is None:
        return {}
    preset = get_preset(cfg.model.preset)
    return {what: ramp for what in RAMPED if (ramp := preset.ramp(what)) is not None}
