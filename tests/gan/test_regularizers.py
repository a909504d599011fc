"""LeCam and bCR: their values on known inputs, and as GANUpdater options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gankit
from gankit.gan.regularizers import LeCamAnchors, bcr_penalty, lecam_penalty
from gankit.gan.terms import BCR, LeCam
from gankit.gan.updaters import GANUpdater
from testsupport import TinyG


def test_lecam_penalty_on_known_inputs() -> None:
    real = torch.tensor([1.0, 2.0, -1.0])
    fake = torch.tensor([-1.0, 0.5, 3.0])
    # relu(real - 0)^2 = [1, 4, 0] -> 5/3; relu(0.5 - fake)^2 = [2.25, 0, 0] -> 0.75
    value = lecam_penalty(real, fake, torch.tensor(0.5), torch.tensor(0.0))
    assert value.item() == pytest.approx(5 / 3 + 0.75)


def test_lecam_anchors_start_at_the_first_batch_then_move_at_decay_099() -> None:
    lecam = LeCamAnchors()
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    value = lecam(real, fake)  # anchors: real 2, fake -1
    assert (lecam.anchor_real.item(), lecam.anchor_fake.item()) == (2.0, -1.0)
    # relu([1, 3] + 1)^2 = [4, 16] -> 10; relu(2 - [-2, 0])^2 = [16, 4] -> 10
    assert value.item() == pytest.approx(20.0)
    lecam(torch.tensor([4.0]), torch.tensor([1.0]))
    assert lecam.anchor_real.item() == pytest.approx(0.99 * 2 + 0.01 * 4)
    assert lecam.anchor_fake.item() == pytest.approx(0.99 * -1 + 0.01 * 1)
    other = LeCamAnchors()
    other.load_state_dict(lecam.state_dict())
    assert other.started and torch.equal(other.anchor_real, lecam.anchor_real)


def test_lecam_gradient_goes_to_the_outputs_only() -> None:
    real = torch.tensor([3.0], requires_grad=True)
    fake = torch.tensor([-3.0], requires_grad=True)
    lecam = LeCamAnchors()
    lecam(torch.tensor([0.0]), torch.tensor([0.0]))  # anchors at 0
    lecam.decay = 1.0 - 1e-12  # keep them there for this check
    lecam(real, fake).backward()
    assert real.grad.item() == pytest.approx(2 * 3.0)  # d/dr relu(r - 0)^2
    assert fake.grad.item() == pytest.approx(-2 * 3.0)  # d/df relu(0 - f)^2


def test_bcr_penalty_of_a_linear_d_under_a_shift() -> None:
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])

    def dis(x: torch.Tensor) -> torch.Tensor:
        return (w * x).flatten(1).sum(1, keepdim=True)

    x = torch.randn(5, 2, 2)
    # D(x) - D(x + 1) = -sum(w) = -2.5 for every sample: ||.||^2 = 6.25
    value = bcr_penalty(dis, x, dis(x), lambda t: t + 1.0)
    assert value.item() == pytest.approx(6.25)
    assert bcr_penalty(dis, x, dis(x), lambda t: t).item() == 0.0


class LinD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1, 1, 16))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(x.detach())
        return (x.flatten(1) * self.w).sum(1)


def _updater(**kw) -> GANUpdater:
    gen, dis = TinyG(), LinD()
    data = torch.rand(32, 1, 4, 4) * 2 - 1
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    return GANUpdater(gen, dis, torch.optim.SGD(gen.parameters(), 0.0),
                      torch.optim.SGD(dis.parameters(), 0.0), loader, **kw)


def test_updater_adds_lecam_and_bcr_to_the_d_loss_and_reports_them() -> None:
    torch.manual_seed(0)
    plain = _updater()
    torch.manual_seed(0)
    reg = _updater(dis_terms=[LeCam(0.5), BCR(2.0, transform=lambda t: t + 1.0)])
    seen: list[dict] = []
    for u in (plain, reg):
        obs: dict = {}
        torch.manual_seed(1)
        with gankit.training.reporter.report_scope(obs):
            u.update()
        seen.append(obs)
    base, got = seen
    # LinD under t -> t + 1 changes by sum(w) = 0: bCR and its gradient are 0.
    assert got["dis/bcr"].item() == pytest.approx(0.0, abs=1e-10)
    assert got["dis/loss"].item() == pytest.approx(base["dis/loss"].item())  # the GAN loss
    # LeCam on the first batch (anchors = its means) adds 0.5·dR/dw to D's gradient.
    dis = reg.raw_models["dis"]
    real, fake = dis.seen[0], dis.seen[1]
    w = dis.w.detach().clone().requires_grad_(True)
    r, f = (real.flatten(1) * w).sum(1), (fake.flatten(1) * w).sum(1)
    value = lecam_penalty(r, f, r.mean().detach(), f.mean().detach())
    assert got["dis/lecam"].item() == pytest.approx(value.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(0.5 * value, w)
    extra = dis.w.grad - plain.raw_models["dis"].w.grad
    assert grad.abs().sum() > 0
    assert torch.allclose(extra, grad, atol=1e-6)
    state = reg.state_dict()
    assert set(state["terms"]["dis/lecam"]) == {"anchor_real", "anchor_fake", "started"}
    fresh = _updater(dis_terms=[LeCam(0.5)])
    fresh.load_state_dict(state)
    anchors = fresh.terms["dis"][0].anchors  # type: ignore[attr-defined]
    assert torch.equal(anchors.anchor_real, reg.terms["dis"][0].anchors.anchor_real)
    with pytest.raises(ValueError, match="no state of the dis/lecam term"):
        fresh.load_state_dict(plain.state_dict())


def test_updater_bcr_value_with_a_known_transform() -> None:
    class SumD(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.s = nn.Parameter(torch.ones(()))
            self.seen: list[torch.Tensor] = []

        def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
            self.seen.append(x.detach())
            return self.s * x.flatten(1).sum(1)

    gen, dis = TinyG(), SumD()
    loader = torch.utils.data.DataLoader(torch.zeros(16, 1, 4, 4), batch_size=16)
    u = GANUpdater(gen, dis, torch.optim.SGD(gen.parameters(), 0.0),
                   torch.optim.SGD(dis.parameters(), 0.0), loader,
                   dis_terms=[BCR(10.0, transform=lambda t: 2 * t)])
    obs: dict = {}
    with gankit.training.reporter.report_scope(obs):
        u.update()
    # D sees real, fake, 2·real, 2·fake (bCR), then fake (G step). Reals are 0: no real term;
    # for fakes f, (D(f) - D(2f))^2 = D(f)^2.
    fake = dis.seen[1]
    assert torch.equal(dis.seen[3], 2 * fake)
    want = fake.flatten(1).sum(1).pow(2).mean()
    assert obs["dis/bcr"].item() == pytest.approx(want.item(), rel=1e-5)
