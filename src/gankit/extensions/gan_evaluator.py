"""GANEvaluator: held-out GAN losses plus FID/KID/precision-recall/mode coverage, in the log."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

from gankit.data.datasets import to_unit
from gankit.extensions.ema import sampling_model
from gankit.gan.sampling import generate
from gankit.metrics import extract_features
from gankit.metrics.protocol import Protocol
from gankit.metrics.scoring import (
    FeatureSpace,
    compute_metrics,
    feature_space,
    make_protocol,
    parse_metrics,
    real_subset,
)
from gankit.metrics.stats import ReferenceStats, reference_stats
from gankit.training.checkpoint import write_atomic
from gankit.training.distributed import all_gather_object, rank_and_world_size
from gankit.training.eval_mode import eval_mode
from gankit.training.evaluator import Evaluator
from gankit.training.stop import check_stop

if TYPE_CHECKING:
    from gankit.data import ArrayDataset
    from gankit.training.trainer import Trainer
    from gankit.training.triggers import TriggerLike


class GANEvaluator(Evaluator):
    """Scores a GAN on held-out data and reports ``val/gen/loss``, ``val/dis/loss``, ``val/fid``...

    At each trigger, with every model in eval mode under ``no_grad`` (modes restored after):

    * the updater's own loss on the held-out real samples and as many fresh fakes from the
      training generator (``val/gen/loss``, ``val/dis/loss``), next to the training losses;
    * the ``metrics`` (``fid``, ``kid``, ``pr``, ``modes``, ``classes``, ``stacked``; default: what
      :func:`gankit.metrics.scoring.default_metrics` picks for the data) of ``n`` samples from the
      EMA generator when there is one, against the held-out samples; ``()`` reports the
      losses only. An undefined score (NaN) is left out of that evaluation's report.

    Noise comes from a private generator seeded with ``seed``, the same at every evaluation,
    so scores move with the weights only and the training RNG is untouched. The feature
    network (see :func:`gankit.metrics.scoring.feature_space`; ``train`` is needed to train the
    classifier for labelled images) and the real features are built at the first call and
    kept (the real statistics in the cache of :func:`gankit.metrics.stats.reference_stats`).
    The updater must expose ``loss`` (a ``GANLoss``) and models ``gen`` and ``dis``, as
    :class:`gankit.gan.updaters.GANUpdater` does.

    Under torch.distributed each process generates and extracts the features of its own
    contiguous share of the samples (and of the real samples), the features are gathered in
    rank order and every process computes the metrics from the same whole sets, so the scores
    equal those of one process. The metrics' protocol (:attr:`protocol`) is written beside the
    log as ``{prefix}_protocol.json``, naming the ``{prefix}/*`` keys it covers.

    Args:
        val: held-out data; at most ``n_real`` (default ``n``) samples of it, a fixed random
            subset, are used: equal sizes as in ``gankit eval``.
        train: training data, for the feature classifier of labelled images.
        metrics: metric names, or None for the data's defaults.
        n: generated samples per evaluation.
        n_real: cap on held-out samples (scoring cost grows with it).
        kid_subsets: KID subsets; a few suffice to follow training.
        feature_net: ``inception:PATH`` (the FID Inception, see
            :mod:`gankit.metrics.inception`) or a feature network file (see
            ``load_feature_net``) instead of the default.
        source: the updater's model that generates.
    """

    trigger: TriggerLike = (1, "epoch")
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
        trigger: TriggerLike | None = None,
    ) -> None:
        super().__init__(None, prefix=prefix, trigger=trigger)
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
        self._real: ReferenceStats | None = None
        #: the protocol of the reported metrics, known after the first evaluation
        self.protocol: Protocol | None = None

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
            assert self.space is not None  # parse_metrics found names in it
            self.space.to(device)
            if rank_and_world_size()[1] > 1:
                self._real = ReferenceStats.of(_sharded_features(
                    self.space.features, self.val.x, self.space.batch_size, device))
            else:
                self._real = reference_stats(
                    self.val.x, self.space.features, split=self.val.split or "val",
                    feature_hash=self.space.weights_hash, device=device,
                    batch_size=self.space.batch_size)
            self.protocol = make_protocol(self.space, n_real=len(self.val), n_generated=self.n,
                                          real_split=self.val.split or "val", seed=self.seed)
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
        x_all, y_all = self.val.x, self.val.y
        # As many fakes as held-out reals, with classes in turn (generate's labelling).
        fakes = generate(gen, len(x_all), seed=self.seed, batch_size=self.batch_size,
                         device=u.device)
        total_gen = total_dis = 0.0
        for start in range(0, len(x_all), self.batch_size):
            check_stop()
            x = to_unit(x_all[start:start + self.batch_size].to(u.device))
            m = x.shape[0]
            y = y_all[start:start + m].to(u.device) if n_classes and y_all is not None else None
            y_fake = (torch.arange(start, start + m) % n_classes).to(u.device) if n_classes \
                else None
            fake_out = dis(fakes[start:start + m], y_fake)
            real_out = dis(x, y)
            # Weighted by batch size: the losses are batch means.
            total_dis += float(loss.dis(real_out, fake_out)) * m
            total_gen += float(loss.gen(fake_out, real_out)) * m
        return {"gen/loss": total_gen / len(x_all), "dis/loss": total_dis / len(x_all)}

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """The held-out losses and the metrics, as floats (prefixed by the caller)."""
        device = trainer.updater.device
        self._prepare(device)
        result = self._losses(trainer)
        if self._names:
            assert self.space is not None and self._real is not None
            # Metrics in fp32 even under mixed precision: FID differences are small numbers.
            with torch.autocast(device.type, enabled=False):
                gen = sampling_model(trainer, self.source)
                # This process's share of the samples, then everyone's, in rank order.
                lo, hi = _share(self.n)
                mine = _generate_share(gen, self.n, lo, hi, seed=self.seed, device=device)
                feats = (extract_features(self.space.features, mine, self.space.batch_size,
                                          device=device).cpu()
                         if mine.shape[0] and bool(torch.isfinite(mine).all()) else None)
                shares = all_gather_object((mine.cpu(), feats))
                samples = torch.cat([x for x, _ in shares]).to(device)
                fake = (None if any(f is None for _, f in shares)
                        else torch.cat([f for _, f in shares if f is not None]))
                scores = compute_metrics(
                    samples, self._real, self._names, space=self.space, data=self.val,
                    kid_subsets=self.kid_subsets, seed=self.seed, device=device,
                    fake_features=fake)
            self._write_protocol(trainer, scores)
            # An undefined score (reverse KL with no high-quality sample yet) is left out
            # rather than reported as NaN, which would stop the run through FailOnNonFinite.
            result.update({k: v for k, v in scores.items() if math.isfinite(v)})
        return result

    def _write_protocol(self, trainer: Trainer, scores: dict[str, float]) -> None:
        out = getattr(trainer, "out", None)
        if self.protocol is None or out is None or not trainer.is_main_process:
            return
        path = Path(out) / f"{self.prefix or 'metrics'}_protocol.json"
        keys = [f"{self.prefix}/{k}" if self.prefix else k for k in scores]
        text = json.dumps({"keys": keys, "protocol": self.protocol.as_dict()}, indent=1)
        if not path.is_file() or path.read_text() != text + "\n":
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, (text + "\n").encode(), durable=False)


def _share(n: int) -> tuple[int, int]:
    """This rank's contiguous share ``[lo, hi)`` of ``n`` items (all of them alone)."""
    rank, world = rank_and_world_size()
    return rank * n // world, (rank + 1) * n // world


def _sharded_features(net: Callable[[Tensor], Tensor], x: Tensor, batch_size: int,
                      device: torch.device) -> Tensor:
    """Features of ``x`` (N, ...), each rank extracting its share; all of them, in order."""
    lo, hi = _share(x.shape[0])
    mine = (extract_features(net, x[lo:hi], batch_size, device=device).cpu() if hi > lo
            else None)
    return torch.cat([f for f in all_gather_object(mine) if f is not None])


@torch.no_grad()
def _generate_share(gen: nn.Module, n: int, lo: int, hi: int, *, seed: int,
                    device: torch.device, batch_size: int = 1000) -> Tensor:
    """Samples ``lo:hi`` of ``generate(gen, n, seed=seed)``, computing only those.

    The noise of all ``n`` is drawn (it is cheap) in ``generate``'s batches, so sample ``i``
    is the same whatever the number of processes; conditional samples get classes in turn.
    """
    rng = torch.Generator().manual_seed(seed)
    n_classes = int(getattr(gen, "n_classes", 0))
    out = []
    with eval_mode(gen):
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = cast(Callable[..., Tensor], gen.sample_z)(m, device="cpu", generator=rng)
            a, b = max(lo, start), min(hi, start + m)
            if a >= b:
                continue
            y = (torch.arange(a, b) % n_classes).to(device) if n_classes else None
            out.append(gen(z[a - start:b - start].to(device), y).float())
    if not out:  # more processes than samples: an empty share of the right shape
        probe = generate(gen, 1, seed=seed, device=device)
        return probe[:0]
    return torch.cat(out)
