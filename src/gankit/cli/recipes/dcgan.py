"""The GAN recipe: the ``--arch`` networks (DCGAN by default; MLPs for 2D points), any loss
and penalty."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from gankit.cli.recipes import Recipe, check_options, interval_trigger
from gankit.data import make_loader
from gankit.errors import GankitError
from gankit.extensions.ema import EMA, sampling_model
from gankit.extensions.gan_evaluator import GANEvaluator
from gankit.extensions.sample_grid import SampleGrid, fixed_noise_samples
from gankit.extensions.snapshot import Snapshot
from gankit.gan.sampling import generate
from gankit.gan.updaters import GANUpdater
from gankit.metrics.scoring import DEFAULT_N
from gankit.models.archs import get_arch
from gankit.training.distributed import rank_and_world_size
from gankit.training.triggers import MinValueTrigger

if TYPE_CHECKING:
    from torch import nn

    from gankit.cli.config import TrainConfig
    from gankit.data import ArrayDataset
    from gankit.training import Extension, Trainer, Updater

# Found by benchmarks/modes.py (points) and the digits demo; see the README's tables.
IMAGE_DEFAULTS: dict[str, Any] = dict(
    epochs=200, batch_size=64, loss="ns", penalty="none", penalty_weight=1.0, lr_gen=2e-4,
    lr_dis=2e-4, beta1=0.5, beta2=0.999, n_dis=1, penalty_every=1, z_dim=32, width=32,
    norm="batch", ema=0.999, log_every="1e", sample_every="20e", snapshot_every="20e",
)
# beta1=0 (no momentum) keeps the EMA generator's mode quality rising steadily where 0.5 had
# sudden dips; R1 γ=0.3 suits both the ring (σ=0.01) and the grid (σ=0.05).
POINT_DEFAULTS: dict[str, Any] = dict(
    iterations=12000, batch_size=256, loss="ns", penalty="r1", penalty_weight=0.3, lr_gen=1e-3,
    lr_dis=1e-3, beta1=0.0, beta2=0.999, n_dis=1, penalty_every=1, z_dim=2, width=128,
    norm="none", ema=0.999,
    log_every="250", sample_every="2000", snapshot_every="2000",
)


def build_networks(cfg: TrainConfig, train: ArrayDataset) -> tuple[nn.Module, nn.Module]:
    """The ``--arch`` pair (``gankit.models.archs``) for this data."""
    n_classes = train.n_classes if cfg.conditional else 0
    return get_arch(cfg.arch).build(train.shape, z_dim=cfg.z_dim, width=cfg.width,
                                    n_classes=n_classes, norm=cfg.norm)


class DCGANRecipe(Recipe):
    name = "dcgan"
    print_keys = ("epoch", "iteration", "gen/loss", "dis/loss", "val/fid", "elapsed_time")
    plot_keys = ("gen/loss", "dis/loss", "val/gen/loss", "val/dis/loss")

    def defaults(self, train: ArrayDataset, cfg: TrainConfig | None = None) -> dict[str, Any]:
        arch = get_arch(cfg.arch if cfg is not None else "dcgan")
        if train.kind == "points":
            if arch.name != "dcgan":
                raise GankitError(f"--arch {arch.name} builds image networks, but {train.name!r} "
                                  "holds 2-D points; leave --arch out (MLPs) for points.")
            return dict(POINT_DEFAULTS)
        # The arch's paper defaults replace gankit's DCGAN ones; the user's options win over both.
        return {**IMAGE_DEFAULTS, **arch.defaults(train.shape)}

    def build(self, cfg: TrainConfig, train: ArrayDataset) -> GANUpdater:
        check_options(cfg, self.name, (), {})
        gen, dis = build_networks(cfg, train)
        betas = (cfg.beta1, cfg.beta2)
        rank, world_size = rank_and_world_size()  # each process reads its share of an epoch
        loader = make_loader(train, cfg.batch_size, seed=cfg.seed, num_workers=cfg.workers,
                             rank=rank, world_size=world_size)
        return GANUpdater(
            gen, dis,
            torch.optim.Adam(gen.parameters(), cfg.lr_gen, betas=betas),
            torch.optim.Adam(dis.parameters(), cfg.lr_dis, betas=betas),
            loader, loss=cfg.loss, n_dis=cfg.n_dis, penalty=cfg.penalty,
            penalty_weight=cfg.penalty_weight, penalty_every=cfg.penalty_every,
            device=cfg.device, precision=cfg.precision, skip_nonfinite=cfg.skip_nonfinite,
        )

    def extensions(self, cfg: TrainConfig, updater: Updater, train: ArrayDataset,
                   val: ArrayDataset) -> list[Extension]:
        exts: list[Extension] = []
        if cfg.ema:
            exts.append(EMA(updater.raw_models["gen"], cfg.ema))
        n = 2500 if train.kind == "points" else 100
        real = val.x[:2500] if train.kind == "points" else None
        grid = SampleGrid(fixed_noise_samples(n, seed=cfg.seed), real=real,
                          nrow=10 if n == 100 else None)
        grid.trigger = interval_trigger(cfg, cfg.sample_every)
        exts.append(grid)
        # Held-out losses always; metrics where a feature space needs no user input (points,
        # labelled images), scored with each sample grid and at the end, and the best-FID
        # model kept in best_fid.pt. About 0.15 s of CPU per evaluation on the digits demo
        # (2.5% of its training time), plus ~2 s once to train the feature classifier.
        scored = train.kind == "points" or (train.y is not None and train.n_classes >= 2
                                            and min(train.shape[1:]) >= 8)
        when = interval_trigger(cfg, cfg.sample_every)
        evaluator = GANEvaluator(val, train, metrics=None if scored else (),
                                 n=DEFAULT_N[train.kind], seed=cfg.seed)
        evaluator.trigger = when
        exts.append(evaluator)
        if scored:
            best = Snapshot("best_fid.pt", n_retains=None, on_signal=False,
                            trigger=MinValueTrigger("val/fid", when))
            best.name = "BestFIDSnapshot"
            exts.append(best)
        return exts

    def sample(self, trainer: Trainer, n: int, seed: int) -> torch.Tensor:
        gen = sampling_model(trainer, "gen")
        return generate(gen, n, seed=seed, device=trainer.updater.device)
