import dataclasses
import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.gan.losses import LOSSES, GANLoss, get_loss

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
]


@pytest.mark.parametrize(("name", "real", "fake", "want_dis", "want_gen"), CASES)
def test_known_values(name, real, fake, want_dis, want_gen):
    loss = get_loss(name)
    r, f = torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64)
    assert loss.dis(r, f).item() == pytest.approx(want_dis, abs=1e-12)
    assert loss.gen(f).item() == pytest.approx(want_gen, abs=1e-12)


@pytest.mark.parametrize("name", list(LOSSES))
def test_any_shape_reduces_by_mean(name):
    loss = LOSSES[name]
    r = torch.randn(2, 3, 4, dtype=torch.float64)
    f = torch.randn(2, 3, 4, dtype=torch.float64)
    d, g = loss.dis(r, f), loss.gen(f)
    assert d.shape == () and g.shape == ()
    # Mean reduction: repeating the batch must not change the value.
    assert loss.dis(r.repeat(3, 1, 1), f.repeat(3, 1, 1)).item() == pytest.approx(
        d.item(), abs=1e-12
    )
    assert loss.gen(f.repeat(3, 1, 1)).item() == pytest.approx(g.item(), abs=1e-12)


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
        loss.gen(f).backward()
        assert (f.grad < 0).all(), loss.name


def test_registry_and_dataclass():
    assert list(LOSSES) == ["ns", "minimax", "hinge", "wgan", "lsgan"]
    assert all(isinstance(v, GANLoss) and v.name == k for k, v in LOSSES.items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        LOSSES["ns"].name = "other"


def test_unknown_loss():
    with pytest.raises(
        GankitError, match="unknown loss 'x'; choose one of: ns, minimax, hinge, wgan, lsgan"
    ):
        get_loss("x")
