"""The CycleGAN recipe: translate between two unpaired domains cut from one image data set.

Domain A is the even-indexed images, domain B the odd-indexed ones with ink and paper swapped
(``gankit.data.domains``); a subclass may set ``transform`` to ``"thicken"`` (bolder strokes),
or to the geometric ``"rot90"`` or ``"flip"``, which CycleGAN does not learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from gankit.cli.config import filled
from gankit.cli.recipes.base import Recipe, image_shape, interval_trigger
from gankit.data import make_loader
from gankit.data.domains import make_domains
from gankit.errors import GankitError
from gankit.extensions.sample_grid import SampleGrid
from gankit.gan.cyclegan import CycleEvaluator, CycleGANUpdater, ResnetTranslator, translate
from gankit.models import DCGANDiscriminator

if TYPE_CHECKING:
    from gankit.cli.config import TrainConfig
    from gankit.data import ArrayDataset
    from gankit.training import Extension, Trainer

# The paper's cycle weight λ = 10. Its identity loss (0.5·λ) is off: it asks G to leave B
# images alone while inverting A ones, so G must first tell the domains apart
# (docs/studies/cyclegan.md; `--weight identity=0.5` brings it back).
CYCLEGAN_WEIGHTS: dict[str, float] = {"cycle": 10.0, "identity": 0.0}

# The paper's Adam settings (lr 2e-4, β1 0.5) and schedule (the full rate for the first half,
# then linearly down to 0); batches of 32 instead of 1, since 8x8 images give a tiny gradient
# each. 40 epochs (920 steps) take about two minutes on two CPU cores.
CYCLEGAN_DEFAULTS: dict[str, Any] = dict(
    epochs=40, batch_size=32, lr_gen=2e-4, lr_dis=2e-4, beta1=0.5, beta2=0.999, width=32,
    norm="batch", lr_decay="linear", lr_decay_start=0.5,
    log_every="1e", sample_every="10e", snapshot_every="10e",
)
# The paper's history of generated images shown to each discriminator.
CYCLEGAN_HISTORY = 50


class CycleGANRecipe(Recipe):
    name = "cyclegan"
    print_keys = ("epoch", "iteration", "gen/adv", "gen/cycle", "dis/loss", "val/cycle",
                  "elapsed_time")
    plot_keys = ("gen/adv", "gen/cycle", "gen/identity", "dis/loss")
    weights = CYCLEGAN_WEIGHTS
    kinds = ("image",)
    #: how domain B is made from the images at odd positions (see DOMAIN_TRANSFORMS)
    transform = "invert"
    #: the translators' stride-2 levels and residual blocks (see ResnetTranslator): one
    #: block at full resolution, a 9x9 view (why: docs/studies/cyclegan.md).
    down = 0
    n_blocks = 1

    def defaults(self, train: ArrayDataset, cfg: TrainConfig | None = None) -> dict[str, Any]:
        return dict(CYCLEGAN_DEFAULTS)

    def make_updater(self, cfg: TrainConfig, train: ArrayDataset) -> CycleGANUpdater:
        weights = self.weight_values(cfg)
        domains = make_domains(train, self.transform)
        shape = image_shape(domains)
        width, norm = filled(cfg.model.width, "width"), filled(cfg.model.norm, "norm")
        gen_ab, gen_ba = (ResnetTranslator(shape, width, self.n_blocks, self.down)
                          for _ in range(2))
        dis_a = DCGANDiscriminator(shape, width, norm=norm)
        dis_b = DCGANDiscriminator(shape, width, norm=norm)
        gen_params = [*gen_ab.parameters(), *gen_ba.parameters()]
        dis_params = [*dis_a.parameters(), *dis_b.parameters()]
        return CycleGANUpdater(
            gen_ab, gen_ba, dis_a, dis_b,
            self.adam(cfg, gen_params, filled(cfg.optim.lr_gen, "lr_gen")),
            self.adam(cfg, dis_params, filled(cfg.optim.lr_dis, "lr_dis")),
            self.loader(cfg, domains), cycle=weights["cycle"], identity=weights["identity"],
            history=CYCLEGAN_HISTORY, **self.engine(cfg),
        )

    def extensions(self, cfg: TrainConfig, updater: Any, train: ArrayDataset,
                   val: ArrayDataset) -> list[Extension]:
        held_out = make_domains(val, self.transform)
        loader = make_loader(held_out, min(len(held_out), 500), shuffle=False, drop_last=False)
        evaluator = CycleEvaluator(loader, held_out,
                                   trigger=interval_trigger(cfg, cfg.run.log_every))
        a, b = held_out.a[:10], held_out.b[:10]

        def make_samples(trainer: Trainer) -> torch.Tensor:
            # Rows: a, G(a), F(G(a)), then b, F(b), G(F(b)), ten held-out images each.
            models, device = trainer.updater.raw_models, trainer.updater.device
            g, f = models["gen_ab"], models["gen_ba"]
            fake_b, fake_a = translate(g, a.to(device)), translate(f, b.to(device))
            return torch.cat([a.to(device), fake_b, translate(f, fake_b),
                              b.to(device), fake_a, translate(g, fake_a)])

        grid = SampleGrid(make_samples, nrow=10,
                          trigger=interval_trigger(cfg, cfg.run.sample_every),
                          keep=cfg.run.keep_samples)
        return [evaluator, grid]

    def sample(self, trainer: Trainer, n: int, seed: int) -> torch.Tensor:
        """G(a) for ``n`` held-out domain-A images (chosen by ``seed``, repeated past the
        held-out set's size)."""
        evaluators = [e for e in trainer.extensions.values() if isinstance(e, CycleEvaluator)]
        if not evaluators:
            raise GankitError("this trainer has no CycleEvaluator, so there are no held-out "
                              "images to translate; build it with CycleGANRecipe.extensions.")
        a = evaluators[0].domains.a
        order = torch.randperm(len(a), generator=torch.Generator().manual_seed(seed))
        idx = order.repeat(-(-n // len(a)))[:n]
        device = trainer.updater.device
        return translate(trainer.updater.raw_models["gen_ab"], a[idx].to(device))
