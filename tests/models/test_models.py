import pytest
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.gan.losses import get_loss
from gankit.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    image_levels,
)

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)]


def labels(n: int, n_classes: int) -> torch.Tensor | None:
    return torch.arange(n) % n_classes if n_classes else None


@pytest.mark.parametrize(
    ("side", "want"),
    [
        (6, (3, 1)),
        (8, (4, 1)),
        (12, (3, 2)),
        (14, (7, 1)),
        (28, (7, 2)),
        (56, (7, 3)),
        (64, (4, 4)),
        (10, (5, 1)),
    ],
)
def test_image_levels(side, want):
    s0, k = image_levels((1, side, side))
    assert (s0, k) == want and s0 * 2**k == side


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((1, 9, 9), "not supported"),  # odd: no halving step
        ((1, 4, 4), "not supported"),  # 4 = 2 * 2, s0 too small
        ((1, 22, 22), "not supported"),  # 22 = 11 * 2, s0 too big
        ((3, 8, 16), "not supported"),  # not square
        ((8, 8), "channels, height, width"),
        ((0, 8, 8), "channels, height, width"),
    ],
)
def test_bad_shapes_raise(shape, match):
    with pytest.raises(GankitError, match=match):
        DCGANGenerator(shape=shape)
    with pytest.raises(GankitError, match=match):
        DCGANDiscriminator(shape=shape)


@pytest.mark.parametrize("n_classes", [0, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_dcgan_shapes_and_range(shape, n_classes):
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=16, shape=shape, base=8, n_classes=n_classes)
    d = DCGANDiscriminator(shape=shape, base=8, n_classes=n_classes)
    assert (g.z_dim, g.n_classes, g.shape) == (16, n_classes, shape)
    y = labels(4, n_classes)
    x = g(g.sample_z(4), y)
    assert x.shape == (4, *shape)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    out = d(x, y)
    assert out.shape == (4,)
    s0, k = image_levels(shape)
    feats = d.features(x)
    assert feats.shape == (4, d.feature_dim)
    assert d.feature_dim == min(8 * 2 ** (k - 1), 64) * s0 * s0


def test_default_sizes_on_digits():
    g, d = DCGANGenerator(), DCGANDiscriminator()
    x = g(g.sample_z(5))
    assert x.shape == (5, 1, 8, 8) and d(x).shape == (5,)
    assert d.features(x).shape == (5, 64 * 4 * 4)


@pytest.mark.parametrize("norm", ["batch", "none", "spectral", "layer"])
def test_discriminator_norms(norm):
    d = DCGANDiscriminator(shape=(1, 16, 16), base=8, norm=norm)
    kinds = {type(m) for m in d.modules()}
    assert (nn.BatchNorm2d in kinds) == (norm == "batch")
    assert (nn.GroupNorm in kinds) == (norm == "layer")
    sn = torch.nn.utils.parametrize.is_parametrized(d.head, "weight")
    assert sn == (norm == "spectral")
    out = d(torch.randn(3, 1, 16, 16))
    assert out.shape == (3,) and torch.isfinite(out).all()


def test_layer_norm_discriminator_treats_samples_independently():
    # The point of "layer" for WGAN-GP: a sample's score must not depend on its batch.
    d = DCGANDiscriminator(shape=(1, 8, 8), base=8, norm="layer").train()
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(d(x)[:2], d(x[:2]), atol=1e-6)


def test_unknown_norm():
    with pytest.raises(GankitError, match="unknown norm 'group'"):
        DCGANDiscriminator(norm="group")
    with pytest.raises(GankitError, match="unknown norm 'batch'"):
        MLPDiscriminator(norm="batch")


@pytest.mark.parametrize(
    ("model", "x"),
    [
        (DCGANGenerator(z_dim=4, shape=(1, 8, 8), base=8, n_classes=3), torch.randn(2, 4)),
        (DCGANDiscriminator(shape=(1, 8, 8), base=8, n_classes=3), torch.randn(2, 1, 8, 8)),
        (MLPGenerator(hidden=8, n_classes=3), torch.randn(2, 2)),
        (MLPDiscriminator(hidden=8, n_classes=3), torch.randn(2, 2)),
    ],
)
def test_conditional_models_require_labels(model, x):
    with pytest.raises(GankitError, match="n_classes=3 and needs class labels"):
        model(x)
    assert model(x, torch.tensor([0, 2])).shape[0] == 2


def test_unconditional_models_reject_labels():
    g = DCGANGenerator(shape=(1, 8, 8), base=8)
    with pytest.raises(GankitError, match="unconditional"):
        g(g.sample_z(2), torch.tensor([0, 1]))


@pytest.mark.parametrize("cls", [DCGANDiscriminator, MLPDiscriminator])
def test_projection_uses_labels(cls):
    torch.manual_seed(0)
    if cls is DCGANDiscriminator:
        d, x = cls(shape=(1, 8, 8), base=8, n_classes=4), torch.randn(4, 1, 8, 8)
    else:
        d, x = cls(hidden=16, n_classes=4), torch.randn(4, 2)
    a, b = d(x, torch.zeros(4, dtype=torch.long)), d(x, torch.ones(4, dtype=torch.long))
    # The difference is exactly the projection term (embed(0) - embed(1)) . h.
    h = d.features(x)
    want = ((d.embed.weight[0] - d.embed.weight[1]) * h).sum(1)
    assert torch.allclose(a - b, want, atol=1e-5)
    assert (a - b).abs().max() > 0


@pytest.mark.parametrize("cls", [DCGANGenerator, MLPGenerator])
def test_sample_z(cls):
    g = cls()
    z = g.sample_z(7)
    assert z.shape == (7, g.z_dim) and z.device == next(g.parameters()).device
    a = g.sample_z(3, generator=torch.Generator().manual_seed(1))
    b = g.sample_z(3, device="cpu", generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.mark.parametrize(("n_classes", "norm"), [(0, "batch"), (3, "spectral"), (0, "layer")])
def test_dcgan_is_trainable(n_classes, norm):
    torch.manual_seed(0)
    shape = (1, 8, 8)
    g = DCGANGenerator(z_dim=8, shape=shape, base=8, n_classes=n_classes)
    d = DCGANDiscriminator(shape=shape, base=8, n_classes=n_classes, norm=norm)
    _train_a_little(g, d, torch.rand(16, *shape) * 2 - 1, n_classes)


@pytest.mark.parametrize(("n_classes", "norm"), [(0, "none"), (2, "spectral")])
def test_mlp_is_trainable(n_classes, norm):
    torch.manual_seed(0)
    g = MLPGenerator(hidden=32, depth=2, n_classes=n_classes)
    d = MLPDiscriminator(hidden=32, depth=2, n_classes=n_classes, norm=norm)
    _train_a_little(g, d, torch.randn(16, 2) + 3.0, n_classes)


def _train_a_little(g, d, real, n_classes):
    loss = get_loss("ns")
    opt_g = torch.optim.Adam(g.parameters(), 2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-3, betas=(0.5, 0.999))
    before = [p.detach().clone() for p in g.parameters()]
    y = labels(len(real), n_classes)
    d_losses = []
    for _ in range(8):
        fake = g(g.sample_z(len(real)), y)
        loss_d = loss.dis(d(real, y), d(fake.detach(), y))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = loss.gen(d(fake, y))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
        d_losses.append(loss_d.item())
    assert all(torch.isfinite(p).all() for p in [*g.parameters(), *d.parameters()])
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters(), strict=True))
    # The discriminator learns something: its loss falls below where it started.
    assert min(d_losses) < d_losses[0]


