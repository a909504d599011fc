"""VAE-GAN: the encoder, the KL term, gradient routing of the three losses, the evaluator."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from gankit.gan.vaegan import (
    ConvEncoder,
    ReconstructionEvaluator,
    VAEGANUpdater,
    kl_normal,
    reconstruct,
)
from gankit.models import DCGANDiscriminator, DCGANGenerator
from gankit.training import Trainer
from gankit.training.reporter import report_scope

Z = 4


def make_updater(lr: float = 1e-3, gamma: float = 0.5, n_batches: int = 2,
                 cls: type[VAEGANUpdater] = VAEGANUpdater) -> VAEGANUpdater:
    torch.manual_seed(0)
    enc, dec = ConvEncoder(Z, (1, 8, 8), 4), DCGANGenerator(Z, (1, 8, 8), 4)
    dis = DCGANDiscriminator((1, 8, 8), 4, norm="layer")
    batches = [torch.rand(6, 1, 8, 8) * 2 - 1 for _ in range(n_batches)]
    opts = [torch.optim.Adam(m.parameters(), lr) for m in (enc, dec, dis)]
    return cls(enc, dec, dis, *opts, batches, gamma=gamma)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (1, 28, 28)])
def test_encoder_gives_mu_and_logvar(shape: tuple[int, int, int]) -> None:
    mu, logvar = ConvEncoder(5, shape, 4)(torch.randn(3, *shape))
    assert mu.shape == logvar.shape == (3, 5)


@pytest.mark.parametrize(("mu", "logvar"), [(0.0, 0.0), (1.0, 0.0), (0.5, -1.0), (-2.0, 1.5)])
def test_kl_matches_torch_distributions(mu: float, logvar: float) -> None:
    m, lv = torch.full((2, 3), mu), torch.full((2, 3), logvar)
    q = torch.distributions.Normal(m, (0.5 * lv).exp())
    p = torch.distributions.Normal(torch.zeros_like(m), torch.ones_like(m))
    expected = torch.distributions.kl_divergence(q, p).sum(1).mean()
    assert kl_normal(m, lv).item() == pytest.approx(expected.item(), abs=1e-6)


class RecordingUpdater(VAEGANUpdater):
    """Before stepping, records d(loss)/d(params) of every loss for every network."""

    def step_all(self, losses: Any, *, retain_graph: bool = False) -> None:
        self.grads = {
            (loss_name, net): torch.autograd.grad(
                loss, list(model.parameters()), retain_graph=True, allow_unused=True)
            for loss_name, loss in losses.items() for net, model in self.raw_models.items()
        }
        super().step_all(losses, retain_graph=retain_graph)


def test_each_loss_reaches_only_its_own_network() -> None:
    u = make_updater(cls=RecordingUpdater)
    u.update()
    for name, model in u.raw_models.items():
        # What the step left in .grad is exactly the gradient of this network's own loss.
        for p, g in zip(model.parameters(), u.grads[(name, name)], strict=True):
            torch.testing.assert_close(p.grad, torch.zeros_like(p) if g is None else g)
    # The decoder's and the encoder's losses do depend on the discriminator (through its
    # features and logits): routing is what kept them out of its gradient.
    for loss_name in ("enc", "dec"):
        assert any(g is not None and g.abs().sum() > 0 for g in u.grads[(loss_name, "dis")])


def test_update_trains_all_three_and_reports_finite_values() -> None:
    u = make_updater()
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in u.raw_models.items()}
    obs: dict[str, Any] = {}
    with report_scope(obs):
        u.update()
    assert set(obs) == {"enc/kl", "enc/llike", "dec/loss", "dec/gan", "dis/loss"}
    assert all(torch.isfinite(torch.as_tensor(v)) for v in obs.values())
    for name, model in u.raw_models.items():
        changed = any(not torch.equal(a, p) for a, p in zip(before[name], model.parameters(),
                                                            strict=True))
        assert changed, name


def test_negative_gamma_is_refused() -> None:
    with pytest.raises(ValueError, match="gamma"):
        make_updater(gamma=-1.0)


def test_evaluator_reports_pixel_mse_of_the_mean_reconstruction(tmp_path: Any) -> None:
    u = make_updater()
    val = torch.rand(10, 1, 8, 8) * 2 - 1
    trainer = Trainer(u, (1, "iteration"), out=tmp_path)
    enc, dec = u.raw_models["enc"], u.raw_models["dec"]
    enc.train()
    obs: dict[str, Any] = {}
    with report_scope(obs):
        ReconstructionEvaluator([val[:5], val[5:]])(trainer)
    expected = F.mse_loss(reconstruct(enc, dec, val), val).item()
    assert float(obs["val/rec"]) == pytest.approx(expected, rel=1e-5)
    assert float(obs["val/kl"]) >= 0
    assert enc.training  # the evaluator gave the model its mode back


def test_reconstruct_restores_modes() -> None:
    enc, dec = ConvEncoder(Z, (1, 8, 8), 4), DCGANGenerator(Z, (1, 8, 8), 4).eval()
    out = reconstruct(enc, dec, torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 1, 8, 8) and enc.training and not dec.training
