"""GANEvaluator: held-out GAN losses plus FID/KID/precision-recall/mode coverage, in the log."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor

from gankit.data.datasets import to_unit
from gankit.errors import GankitError
from gankit.extensions.ema import sampling_model
from gankit.gan.sampling import generate
from gankit.metrics import extract_features
from gankit.metrics.features import StepLine, bounded_batch
from gankit.metrics.protocol import Protocol
from gankit.metrics.scoring import (
    SAMPLE_METRICS,
    FeatureSpace,
    compute_metrics,
    default_n,
    feature_space,
    make_protocol,
    parse_metrics,
    real_subset,
)
from gankit.metrics.stats import ReferenceStats, reference_stats
from gankit.training.checkpoint import write_atomic
from gankit.training.distributed import all_gather_object, rank_and_world_size
from gankit.training.evaluator import Evaluator
from gankit.training.reporter import report
from gankit.training.stop import check_stop

if TYPE_CHECKING:
    from gankit.data import DataSource
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
    classifier of labelled images or the self-supervised network of unlabelled ones) and the
    real features are built at the first call and kept (the real statistics in the cache of
    :func:`gankit.metrics.stats.reference_stats`).
    The updater must expose ``loss`` (a ``GANLoss``) and models ``gen`` and ``dis``, as
    :class:`gankit.gan.updaters.GANUpdater` does.

    Under torch.distributed each process generates and extracts the features of its own
    contiguous share of the samples (and of the real samples), the features are gathered in
    rank order and every process computes the metrics from the same whole sets, so the scores
    equal those of one process. The metrics' protocol (:attr:`protocol`) is written beside the
    log as ``{prefix}_protocol.json``, naming the ``{prefix}/*`` keys it covers.

    An evaluation runs in phases: the held-out losses, generating the samples, their
    features and the metrics. With ``timings`` each phase's seconds and the whole
    evaluation's (the first one's feature network and real features included) are reported
    beside the scores, not among them: ``{prefix}_time/losses``, ``/generate``,
    ``/features``, ``/metrics`` and ``/total``. With ``progress`` the main process writes a
    line on stderr as each phase starts and ends, with its time, a ``step k/N`` line about
    every 30 s (every second on a terminal) within it, and a summary line at the end; after
    an evaluation quicker than ``BRIEF_BELOW_S`` seconds the next one writes its summary
    line only.

    In a training run an iteration is evaluated once: a second call at the iteration
    already evaluated (the extension's state keeps it across a resume) reports the first
    one's values again without recomputing them.

    Args:
        val: held-out data; at most ``n_real`` (default ``n``) samples of it, a fixed random
            subset, are used: equal sizes as in ``gankit eval``.
        train: training data, for the feature network gankit trains (labelled or not).
        metrics: metric names, or None for the data's defaults.
        n: generated samples per evaluation.
        n_real: cap on held-out samples (scoring cost grows with it).
        kid_subsets: KID subsets; a few suffice to follow training.
        feature_net: ``inception:PATH`` (the FID Inception, see
            :mod:`gankit.metrics.inception`) or a feature network file (see
            ``load_feature_net``) instead of the default.
        source: the updater's model that generates.
        progress: phase lines on stderr (main process only).
        timings: report each phase's seconds (``val_time/generate``, ..., ``val_time/total``).
    """

    trigger: TriggerLike = (1, "epoch")
    name = "GANEvaluator"

    def __init__(
        self,
        val: DataSource,
        train: DataSource | None = None,
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
        progress: bool = False,
        timings: bool = False,
    ) -> None:
        super().__init__(None, prefix=prefix, trigger=trigger)
        if n < 2:
            raise GankitError(f"GANEvaluator needs n >= 2 samples, got {n}.")
        self.val = real_subset(val, n if n_real is None else n_real)
        self._val_source = val  # for the classifier's held-out set, whatever n is
        self.train = train
        self.metrics = None if metrics is None else tuple(metrics)
        self.n = n
        self.kid_subsets = kid_subsets
        self.feature_net = feature_net
        self.space = features
        self.batch_size = batch_size
        self.seed = seed
        self.source = source
        self.progress = progress
        self.timings = timings
        self._show = False  # progress lines in the evaluation under way
        self._brief = False  # the last evaluation was quick: one summary line only
        # The iteration last evaluated in a training run and what it reported (prefixed).
        self._done_at: int | None = None
        self._done: dict[str, float] = {}
        self._in_run = False
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
                    raise GankitError(
                        "GANEvaluator needs `train` to train the feature classifier for images; "
                        "pass train=, feature_net= or features=."
                    )
                train = self.train if self.train is not None else self.val
                # The classifier's held-out set is the default-n subset at least, so a run
                # with fewer samples finds the classifier cached by a run with the default.
                held = self.val
                if len(held) < min(len(self._val_source), default_n(self._val_source)):
                    held = real_subset(self._val_source, default_n(self._val_source))
                # evaluate() runs under no_grad, but the classifier may need training first.
                with torch.enable_grad(), torch.autocast(device.type, enabled=False):
                    self.space = feature_space(train, held, feature_net=self.feature_net,
                                               device=device)
                del held
            names = parse_metrics(names, self.space, self.val)
        if names:
            assert self.space is not None  # parse_metrics found names in it
            self.space.to(device)
            start = self._begin(f"computing the features of {len(self.val)} real samples")
            if rank_and_world_size()[1] > 1:
                self._real = ReferenceStats.of(_sharded_features(
                    self.space.features, self.val.x, self.space.batch_size, device))
            else:
                self._real = reference_stats(
                    self.val.x, self.space.features, split=self.val.split or "val",
                    feature_hash=self.space.weights_hash, device=device,
                    batch_size=self.space.batch_size)
            self._end(f"computing the features of {len(self.val)} real samples", start)
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
        n = len(x_all)
        # As many fakes as held-out reals, with classes in turn (generate's labelling), each
        # batch generated where it is scored: the noise is drawn in blocks of batch_size
        # whatever the batches (generate's part), so no set of fakes is ever held whole.
        step = bounded_batch(self.batch_size, x_all.shape[1:])
        total_gen = total_dis = 0.0
        line = StepLine(n, f"held-out losses: {n} samples", self._show)
        for start in range(0, n, step):
            check_stop()
            x = to_unit(x_all[start:start + step].to(u.device))
            m = x.shape[0]
            fake = generate(gen, n, seed=self.seed, batch_size=self.batch_size, device=u.device,
                            part=(start, start + m))
            y = y_all[start:start + m].to(u.device) if n_classes and y_all is not None else None
            y_fake = (torch.arange(start, start + m) % n_classes).to(u.device) if n_classes \
                else None
            fake_out = dis(fake, y_fake)
            real_out = dis(x, y)
            # Weighted by batch size: the losses are batch means.
            total_dis += float(loss.dis(real_out, fake_out)) * m
            total_gen += float(loss.gen(fake_out, real_out)) * m
            line.update(start + m)
        return {"gen/loss": total_gen / n, "dis/loss": total_dis / n}

    def __call__(self, trainer: Trainer) -> dict[str, float]:  # type: ignore[override]
        """Evaluate now (in a training run: unless this iteration is evaluated already),
        report the values under the prefix and return them."""
        iteration = trainer.updater.iteration
        if self._in_run and self._done_at == iteration:
            report({k[len(self.prefix) + 1:] if self.prefix else k: v
                    for k, v in self._done.items()}, self.prefix)
            return dict(self._done)
        result = super().__call__(trainer)
        if self._in_run:
            self._done_at, self._done = iteration, dict(result)
        return result

    def initialize(self, trainer: Trainer) -> None:
        self._in_run = True

    def finalize(self, trainer: Trainer) -> None:
        self._in_run = False

    def state_dict(self) -> dict[str, object]:
        return {"done_at": self._done_at, "done": dict(self._done)}

    def load_state_dict(self, state: dict[str, object]) -> None:
        done_at, done = state.get("done_at"), state.get("done")
        self._done_at = None if done_at is None else int(cast(int, done_at))
        self._done = {str(k): float(v) for k, v in cast(dict[str, float], done or {}).items()}

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """The held-out losses and the metrics, as floats (prefixed by the caller)."""
        device = trainer.updater.device
        self._show = self.progress and trainer.is_main_process
        iteration = trainer.updater.iteration
        began = self._begin(f"evaluating iteration {iteration}")
        self._prepare(device)
        times: dict[str, float] = {}
        start = self._begin("held-out losses")
        result = self._losses(trainer)
        times["time_losses"] = self._end("held-out losses", start)
        if self._names:
            assert self.space is not None and self._real is not None
            # Metrics in fp32 even under mixed precision: FID differences are small numbers.
            with torch.autocast(device.type, enabled=False):
                gen = sampling_model(trainer, self.source)
                # This process's share of the samples, then everyone's, in rank order.
                what = f"generating {self.n} samples"
                start = self._begin(what)
                lo, hi = _share(self.n)
                mine = self._generate(gen, self.n, (lo, hi), _GENERATE_BATCH, device,
                                      StepLine(hi - lo, what, self._show))
                times["time_generate"] = self._end(what, start)
                what = f"computing the features of {self.n} samples"
                start = self._begin(what)
                finite = bool(torch.isfinite(mine).all())
                feats = (self._features(mine, device, StepLine(hi - lo, what, self._show))
                         if mine.shape[0] and finite else None)
                # The samples themselves travel only for the metrics that read them (modes,
                # stacked); the others need the features alone.
                whole = any(name in SAMPLE_METRICS for name in self._names)
                shares = all_gather_object((mine.cpu() if whole else None, feats, finite))
                ok = all(f for _, _, f in shares)
                fake = torch.cat([f for _, f, _ in shares if f is not None]) if ok else None
                if whole:
                    samples = torch.cat([x for x, _, _ in shares]).to(device)
                else:  # compute_metrics scores NaN for a diverged generator's samples
                    samples = mine if ok else torch.full((1,), math.nan)
                times["time_features"] = self._end(what, start)
                what = f"computing the metrics ({', '.join(self._names)})"
                start = self._begin(what)
                scores = compute_metrics(
                    samples, self._real, self._names, space=self.space, data=self.val,
                    kid_subsets=self.kid_subsets, seed=self.seed, device=device,
                    fake_features=fake)
                times["time_metrics"] = self._end(what, start)
            self._write_protocol(trainer, scores)
            # An undefined score (reverse KL with no high-quality sample yet) is left out
            # rather than reported as NaN, which would stop the run through FailOnNonFinite.
            result.update({k: v for k, v in scores.items() if math.isfinite(v)})
        times["time_total"] = time.perf_counter() - began
        if self._show:
            phases = ", ".join(f"{k[5:]} {v:.1f} s" for k, v in times.items()
                               if k != "time_total")
            print(f"evaluated iteration {iteration} in {times['time_total']:.1f} s ({phases})",
                  file=sys.stderr, flush=True)
        # Quick evaluations show their one summary line only from the second one on.
        self._brief = times["time_total"] < BRIEF_BELOW_S
        if self.timings:
            # Beside the scores, not among them (a best model's file keeps val/* scores).
            report({k[5:]: v for k, v in times.items()},
                   f"{self.prefix}_time" if self.prefix else "time")
        return result

    def _begin(self, what: str) -> float:
        """Say that a phase starts (with progress on, in a slow evaluation); its start time."""
        if self._show and not self._brief:
            print(f"{what} ...", file=sys.stderr, flush=True)
        return time.perf_counter()

    def _end(self, what: str, start: float) -> float:
        """Say that a phase ended and how long it took; those seconds."""
        seconds = time.perf_counter() - start
        if self._show and not self._brief:
            print(f"{what}: done ({seconds:.1f} s)", file=sys.stderr, flush=True)
        return seconds

    def _generate(self, gen: torch.nn.Module, n: int, part: tuple[int, int], batch_size: int,
                  device: torch.device, line: StepLine) -> Tensor:
        """Samples ``part`` of ``generate(gen, n, batch_size=batch_size)``: the same noise,
        run through ``gen`` at most ``self.batch_size`` at a time (fewer for large images,
        see ``bounded_batch``), into one preallocated tensor (bounded memory; ``line`` shows
        the progress)."""
        lo, hi = part
        step = bounded_batch(min(batch_size, self.batch_size), self.val.shape[1:])
        out: Tensor | None = None
        a = lo
        while a < hi:
            check_stop(uneven=True)
            b = min(hi, (a // batch_size + 1) * batch_size, (a // step + 1) * step)
            chunk = generate(gen, n, seed=self.seed, batch_size=batch_size, device=device,
                             part=(a, b))
            if out is None:
                out = chunk.new_empty((hi - lo, *chunk.shape[1:]))
            out[a - lo:b - lo] = chunk
            line.update(b - lo)
            a = b
        return out if out is not None else generate(gen, n, seed=self.seed, device=device,
                                                    part=part)

    def _features(self, x: Tensor, device: torch.device, line: StepLine) -> Tensor:
        """Features of ``x`` on the CPU, a feature batch at a time (``line`` shows them)."""
        assert self.space is not None
        step = self.space.batch_size
        out = []
        for a in range(0, x.shape[0], step):
            out.append(extract_features(self.space.features, x[a:a + step], step,
                                        device=device).cpu())
            line.update(min(a + step, x.shape[0]))
        return torch.cat(out)

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


#: an evaluation quicker than this (seconds) makes the next one print its summary line only
BRIEF_BELOW_S = 10.0

#: generate()'s default batch, which sets how the metrics' noise is drawn (as gankit eval's)
_GENERATE_BATCH = 1000


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
