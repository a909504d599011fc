import pytest
import torch
from torch import nn

from gankit.gan.penalties import gradient_penalty, r1_penalty, r2_penalty
from gankit.models.layers import apply_spectral_norm


def linear_critic(w: torch.Tensor):
    return lambda x: (w * x).flatten(1).sum(1)


@pytest.mark.parametrize("target", [1.0, 0.0, 2.5])
@pytest.mark.parametrize("scale", [0.3, 1.0, 3.0])
def test_gradient_penalty_of_linear_critic_is_exact(target, scale):
    torch.manual_seed(0)
    w = scale * torch.randn(1, 3, 4, 4, dtype=torch.float64)
    real = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    fake = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    gp = gradient_penalty(linear_critic(w), real, fake, target=target)
    want = (w.norm() - target) ** 2
    assert gp.item() == pytest.approx(want.item(), rel=1e-9, abs=1e-9)


def test_gradient_penalty_interpolates_per_sample():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.pow(2).flatten(1).sum(1)

    real = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    fake = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    gradient_penalty(critic, real, fake)
    (x_hat,) = seen
    # x_hat = a * real + (1 - a) * fake, with one a per sample in [0, 1].
    a = ((x_hat - fake) / (real - fake)).flatten(1)
    assert torch.allclose(a, a[:, :1].expand_as(a), atol=1e-8)
    assert ((a >= 0) & (a <= 1)).all()
    assert a[:, 0].std() > 0  # not a single shared weight


def test_gradient_penalty_uses_global_rng():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 1))
    real, fake = torch.randn(4, 2, 2, 2), torch.randn(4, 2, 2, 2)
    torch.manual_seed(3)
    a = gradient_penalty(critic, real, fake)
    torch.manual_seed(3)
    b = gradient_penalty(critic, real, fake)
    c = gradient_penalty(critic, real, fake)
    assert a.item() == b.item()
    assert a.item() != c.item()


def test_r1_matches_analytic_value():
    a = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    out = (a * x**2).sum(1)
    # d/dx sum(a x^2) = 2 a x, so the squared norm per sample is sum(4 a^2 x^2).
    want = (4 * a**2 * x.detach() ** 2).sum(1).mean()
    assert r1_penalty(out, x).item() == pytest.approx(want.item(), rel=1e-12)
    x2 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    want2 = (4 * a**2 * x2.detach() ** 2).sum(1).mean()
    assert r2_penalty((a * x2**2).sum(1), x2).item() == pytest.approx(want2.item(), rel=1e-12)


@pytest.mark.parametrize("fn", [r1_penalty, r2_penalty])
def test_r1_needs_input_requiring_grad(fn):
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match=r"requires_grad_\(True\)"):
        fn(x.sum(1), x)


def _nonlinear_critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))


@pytest.mark.parametrize("kind", ["gp", "r1", "r2"])
def test_penalties_are_differentiable_wrt_critic_params(kind):
    critic = _nonlinear_critic()
    x = torch.randn(5, 3, 2, 2, requires_grad=kind != "gp")
    if kind == "gp":
        pen = gradient_penalty(critic, x, torch.randn(5, 3, 2, 2))
    else:
        pen = (r1_penalty if kind == "r1" else r2_penalty)(critic(x), x)
    pen.backward()
    # Weights shape the input gradient; the output bias does not, so it may get no grad.
    for p in (critic[1].weight, critic[1].bias, critic[3].weight):
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert critic[1].weight.grad.abs().sum() > 0


def test_gradient_penalty_finite_for_flat_critic():
    # A zero gradient must not turn into NaN through the sqrt's derivative.
    w = torch.zeros(1, 4, requires_grad=True)
    gp = gradient_penalty(lambda x: (w * x).sum(1), torch.randn(3, 4), torch.randn(3, 4))
    gp.backward()
    assert gp.item() == 1.0
    assert torch.isfinite(w.grad).all()


@pytest.mark.parametrize(
    "layer", [nn.Linear(20, 10), nn.Conv2d(3, 6, 3), nn.ConvTranspose2d(4, 5, 4, 2, 1)]
)
def test_spectral_norm_bounds_top_singular_value(layer):
    torch.manual_seed(0)
    with torch.no_grad():
        layer.weight.mul_(10.0)
    net = nn.Sequential(layer, nn.Identity())
    assert apply_spectral_norm(net) is net
    net.train()
    x = torch.randn(2, *((20,) if isinstance(layer, nn.Linear) else (layer.in_channels, 6, 6)))
    for _ in range(30):  # each train-mode forward runs one power iteration
        net(x)
    w = layer.weight.detach()
    # ConvTranspose keeps output channels in dim 1; spectral_norm normalises that matrix.
    mat = w.transpose(0, 1).flatten(1) if isinstance(layer, nn.ConvTranspose2d) else w.flatten(1)
    sigma = torch.linalg.matrix_norm(mat, ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.02)


def test_apply_spectral_norm_is_selective_and_idempotent():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 1))
    apply_spectral_norm(net)
    apply_spectral_norm(net)
    p = torch.nn.utils.parametrize
    assert p.is_parametrized(net[0], "weight") and p.is_parametrized(net[3], "weight")
    assert len(net[0].parametrizations.weight) == 1
    assert not p.is_parametrized(net[1])
