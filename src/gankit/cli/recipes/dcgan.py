"""The GAN recipe: the ``--arch`` networks (DCGAN by default; MLPs for 2D points), any loss
and penalty."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from gankit.cli.config import METHOD_OPTIONS, filled
from gankit.cli.export import data_description, run_generator
from gankit.cli.presets import preset_schedules
from gankit.cli.recipes.base import Recipe, interval_trigger
from gankit.cli.terms import build_terms, term_problem
from gankit.errors import GankitError
from gankit.extensions.best_model import BestModel
from gankit.extensions.ema import EMA, sampling_model
from gankit.extensions.gan_evaluator import GANEvaluator
from gankit.extensions.sample_grid import SampleGrid, fixed_noise_samples
from gankit.gan.sampling import generate
from gankit.gan.updaters import GANUpdater
from gankit.metrics.scoring import default_n
from gankit.models.archs import get_arch
from gankit.training.schedules import ScheduleHyperparameters
from gankit.training.triggers import MinValueTrigger

if TYPE_CHECKING:
    from torch import nn

    from gankit.cli.config import TrainConfig
    from gankit.data import ArrayDataset
    from gankit.training import Extension, Trainer, Updater

# Found by benchmarks/modes.py (points) and the digits demo (benchmarks/RESULTS.md).
IMAGE_DEFAULTS: dict[str, Any] = dict(
    epochs=200, batch_size=64, loss="ns", penalty="none", penalty_weight=1.0, lr_gen=2e-4,
    lr_dis=2e-4, beta1=0.5, beta2=0.999, n_dis=1, penalty_every=1, z_dim=32, width=32,
    norm="batch", ema=0.999, log_every="1e", sample_every="20e", snapshot_every="20e",
)
# beta1=0 (no momentum) keeps the EMA generator's mode quality rising steadily where 0.5 had
# sudden dips. The samples that miss the modes lie on the bridges the continuous generator draws
# between them; a light R1 (γ 0.1, for the ring's σ 0.01 and the grid's 0.05) with the learning
# rates decayed to 0 over the second half of 60k iterations thins them to >= 97 % high quality
# on every seed of both (benchmarks/modes.py; at 12k with γ 0.3 and no decay: 95-96 %).
POINT_DEFAULTS: dict[str, Any] = dict(
    iterations=60000, batch_size=256, loss="ns", penalty="r1", penalty_weight=0.1, lr_gen=1e-3,
    lr_dis=1e-3, beta1=0.0, beta2=0.999, n_dis=1, penalty_every=1, z_dim=2, width=128,
    norm="none", ema=0.999, lr_decay="linear", lr_decay_start=0.5,
    log_every="250", sample_every="5000", snapshot_every="5000",
)

def build_networks(cfg: TrainConfig, train: ArrayDataset) -> tuple[nn.Module, nn.Module]:
    """The ``--arch`` pair (``gankit.models.archs``) for this data."""
    n_classes = train.n_classes if cfg.model.conditional else 0
    return get_arch(cfg.model.arch).build(train.shape, z_dim=filled(cfg.model.z_dim, "z_dim"),
                                          width=filled(cfg.model.width, "width"),
                                          n_classes=n_classes, norm=cfg.model.norm)


class DCGANRecipe(Recipe):
    name = "dcgan"
    print_keys = ("epoch", "iteration", "gen/loss", "dis/loss", "val/fid", "elapsed_time")
    plot_keys = ("gen/loss", "dis/loss", "val/gen/loss", "val/dis/loss")
    reads = frozenset(METHOD_OPTIONS)

    def defaults(self, train: ArrayDataset, cfg: TrainConfig | None = None) -> dict[str, Any]:
        arch = get_arch(cfg.model.arch if cfg is not None else "dcgan")
        if train.kind == "points":
            if arch.name != "dcgan":
                raise GankitError(f"--arch {arch.name} builds image networks, but {train.name!r} "
                                  "holds 2-D points; leave --arch out (MLPs) for points.")
            return dict(POINT_DEFAULTS)
        # The arch's paper defaults replace gankit's DCGAN ones; the user's options win over both.
        return {**IMAGE_DEFAULTS, **arch.defaults(train.shape)}

    def check(self, cfg: TrainConfig, train: ArrayDataset) -> None:
        super().check(cfg, train)
        if train.kind == "points" and cfg.objective.augment not in (None, "none"):
            raise GankitError(f"--augment transforms images and does not apply to the 2-D "
                              f"point data {train.name!r}; leave it out.")
        problem = term_problem(cfg, train.kind, train.name)
        if problem is not None:
            raise GankitError(problem)

    def make_updater(self, cfg: TrainConfig, train: ArrayDataset) -> GANUpdater:
        gen, dis = build_networks(cfg, train)
        opt_gen = self.adam(cfg, gen.parameters(), filled(cfg.optim.lr_gen, "lr_gen"))
        opt_dis = self.adam(cfg, dis.parameters(), filled(cfg.optim.lr_dis, "lr_dis"))
        # A lazy term rescales its network's optimizer (config.json keeps the options as
        # given; the optimizers, and ObserveLR's lr/*, hold the rescaled values).
        dis_terms, gen_terms = build_terms(cfg)
        objective = cfg.objective
        return GANUpdater(gen, dis, opt_gen, opt_dis, self.loader(cfg, train),
                          loss=filled(objective.loss, "loss"),
                          n_dis=filled(objective.n_dis, "n_dis"), dis_terms=dis_terms,
                          gen_terms=gen_terms, augment=objective.augment, **self.engine(cfg))

    def extensions(self, cfg: TrainConfig, updater: Updater, train: ArrayDataset,
                   val: ArrayDataset) -> list[Extension]:
        exts: list[Extension] = []
        ramps = preset_schedules(cfg)
        if cfg.model.ema:
            exts.append(EMA(updater.raw_models["gen"], cfg.model.ema,
                            half_life=ramps.get("ema_half_life")))
        targets = {f"{net}/{param}": ramps[what] for what, param in (("lr", "lr"),
                                                                     ("beta2", "beta2"))
                   if what in ramps for net in ("gen", "dis")}
        if "augment_p" in ramps:
            targets["augment.p"] = ramps["augment_p"]
        if targets:
            exts.append(ScheduleHyperparameters(targets))
        n = 2500 if train.kind == "points" else 100
        real = val.x[:2500] if train.kind == "points" else None
        exts.append(SampleGrid(fixed_noise_samples(n, seed=cfg.run.seed), real=real,
                               nrow=10 if n == 100 else None,
                               trigger=interval_trigger(cfg, cfg.run.sample_every),
                               keep=cfg.run.keep_samples))
        # Held-out losses always; metrics where a feature space needs no user input (points;
        # images of side >= 8: a classifier of labelled ones, a self-supervised network of
        # unlabelled ones), scored with each sample grid and at the end, and the best-FID
        # generator kept in best.safetensors (a generator file, gankit.export). About
        # 0.15 s of CPU per evaluation on the digits demo (2.5% of its training time), plus
        # ~2 s once to train the feature classifier.
        # (FID needs at least two held-out samples: a folder of 12 images holds out one.)
        scored = len(val) >= 2 and (train.kind == "points" or min(train.shape[1:]) >= 8
                                    or cfg.run.feature_net is not None)
        when = interval_trigger(cfg, cfg.run.sample_every)
        evaluator = GANEvaluator(val, train, metrics=None if scored else (),
                                 n=cfg.run.eval_samples or default_n(train), seed=cfg.run.seed,
                                 feature_net=cfg.run.feature_net, trigger=when,
                                 progress=True, timings=True)
        exts.append(evaluator)
        if scored:
            source, spec = run_generator(cfg, updater, train)
            # The name is the one snapshots have kept the trigger's best FID under since
            # best_fid.pt, so runs snapshotted before resume with their best value.
            exts.append(BestModel(spec, data_description(train), source=source,
                                  run={"recipe": cfg.model.recipe, "data": cfg.dataset.data},
                                  evaluator=evaluator, trigger=MinValueTrigger("val/fid", when),
                                  name="BestFIDSnapshot"))
        return exts

    def sample(self, trainer: Trainer, n: int, seed: int) -> torch.Tensor:
        gen = sampling_model(trainer, "gen")
        return generate(gen, n, seed=seed, device=trainer.updater.device)
