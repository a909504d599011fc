"""The VAE-GAN recipe: a conv encoder, a DCGAN generator as decoder, a DCGAN discriminator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from gankit.cli.config import filled
from gankit.cli.recipes import Recipe, image_shape, interval_trigger
from gankit.data import make_loader
from gankit.extensions.ema import EMA, sampling_model
from gankit.extensions.sample_grid import SampleGrid
from gankit.gan.sampling import generate
from gankit.gan.vaegan import ConvEncoder, ReconstructionEvaluator, VAEGANUpdater, reconstruct
from gankit.models import DCGANDiscriminator, DCGANGenerator

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

class VAEGANRecipe(Recipe):
    name = "vaegan"
    print_keys = ("epoch", "iteration", "enc/kl", "enc/llike", "dec/loss", "dis/loss", "val/rec",
                  "elapsed_time")
    plot_keys = ("enc/kl", "dec/gan", "dis/loss")
    reads = frozenset({"z_dim", "ema"})
    weights = VAEGAN_WEIGHTS
    kinds = ("image",)

    def defaults(self, train: ArrayDataset, cfg: TrainConfig | None = None) -> dict[str, Any]:
        return dict(VAEGAN_DEFAULTS)

    def make_updater(self, cfg: TrainConfig, train: ArrayDataset) -> VAEGANUpdater:
        z_dim, width = filled(cfg.model.z_dim, "z_dim"), filled(cfg.model.width, "width")
        shape = image_shape(train)
        enc = ConvEncoder(z_dim, shape, width)
        dec = DCGANGenerator(z_dim, shape, width)
        dis = DCGANDiscriminator(shape, width, norm=filled(cfg.model.norm, "norm"))
        return VAEGANUpdater(
            enc, dec, dis,
            self.adam(cfg, enc.parameters(), filled(cfg.optim.lr_gen, "lr_gen")),
            self.adam(cfg, dec.parameters(), filled(cfg.optim.lr_gen, "lr_gen")),
            self.adam(cfg, dis.parameters(), filled(cfg.optim.lr_dis, "lr_dis")),
            self.loader(cfg, train), gamma=self.weight_values(cfg)["gamma"], **self.engine(cfg),
        )

    def extensions(self, cfg: TrainConfig, updater: Any, train: ArrayDataset,
                   val: ArrayDataset) -> list[Extension]:
        exts: list[Extension] = []
        if cfg.model.ema:
            exts.append(EMA(updater.raw_models["dec"], cfg.model.ema))
        exts.append(ReconstructionEvaluator(
            make_loader(val, min(len(val), 500), shuffle=False, drop_last=False),
            trigger=interval_trigger(cfg, cfg.run.log_every)))
        shown = val.unit(slice(0, 10))
        seed = cfg.run.seed

        def make_samples(trainer: Trainer) -> torch.Tensor:
            # Row 1: held-out digits; row 2: their reconstructions; the rest: prior samples.
            u = trainer.updater
            x = shown.to(u.device)
            rec = reconstruct(u.raw_models["enc"], u.raw_models["dec"], x)
            prior = generate(sampling_model(trainer, "dec"), 80, seed=seed, device=u.device)
            return torch.cat([x, rec, prior])

        exts.append(SampleGrid(make_samples, nrow=10,
                               trigger=interval_trigger(cfg, cfg.run.sample_every),
                               keep=cfg.run.keep_samples))
        return exts

    def sample(self, trainer: Trainer, n: int, seed: int) -> torch.Tensor:
        """Decoder outputs for ``n`` draws from the prior N(0, I)."""
        dec = sampling_model(trainer, "dec")
        return generate(dec, n, seed=seed, device=trainer.updater.device)
