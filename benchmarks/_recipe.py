"""One training run of the dcgan recipe as ``gankit train`` builds it, for the benchmarks
that train and score many runs in their own processes (``modes.py``, ``stackedmnist.py``).

Imported by those jobs inside the child process, so each child imports torch and gankit in
its own clock.
"""

from __future__ import annotations

from typing import Any


def recipe_trainer(spec: str, train: Any, seed: int, values: dict[str, Any],
                   out: str) -> tuple[Any, Any, Any]:
    """(recipe, trainer, config) for data ``spec`` (loaded: ``train``) and ``seed``: the
    recipe's defaults for the data updated by ``values``, validated, the networks seeded as
    ``gankit train`` seeds them, the EMA and learning-rate schedule extensions it adds,
    writing under ``out``."""
    from gankit.cli.config import TrainConfig
    from gankit.cli.recipes import lr_schedule
    from gankit.cli.recipes.dcgan import DCGANRecipe
    from gankit.cli.runs import seed_everything
    from gankit.extensions.ema import EMA
    from gankit.training import Trainer

    rec = DCGANRecipe()
    merged = rec.defaults(train)
    merged.update(values)
    cfg = TrainConfig(data=spec, seed=seed, device="cpu").merged(merged)
    cfg.validate()
    seed_everything(seed)
    updater = rec.build(cfg, train)
    trainer = Trainer(updater, cfg.stop_trigger(), out)
    if cfg.model.ema:
        trainer.extend(EMA(updater.raw_models["gen"], cfg.model.ema))
    for ext in lr_schedule(cfg, updater):  # as gankit train applies it
        trainer.extend(ext)
    return rec, trainer, cfg
