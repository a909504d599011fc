"""The VAE-GAN recipe: a conv encoder, a DCGAN generator as decoder, a DCGAN discriminator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from gankit.cli.recipes import Recipe, check_images, check_options, interval_trigger
from gankit.data import make_loader
from gankit.extensions.ema import EMA, sampling_model
from gankit.extensions.sample_grid import SampleGrid
from gankit.gan.sampling import generate
from gankit.gan.vaegan import ConvEncoder, ReconstructionEvaluator, VAEGANUpdater, reconstruct
from gankit.models import DCGANDiscriminator, DCGANGenerator
from gankit.training.distributed import rank_and_world_size

if TYPE_CHECKING:
    from gankit.cli.config import TrainConfig
    from gankit.data import ArrayDataset
    from gankit.training import Extension, Trainer

# γ: the weight of the feature-space reconstruction error in the decoder's loss. The authors'
# released code mixes the decoder's two gradients as γ·reconstruction − (1 − γ)·GAN with
# γ = 1e-2 by default (1e-5 on 64x64 CelebA, whose feature maps are far larger); we use 1e-2.
# On digits it keeps reconstructions faithful against a 512-unit feature layer
# (benchmarks/recipes_quality.py: held-out MSE 16x below the untrained model's).
VAEGAN_WEIGHTS: dict[str, float] = {"gamma": 1e-2}

# norm="layer": L_llike compares the features of each x̃ with those of its own x, so they
# must not depend on the rest of the batch, as BatchNorm's would.
VAEGAN_DEFAULTS: dict[str, Any] = dict(
    epochs=100, batch_size=64, lr_gen=2e-4, lr_dis=2e-4, beta1=0.5, beta2=0.999, z_dim=32, width=32,
    norm="layer", log_every="1e", sample_every="20e", snapshot_every="20e",
)

_GAN_ONLY = ("loss", "penalty", "penalty_weight", "n_dis", "penalty_every", "conditional",
             "arch")


class VAEGANRecipe(Recipe):
    name = "vaegan"
    print_keys = ("epoch", "iteration", "enc/kl", "enc/llike", "dec/loss", "dis/loss", "val/rec",
                  "elapsed_time")
    plot_keys = ("enc/kl", "dec/gan", "dis/loss")

    def defaults(self, train: ArrayDataset, cfg: TrainConfig | None = None) -> dict[str, Any]:
        check_images(train, self.name)
        return dict(VAEGAN_DEFAULTS)

    def build(self, cfg: TrainConfig, train: ArrayDataset) -> VAEGANUpdater:
        check_images(train, self.name)
        check_options(cfg, self.name, _GAN_ONLY, VAEGAN_WEIGHTS)
        weights = {**VAEGAN_WEIGHTS, **cfg.weights}
        enc = ConvEncoder(cfg.z_dim, train.shape, cfg.width)
        dec = DCGANGenerator(cfg.z_dim, train.shape, cfg.width)
        dis = DCGANDiscriminator(train.shape, cfg.width, norm=cfg.norm)
        betas = (cfg.beta1, cfg.beta2)
        rank, world_size = rank_and_world_size()  # each process reads its share of an epoch
        return VAEGANUpdater(
            enc, dec, dis,
            torch.optim.Adam(enc.parameters(), cfg.lr_gen, betas=betas),
            torch.optim.Adam(dec.parameters(), cfg.lr_gen, betas=betas),
            torch.optim.Adam(dis.parameters(), cfg.lr_dis, betas=betas),
            make_loader(train, cfg.batch_size, seed=cfg.seed, num_workers=cfg.workers,
                        rank=rank, world_size=world_size),
            gamma=weights["gamma"], device=cfg.device, precision=cfg.precision,
            skip_nonfinite=cfg.skip_nonfinite,
        )

    def extensions(self, cfg: TrainConfig, updater: Any, train: ArrayDataset,
                   val: ArrayDataset) -> list[Extension]:
        exts: list[Extension] = []
        if cfg.ema:
            exts.append(EMA(updater.raw_models["dec"], cfg.ema))
        evaluator = ReconstructionEvaluator(
            make_loader(val, min(len(val), 500), shuffle=False, drop_last=False))
        evaluator.trigger = interval_trigger(cfg, cfg.log_every)
        exts.append(evaluator)
        shown = val.x[:10]
        seed = cfg.seed

        def make_samples(trainer: Trainer) -> torch.Tensor:
            # Row 1: held-out digits; row 2: their reconstructions; the rest: prior samples.
            u = trainer.updater
            x = shown.to(u.device)
            rec = reconstruct(u.raw_models["enc"], u.raw_models["dec"], x)
            prior = generate(sampling_model(trainer, "dec"), 80, seed=seed, device=u.device)
            return torch.cat([x, rec, prior])

        grid = SampleGrid(make_samples, nrow=10)
        grid.trigger = interval_trigger(cfg, cfg.sample_every)
        exts.append(grid)
        return exts

    def sample(self, trainer: Trainer, n: int, seed: int) -> torch.Tensor:
        """Decoder outputs for ``n`` draws from the prior N(0, I)."""
        dec = sampling_model(trainer, "dec")
        return generate(dec, n, seed=seed, device=trainer.updater.device)