@pytest.mark.parametrize("n_classes", [0, 5])
def test_mlp_shapes(n_classes):
    g = MLPGenerator(z_dim=3, out_dim=4, hidden=16, depth=2, n_classes=n_classes)
    d = MLPDiscriminator(in_dim=4, hidden=16, depth=2, n_classes=n_classes)
    assert (g.z_dim, g.n_classes, g.shape) == (3, n_classes, (4,))
    y = labels(6, n_classes)
    x = g(g.sample_z(6), y)
    assert x.shape == (6, 4)
    assert d(x, y).shape == (6,) and d.features(x).shape == (6, 16)
    n_linear = sum(isinstance(m, nn.Linear) for m in d.modules())
    assert n_linear == 2 + 1  # depth hidden layers + head


def test_mlp_generator_output_is_unbounded():
    torch.manual_seed(0)
    g = MLPGenerator(hidden=8, depth=1)
    with torch.no_grad():
        g.out.bias.fill_(5.0)
    assert g(g.sample_z(4)).min() > 1.0  # no tanh squashing


@pytest.mark.parametrize(
    ("cls", "kw", "match"),
    [
        (DCGANGenerator, {"z_dim": 0}, "z_dim=0"),
        (DCGANGenerator, {"base": -1}, "base=-1"),
        (DCGANDiscriminator, {"n_classes": -2}, "n_classes=-2"),
        (MLPGenerator, {"depth": 0}, "depth=0"),
        (MLPDiscriminator, {"hidden": 0}, "hidden=0"),
    ],
)
def test_bad_sizes(cls, kw, match):
    with pytest.raises(GankitError, match=match):
        cls(**kw)


def test_shape_accepts_integer_likes():
    g = DCGANGenerator(shape=torch.Size([1, 8, 8]), base=8)
    assert g.shape == (1, 8, 8) and type(g.shape) is tuple
    with pytest.raises(GankitError, match="positive integers"):
        DCGANDiscriminator(shape=(1, 8.0, 8))


def test_encoder_and_translator_live_in_models_and_the_encoder_reuses_the_dcgan_stack():
    import gankit.gan as gan
    from gankit.models import ConvEncoder, DCGANDiscriminator, ResnetTranslator

    assert gan.ConvEncoder is ConvEncoder and gan.ResnetTranslator is ResnetTranslator
    for shape in [(1, 8, 8), (3, 32, 32)]:
        enc, dis = ConvEncoder(5, shape, 4), DCGANDiscriminator(shape, 4)
        layers = [(type(m), tuple(p.shape for p in m.parameters())) for m in dis.body]
        assert [(type(m), tuple(p.shape for p in m.parameters())) for m in enc.body][:-1] == layers
        assert enc.head.in_features == dis.feature_dim
