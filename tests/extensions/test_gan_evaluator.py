"""GANEvaluator: held-out losses and metrics under val/, eval mode, EMA samples, RNG untouched."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gankit.data import ArrayDataset, load_dataset
from gankit.extensions import GANEvaluator, LogReport
from gankit.extensions.ema import EMA
from gankit.gan.updaters import GANUpdater
from gankit.metrics.scoring import FeatureSpace
from gankit.models import MLPDiscriminator
from gankit.training import Trainer, report_scope


class MixtureGen(nn.Module):
    """Draws from the ring8 mixture exactly, or collapses onto mode 0 when ``collapsed``."""

    def __init__(self, modes: torch.Tensor, sigma: float) -> None:
        super().__init__()
        self.register_buffer("modes", modes.clone())
        self.sigma = sigma
        self.scale = nn.Parameter(torch.ones(()))  # something for the optimizer to hold
        self.dropout = nn.Dropout(0.0)  # a submodule whose mode must come back
        self.collapsed = False
        self.n_classes = 0

    def sample_z(self, n: int, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, 3, device=device, generator=generator)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        k = self.modes.shape[0]
        idx = torch.zeros_like(z[:, 0], dtype=torch.long) if self.collapsed \
            else (z[:, 0] * k).long().clamp(max=k - 1)
        # Box-Muller: two uniforms -> one standard normal per coordinate pair.
        r = torch.sqrt(-2 * torch.log(z[:, 1].clamp(min=1e-12)))
        angle = 2 * math.pi * z[:, 2]
        noise = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1)
        return self.dropout(self.modes[idx] + self.sigma * noise * self.scale)


@pytest.fixture(scope="module")
def val() -> ArrayDataset:
    return load_dataset("ring8", "val")


def _trainer(val: ArrayDataset, tmp_path: Path, ema: bool = False) -> Trainer:
    torch.manual_seed(0)
    gen = MixtureGen(val.modes, val.sigma)
    dis = MLPDiscriminator(2, 16)
    loader = [val.x[:32]]
    updater = GANUpdater(gen, dis, torch.optim.Adam(gen.parameters()),
                         torch.optim.Adam(dis.parameters()), loader)
    trainer = Trainer(updater, (1, "iteration"), tmp_path)
    if ema:
        trainer.extend(EMA(gen, 0.9))
    return trainer


def _evaluate(ev: GANEvaluator, trainer: Trainer) -> dict[str, float]:
    observation: dict[str, object] = {}
    with report_scope(observation):
        ev(trainer)
    return {k: float(v) for k, v in observation.items()}


def test_reports_losses_and_point_metrics(val: ArrayDataset, tmp_path: Path) -> None:
    trainer = _trainer(val, tmp_path)
    out = _evaluate(GANEvaluator(val, n=600, kid_subsets=3), trainer)
    assert set(out) == {"val/gen/loss", "val/dis/loss", "val/fid", "val/kid", "val/precision",
                        "val/recall", "val/modes", "val/hq", "val/rkl"}
    assert all(math.isfinite(v) for v in out.values())
    assert out["val/modes"] == 8 and out["val/hq"] > 0.95 and out["val/fid"] < 0.02
    # The discriminator is untrained (outputs near 0), so the ns losses sit near their
    # chance values: -log(1/2) for the generator, twice that for the discriminator.
    assert out["val/gen/loss"] == pytest.approx(math.log(2), abs=0.1)
    assert out["val/dis/loss"] == pytest.approx(2 * math.log(2), abs=0.2)


def test_losses_only_and_chosen_metrics(val: ArrayDataset, tmp_path: Path) -> None:
    trainer = _trainer(val, tmp_path)
    assert set(_evaluate(GANEvaluator(val, metrics=(), n=100), trainer)) == {
        "val/gen/loss", "val/dis/loss"}
    out = _evaluate(GANEvaluator(val, metrics=["modes"], n=100, prefix="test"), trainer)
    assert set(out) == {"test/gen/loss", "test/dis/loss", "test/modes", "test/hq", "test/rkl"}


def test_modes_grad_and_rng_are_restored(val: ArrayDataset, tmp_path: Path) -> None:
    trainer = _trainer(val, tmp_path)
    gen = trainer.updater.raw_models["gen"]
    gen.dropout.eval()  # a mix of modes inside one model
    before = [m.training for m in gen.modules()]
    rng = torch.get_rng_state()
    seen = []
    original = gen.forward

    def spy(z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        seen.append((gen.training, torch.is_grad_enabled()))
        return original(z, y)

    gen.forward = spy  # type: ignore[method-assign]
    ev = GANEvaluator(val, n=200, kid_subsets=2)
    first = _evaluate(ev, trainer)
    assert seen and all(s == (False, False) for s in seen)
    assert [m.training for m in gen.modules()] == before
    assert torch.is_grad_enabled()
    assert torch.equal(torch.get_rng_state(), rng)  # training noise is not consumed
    assert _evaluate(ev, trainer) == first  # same noise every time: scores move with weights


def test_metrics_come_from_the_ema_generator(val: ArrayDataset, tmp_path: Path) -> None:
    trainer = _trainer(val, tmp_path, ema=True)
    trainer.updater.raw_models["gen"].collapsed = True  # the training generator collapses
    out = _evaluate(GANEvaluator(val, n=400, kid_subsets=2), trainer)
    assert out["val/modes"] == 8  # the EMA copy, made before, still covers every mode
    trainer.extensions["EMA"].average.collapsed = True
    out = _evaluate(GANEvaluator(val, n=400, kid_subsets=2), trainer)
    assert out["val/modes"] == 1 and out["val/rkl"] == pytest.approx(math.log(8))


def test_undefined_scores_are_left_out(val: ArrayDataset, tmp_path: Path) -> None:
    trainer = _trainer(val, tmp_path)
    trainer.updater.raw_models["gen"].modes.add_(10.0)  # every sample far from every mode
    out = _evaluate(GANEvaluator(val, metrics=["modes"], n=100), trainer)
    assert out["val/hq"] == 0 and "val/rkl" not in out  # NaN would stop the run


def test_features_are_built_once(val: ArrayDataset, tmp_path: Path) -> None:
    calls = []

    def features(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return x

    trainer = _trainer(val, tmp_path)
    ev = GANEvaluator(val, metrics=["fid"], n=300, n_real=500,
                      features=FeatureSpace(features, "counting"))
    _evaluate(ev, trainer)
    _evaluate(ev, trainer)
    assert calls == [500, 300, 300]  # real features once, then the samples each time


def test_needs_a_gan_updater(make_trainer, val: ArrayDataset) -> None:
    with pytest.raises(TypeError, match="GANUpdater"):
        _evaluate(GANEvaluator(val, metrics=(), n=10), make_trainer())


def test_in_a_training_run_the_log_gets_the_values(val: ArrayDataset, tmp_path: Path) -> None:
    trainer = _trainer(val, tmp_path)
    trainer.stop_trigger = Trainer(trainer.updater, (4, "iteration")).stop_trigger
    ev = GANEvaluator(val, metrics=["fid"], n=100)
    trainer.extend(ev, trigger=(2, "iteration"))
    trainer.extend(LogReport(trigger=(2, "iteration"), filename=None))
    trainer.run()
    log = trainer.get_extension("LogReport").log
    assert [e["iteration"] for e in log] == [2, 4]
    assert all({"val/fid", "val/gen/loss", "val/dis/loss"} <= set(e) for e in log)


def test_a_share_of_generate_is_that_slice_of_all_of_it():
    from gankit.gan.sampling import generate
    from gankit.models import DCGANGenerator

    torch.manual_seed(0)
    gen = DCGANGenerator(8, (1, 8, 8), 4, n_classes=3)
    whole = generate(gen, 7, seed=3, batch_size=3)
    # Shares cut at the batches' edges run the same batches: bitwise the same samples.
    parts = [generate(gen, 7, seed=3, batch_size=3, part=p) for p in [(0, 3), (3, 6), (6, 7)]]
    assert torch.equal(torch.cat(parts), whole)
    # Others run smaller batches of the same noise and labels (float kernels may differ).
    parts = [generate(gen, 7, seed=3, batch_size=3, part=p) for p in [(0, 2), (2, 5), (5, 7)]]
    torch.testing.assert_close(torch.cat(parts), whole)
    assert generate(gen, 7, seed=3, part=(7, 7)).shape == (0, 1, 8, 8)
