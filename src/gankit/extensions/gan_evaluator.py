"""GANEvaluator: held-out GAN losses plus FID/KID/precision-recall/mode coverage, in the log."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gankit.data.datasets import to_unit
from gankit.extensions.ema import sampling_model
from gankit.gan.sampling import generate
from gankit.metrics import extract_features
from gankit.metrics.scoring import (
    FeatureSpace,
    compute_metrics,
    feature_space,
    parse_metrics,
    real_subset,
)
from gankit.training.evaluator import Evaluator

if TYPE_CHECKING:
    from gankit.data import ArrayDataset
    from gankit.training.trainer import Trainer


class GANEvaluator(Evaluator):
    """Scores a GAN on held-out data and reports ``val/gen/loss``, ``val/dis/loss``, ``val/fid``...

    At each trigger, with every model in eval mode under ``no_grad`` (modes restored after):

    * the updater's own loss on the held-out real samples and as many fresh fakes from the
      training generator (``val/gen/loss``, ``val/dis/loss``), next to the training losses;
    * the ``metrics`` (``fid``, ``kid``, ``pr``, ``modes``, ``classes``; default: what
      :func:`gankit.metrics.scoring.default_metrics` picks for the data) of ``n`` samples from the
      EMA generator when there is one, against the held-out samples; ``()`` reports the
      losses only. An undefined score (NaN) is left out of that evaluation's report.

    Noise comes from a private generator seeded with ``seed``, the same at every evaluation,
    so scores move with the weights only and the training RNG is untouched. The feature
    network (see :func:`gankit.metrics.scoring.feature_space`; ``train`` is needed to train the
    classifier for labelled images) and the real features are built at the first call and
    kept. The updater must expose ``loss`` (a ``GANLoss``) and models ``gen`` and ``dis``, as
    :class:`gankit.gan.updaters.GANUpdater` does.

    Args:
        val: held-out data; at most ``n_real`` (default ``n``) samples of it, a fixed random
            subset, are used: equal sizes as in ``gankit eval``.
        train: training data, for the feature classifier of labelled images.
        metrics: metric names, or None for the data's defaults.
        n: generated samples per evaluation.
        n_real: cap on held-out samples (scoring cost grows with it).
        kid_subsets: KID subsets; a few suffice to follow training.
        feature_net: a feature network file (see ``load_feature_net``) instead of the default.
        source: the updater's model that generates.
    """

    trigger = (1, "epoch")
    name = "GANEvaluator"

    def __init__(
        self,
        val: ArrayDataset,
        train: ArrayDataset | None = None,
        *,
        metrics: Sequence[str] | None = None,
        n: int = 1000,
        n_real: int | None = None,
        kid_subsets: int = 10,
        feature_net: str | Path | None = None,
        features: FeatureSpace | None = None,
        batch_size: int = 500,
        seed: int = 0,
        source: str = "gen",
        prefix: str = "val",
    ) -> None:
        super().__init__(None, prefix=prefix)
        if n < 2:
            raise ValueError(f"GANEvaluator needs n >= 2 samples, got {n}.")
        self.val = real_subset(val, n if n_real is None else n_real)
        self.train = train
        self.metrics = None if metrics is None else tuple(metrics)
        self.n = n
        self.kid_subsets = kid_subsets
        self.feature_net = feature_net
        self.space = features
        self.batch_size = batch_size
        self.seed = seed
        self.source = source
        self._names: tuple[str, ...] | None = None
        self._real_features: Tensor | None = None

    def _prepare(self, device: torch.device) -> None:
        if self._names is not None:
            return
        names = self.metrics
        if names is None or names:
            if self.space is None:
                if self.train is None and self.val.kind == "image" and self.feature_net is None:
                    raise ValueError(
                        "GANEvaluator needs `train` to train the feature classifier for images; "
                        "pass train=, feature_net= or features=."
                    )
                train = self.train if self.train is not None else self.val
                # evaluate() runs under no_grad, but the classifier may need training first.
                with torch.enable_grad(), torch.autocast(device.type, enabled=False):
                    self.space = feature_space(train, self.val, feature_net=self.feature_net,
                                               device=device)
            names = parse_metrics(names, self.space, self.val)
        if names:
            self.space.to(device)
            self._real_features = extract_features(self.space.features, self.val.x,
                                                   device=device)
        self._names = tuple(names)

    def _losses(self, trainer: Trainer) -> dict[str, float]:
        u = trainer.updater
        loss = getattr(u, "loss", None)
        if loss is None or not {"gen", "dis"} <= set(u.raw_models):
            raise TypeError(
                "GANEvaluator needs an updater with `loss` and models 'gen' and 'dis' "
                "(a GANUpdater); pass metrics only to another Evaluator."
            )
        gen, dis = u.raw_models["gen"], u.raw_models["dis"]
        n_classes = int(getattr(gen, "n_classes", 0))
        rng = torch.Generator().manual_seed(self.seed)
        x_all, y_all = self.val.x, self.val.y
        total_gen = total_dis = 0.0
        for start in range(0, len(x_all), self.batch_size):
            x = to_unit(x_all[start:start + self.batch_size].to(u.device))
            m = x.shape[0]
            y = y_all[start:start + m].to(u.device) if n_classes and y_all is not None else None
            y_fake = (torch.arange(start, start + m) % n_classes).to(u.device) if n_classes \
                else None
            z = gen.sample_z(m, device="cpu", generator=rng).to(u.device)
            fake_out = dis(gen(z, y_fake), y_fake)
            real_out = dis(x, y)
            # Weighted by batch size: the losses are batch means.
            total_dis += float(loss.dis(real_out, fake_out)) * m
            total_gen += float(loss.gen(fake_out)) * m
        return {"gen/loss": total_gen / len(x_all), "dis/loss": total_dis / len(x_all)}

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """The held-out losses and the metrics, as floats (prefixed by the caller)."""
        device = trainer.updater.device
        self._prepare(device)
        result = self._losses(trainer)
        if self._names:
            # Metrics in fp32 even under mixed precision: FID differences are small numbers.
            with torch.autocast(device.type, enabled=False):
                gen = sampling_model(trainer, self.source)
                samples = generate(gen, self.n, seed=self.seed, device=device)
                scores = compute_metrics(
                    samples, self._real_features, self._names, space=self.space, data=self.val,
                    kid_subsets=self.kid_subsets, seed=self.seed, device=device)
            # An undefined score (reverse KL with no high-quality sample yet) is left out
            # rather than reported as NaN, which would stop the run through FailOnNonFinite.
            result.update({k: v for k, v in scores.items() if math.isfinite(v)})
        return result
