"""Terms: each penalty against autograd by hand, the interval and its optimizer rescale, the
checks, the registry, the relativistic loss inside the step, a scheduled weight."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.gan import GP, R1, R2, TERMS, DisStep, DisTerm, GANUpdater, LeCam, register_term
from gankit.training.reporter import report_scope
from gankit.training.schedules import Ramp
from testsupport import TinyG


class LinD(nn.Module):
    """D(x) = sum(w * x)² / 2 per sample: its input gradient is w * D-linear part, known."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1, 1, 16))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return 0.5 * (x.flatten(1) * self.w).sum(1).pow(2)


def _updater(**kw: Any) -> GANUpdater:
    data = torch.rand(32, 1, 4, 4) * 2 - 1
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    gen, dis = TinyG(), LinD()
    return GANUpdater(gen, dis, torch.optim.Adam(gen.parameters(), 1e-3),
                      torch.optim.Adam(dis.parameters(), 1e-3), loader, **kw)


def _step(updater: GANUpdater) -> dict[str, torch.Tensor]:
    obs: dict[str, torch.Tensor] = {}
    with report_scope(obs):
        updater.update()
    return obs


def _by_hand(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """E||d/dx 0.5 (w·x)²||² = E[(w·x)² ||w||²]."""
    s = (x.flatten(1) * w).sum(1)
    return (s.pow(2) * w.pow(2).sum()).mean()


def test_r1_and_r2_values_and_their_gradient_into_d() -> None:
    torch.manual_seed(0)
    plain = _updater()
    torch.manual_seed(0)
    both = _updater(dis_terms=[R1(0.4), R2(0.6)])
    torch.manual_seed(1)
    base = _step(plain)
    torch.manual_seed(1)
    got = _step(both)
    assert got["dis/loss"].item() == pytest.approx(base["dis/loss"].item())
    real, fake = both.raw_models["dis"].seen[:2]  # what D saw in its step
    w0 = torch.linspace(-1, 1, 16).requires_grad_(True)
    assert got["dis/r1"].item() == pytest.approx(_by_hand(real, w0).item(), rel=1e-5)
    assert got["dis/r2"].item() == pytest.approx(_by_hand(fake, w0).item(), rel=1e-5)
    # The penalties' own gradient in D is what the optimizer got on top of the GAN loss.
    (want,) = torch.autograd.grad(0.2 * _by_hand(real, w0) + 0.3 * _by_hand(fake, w0), w0)
    extra = both.raw_models["dis"].w.grad - plain.raw_models["dis"].w.grad
    assert want.abs().sum() > 0
    assert torch.allclose(extra, want, atol=1e-5)


def test_gp_is_one_at_a_unit_gradient() -> None:
    class Lin(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
            return x.flatten(1).sum(1) / 4.0  # 16 inputs of gradient 1/4: a unit norm

    term = GP(10.0)
    x, f = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    step = DisStep(x, f, x, f, x.sum(), f.sum(), None, None, Lin(), lambda t: t)
    assert term.value(step).item() == pytest.approx(0.0, abs=1e-12)  # ||grad|| = 1 exactly
    assert term.coefficient(_updater()) == 10.0


def test_a_lazy_term_is_scaled_by_its_interval_and_rescales_the_optimizer_once() -> None:
    torch.manual_seed(0)
    u = _updater(dis_terms=[R1(1.0, every=4)])
    group = u.optimizers["dis"].param_groups[0]
    assert group["lr"] == pytest.approx(1e-3 * 4 / 5)
    assert group["betas"][1] == pytest.approx(0.999 ** (4 / 5))
    assert u.optimizers["gen"].param_groups[0]["lr"] == 1e-3  # the other network untouched
    assert u.terms["dis"][0].coefficient(u) == 0.5 * 4
    reported = ["dis/r1" in _step(u) for _ in range(5)]
    assert reported == [True, False, False, False, True]
    with pytest.raises(GankitError, match="must share one interval"):
        _updater(dis_terms=[R1(1.0, every=4), R2(1.0, every=2)])


def test_term_checks() -> None:
    with pytest.raises(GankitError, match="twice"):
        _updater(dis_terms=[R1(1.0), R1(2.0)])
    with pytest.raises(GankitError, match="is not a GenTerm"):
        _updater(gen_terms=[R1(1.0)])  # type: ignore[list-item]
    with pytest.raises(GankitError, match="r1 weight must be a number"):
        R1(-1.0)
    with pytest.raises(GankitError, match="interval must be a whole number"):
        LeCam(1.0, every=0)


def test_a_scheduled_weight_follows_the_iteration() -> None:
    torch.manual_seed(0)
    u = _updater(dis_terms=[R1(Ramp(2.0, 0.0, 4, shape="linear"))])
    term = u.terms["dis"][0]
    coefficients = []
    for _ in range(5):
        coefficients.append(term.coefficient(u))
        _step(u)
    assert coefficients == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_a_new_term_is_one_class_and_a_registration() -> None:
    @register_term
    class MeanOut(DisTerm):
        name = "test_mean_out"

        def value(self, step: DisStep) -> torch.Tensor:
            return step.real_out.mean() ** 2

    try:
        assert TERMS["test_mean_out"] is MeanOut
        with pytest.raises(GankitError, match="registered already"):
            register_term(type("Other", (DisTerm,), {"name": "test_mean_out"}))
        torch.manual_seed(0)
        obs = _step(_updater(dis_terms=[MeanOut(0.5)]))
        assert "dis/test_mean_out" in obs
    finally:
        del TERMS["test_mean_out"]


def test_the_relativistic_loss_pairs_the_generator_step_with_reals() -> None:
    torch.manual_seed(0)
    u = _updater(loss="rpgan")
    calls: list[int] = []
    dis = u.raw_models["dis"]
    dis.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    obs = _step(u)
    assert len(calls) == 4  # D step: real, fake; G step: fake, then real
    assert torch.isfinite(obs["gen/loss"]) and torch.isfinite(obs["dis/loss"])
    assert _updater().loss.pairs_real is False
