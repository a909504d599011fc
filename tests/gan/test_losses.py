import dataclasses
import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.gan.losses import LOSSES, SEPARABLE_LOSSES, GANLoss, Loss, RelativisticLoss, get_loss

LN2 = math.log(2.0)


def sp(x: float) -> float:
    """softplus by hand, for expected values."""
    return math.log1p(math.exp(x))


# (loss, real logits, fake logits, expected dis, expected gen), worked out by hand.
CASES = [
    ("ns", [0.0, 0.0], [0.0, 0.0], 2 * LN2, LN2),
    ("ns", [2.0], [-1.0], sp(-2.0) + sp(-1.0), sp(1.0)),
    ("minimax", [0.0], [0.0], 2 * LN2, -LN2),
    ("minimax", [2.0], [-1.0], sp(-2.0) + sp(-1.0), -sp(-1.0)),
    ("hinge", [0.5, 2.0], [-2.0, 0.5], 0.25 + 0.75, 0.75),
    ("hinge", [0.0], [0.0], 2.0, 0.0),
    ("wgan", [1.0, 3.0], [0.0, 2.0], 1.0 - 2.0, -1.0),
    ("lsgan", [1.0, 3.0], [0.0, 2.0], 0.5 * (2.0 + 2.0), 0.5),
    ("lsgan", [1.0], [0.0], 0.0, 0.5),
    # relativistic pairs: D softplus(f - r), G softplus(r - f)
    ("rpgan", [0.0, 0.0], [0.0, 0.0], LN2, LN2),
    ("rpgan", [2.0], [-1.0], sp(-3.0), sp(3.0)),
    ("rpgan", [1.0, -1.0], [0.0, 1.0], (sp(-1.0) + sp(2.0)) / 2, (sp(1.0) + sp(-2.0)) / 2),
]


@pytest.mark.parametrize(("name", "real", "fake", "want_dis", "want_gen"), CASES)
def test_known_values(name, real, fake, want_dis, want_gen):
    loss = get_loss(name)
    r, f = torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64)
    assert loss.dis(r, f).item() == pytest.approx(want_dis, abs=1e-12)
    assert loss.gen(f, r).item() == pytest.approx(want_gen, abs=1e-12)


@pytest.mark.parametrize("name", list(LOSSES))
def test_any_shape_reduces_by_mean(name):
    loss = LOSSES[name]
    r = torch.randn(2, 3, 4, dtype=torch.float64)
    f = torch.randn(2, 3, 4, dtype=torch.float64)
    d, g = loss.dis(r, f), loss.gen(f, r)
    assert d.shape == () and g.shape == ()
    # Mean reduction: repeating the batch must not change the value.
    assert loss.dis(r.repeat(3, 1, 1), f.repeat(3, 1, 1)).item() == pytest.approx(
        d.item(), abs=1e-12
    )
    assert loss.gen(f.repeat(3, 1, 1), r.repeat(3, 1, 1)).item() == pytest.approx(
        g.item(), abs=1e-12
    )


@pytest.mark.parametrize("name", ["ns", "minimax"])
def test_sigmoid_losses_are_stable_for_huge_logits(name):
    loss = get_loss(name)
    big = torch.tensor([200.0, -200.0], requires_grad=True)
    d = loss.dis(big, -big)
    g = loss.gen(big)
    d.backward(retain_graph=True)
    assert torch.isfinite(d) and torch.isfinite(g)
    assert torch.isfinite(big.grad).all()
    # softplus(200) = 200 exactly in float32; log(sigmoid(-200)) would give -inf instead.
    assert d.item() == pytest.approx(200.0)


def test_generator_gradient_sign():
    # Every generator loss must push the critic's score of fakes up.
    for loss in LOSSES.values():
        f = torch.zeros(4, requires_grad=True)
        loss.gen(f, torch.zeros(4)).backward()
        assert (f.grad < 0).all(), loss.name


def test_registry_and_dataclass():
    assert list(LOSSES) == ["ns", "minimax", "hinge", "wgan", "lsgan", "rpgan"]
    assert all(isinstance(v, Loss) and v.name == k for k, v in LOSSES.items())
    assert list(SEPARABLE_LOSSES) == ["ns", "minimax", "hinge", "wgan", "lsgan"]
    assert all(isinstance(v, GANLoss) and not v.pairs_real for v in SEPARABLE_LOSSES.values())
    assert LOSSES["rpgan"].pairs_real
    with pytest.raises(dataclasses.FrozenInstanceError):
        SEPARABLE_LOSSES["ns"].name = "other"  # type: ignore[misc]


def test_separable_generator_losses_ignore_the_real_outputs():
    f, r = torch.randn(5), torch.randn(5)
    for loss in SEPARABLE_LOSSES.values():
        assert torch.equal(loss.gen(f), loss.gen(f, r)), loss.name


def test_relativistic_loss_against_the_formula_on_random_logits():
    g = torch.Generator().manual_seed(3)
    r = torch.randn(64, 1, generator=g, dtype=torch.float64) * 3
    f = torch.randn(64, 1, generator=g, dtype=torch.float64) * 3
    loss = RelativisticLoss()
    want_d = sum(sp(float(b - a)) for a, b in zip(r.flatten(), f.flatten(), strict=True)) / 64
    want_g = sum(sp(float(a - b)) for a, b in zip(r.flatten(), f.flatten(), strict=True)) / 64
    assert loss.dis(r, f).item() == pytest.approx(want_d, rel=1e-12)
    assert loss.gen(f, r).item() == pytest.approx(want_g, rel=1e-12)
    # pairing, not batch means: shuffling the fakes against the reals changes the value
    assert loss.dis(r, f.flip(0)).item() != pytest.approx(want_d, rel=1e-6)


def test_relativistic_loss_needs_paired_outputs():
    loss = get_loss("rpgan")
    with pytest.raises(GankitError, match="pairs each fake with a real"):
        loss.gen(torch.zeros(4))
    with pytest.raises(GankitError, match="shapes differ"):
        loss.dis(torch.zeros(4), torch.zeros(3))


def test_unknown_loss():
    with pytest.raises(
        GankitError, match="unknown loss 'x'; choose one of: ns, minimax, hinge, wgan, lsgan, rpgan"
    ):
        get_loss("x")
