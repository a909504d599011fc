"""SNGAN ResNet and BigGAN networks, and the ``--arch`` registry: shapes, counts, structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gankit.errors import GankitError
from gankit.models.archs import ARCHS, build_networks, get_arch
from gankit.models.biggan import BigGANDiscriminator, BigGANGenerator
from gankit.models.layers import DBlock, SelfAttention
from gankit.models.resnet import RESNET_SIZES, ResNetDiscriminator, ResNetGenerator


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture
def no_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting parameters needs no initialisation, which takes seconds for the large layers
    (and longer on the meta device, whose spectral-norm set-up is slow)."""
    for name in ("orthogonal_", "xavier_uniform_"):
        monkeypatch.setattr(nn.init, name, lambda t, *args, **kwargs: t)


def _labels(n_classes: int, n: int = 3) -> torch.Tensor | None:
    return torch.arange(n) % n_classes if n_classes else None


@pytest.mark.parametrize("side", RESNET_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("n_classes", [0, 5])
def test_resnet_shapes(side: int, channels: int, n_classes: int) -> None:
    shape = (channels, side, side)
    gen = ResNetGenerator(16, shape, width=4, n_classes=n_classes)
    dis = ResNetDiscriminator(shape, width=4, n_classes=n_classes)
    y = _labels(n_classes)
    x = gen(gen.sample_z(3), y)
    assert x.shape == (3, *shape)
    assert x.min() >= -1 and x.max() <= 1
    assert dis(x, y).shape == (3,)


@pytest.mark.parametrize("side", [16, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("n_classes", [0, 5])
def test_biggan_shapes(side: int, channels: int, n_classes: int) -> None:
    shape = (channels, side, side)
    width = 2 if side <= 32 else 1
    gen = BigGANGenerator(20, shape, width, n_classes=n_classes, shared_dim=8)
    dis = BigGANDiscriminator(shape, width, n_classes=n_classes)
    y = _labels(n_classes)
    x = gen(gen.sample_z(3), y)
    assert x.shape == (3, *shape)
    assert x.min() >= -1 and x.max() <= 1
    assert dis(x, y).shape == (3,)


# Parameter counts of mimicry's SNGANGenerator{32,48,64,128} / SNGANDiscriminator{...} at
# their default widths (ngf 256 / ndf 128 at 32, the paper's CIFAR-10 networks; ngf 512 or
# 1024, ndf 1024 above), counted by instantiating kwotsin/mimicry's own modules.
MIMICRY_SNGAN = {
    32: (4_276_739, 1_053_825),
    48: (4_878_083, 10_141_441),
    64: (12_220_675, 10_141_441),
    128: (32_150_787, 29_017_857),
}


@pytest.mark.parametrize("side", sorted(MIMICRY_SNGAN))
def test_resnet_parameter_counts_match_mimicry(side: int, no_init: None) -> None:
    shape = (3, side, side)
    assert (n_params(ResNetGenerator(128, shape)),
            n_params(ResNetDiscriminator(shape))) == MIMICRY_SNGAN[side]


def test_biggan_parameter_counts_match_biggan_pytorch(no_init: None) -> None:
    # BigGAN-PyTorch's Generator/Discriminator at resolution 32, G_ch = D_ch = 64, dim_z 128,
    # hier, G_shared with shared_dim 128, 10 classes, no attention (counted from its code).
    gen = BigGANGenerator(128, (3, 32, 32), 64, n_classes=10, attention=0)
    dis = BigGANDiscriminator((3, 32, 32), 64, n_classes=10, attention=0)
    assert (n_params(gen), n_params(dis)) == (4_373_251, 4_207_361)
    # StudioGAN's CIFAR-10 config: ch 96, z 80, attention at 16x16. The generator equals
    # BigGAN-PyTorch's with G_attn 16; its discriminator lists every 32x32 block at
    # "resolution 16" and so would take four attention blocks, StudioGAN's (and ours) one.
    assert n_params(BigGANGenerator(80, (3, 32, 32), 96, n_classes=10)) == 9_416_196
    assert (n_params(BigGANDiscriminator((3, 32, 32), 96, n_classes=10))
            == 10_194_053 - 3 * n_params(SelfAttention(384)))


def test_resnet_cifar_layout_is_the_papers() -> None:
    dis = ResNetDiscriminator((3, 32, 32))
    blocks = [b for b in dis.blocks if isinstance(b, DBlock)]
    assert [b.down for b in blocks] == [True, True, False, False]
    assert blocks[0].first and not any(b.first for b in blocks[1:])
    assert dis.feature_dim == 128
    gen = ResNetGenerator(128, (3, 32, 32))
    assert len(gen.blocks) == 3 and gen.bottom == 4
    assert {b.conv1.out_channels for b in gen.blocks} == {256}
    assert ResNetGenerator(128, (3, 48, 48)).bottom == 6


def _spectral(m: nn.Module) -> bool:
    return parametrize.is_parametrized(m, "weight")


def test_spectral_norm_where_the_papers_put_it() -> None:
    layers = (nn.Conv2d, nn.Linear, nn.Embedding)
    sngan_d = ResNetDiscriminator((3, 32, 32), 4, n_classes=3)
    assert all(_spectral(m) for m in sngan_d.modules() if isinstance(m, layers))
    sngan_g = ResNetGenerator(8, (3, 32, 32), 4, n_classes=3)
    assert not any(_spectral(m) for m in sngan_g.modules() if isinstance(m, layers))
    assert not any(_spectral(m) for m in ResNetDiscriminator((3, 32, 32), 4, norm="none")
                   .modules() if isinstance(m, layers))
    big_g = BigGANGenerator(20, (3, 32, 32), 2, n_classes=3, shared_dim=8)
    big_d = BigGANDiscriminator((3, 32, 32), 2, n_classes=3)
    assert all(_spectral(m) for m in big_d.modules() if isinstance(m, layers))
    # Every conv and linear of G, the batch norms' gain/bias layers included; not the
    # shared class embedding.
    assert all(_spectral(m) for m in big_g.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert not _spectral(big_g.shared)


def test_biggan_z_is_hierarchical_and_every_chunk_is_used() -> None:
    gen = BigGANGenerator(21, (3, 32, 32), 2, n_classes=4, shared_dim=8).eval()
    assert gen.z_chunks == [6, 5, 5, 5]  # 4 inputs: the linear layer and 3 blocks
    z, y = gen.sample_z(2, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1])
    base = gen(z, y)
    start = 0
    for size in gen.z_chunks:
        z2 = z.clone()
        z2[:, start:start + size] += 1.0
        assert not torch.allclose(gen(z2, y), base), f"chunk at {start} is ignored"
        start += size
    # Untrained, the class gains start near 1: push the embedding so the labels matter.
    with torch.no_grad():
        gen.shared.weight.normal_(0, 3)
    assert not torch.allclose(gen(z, torch.tensor([2, 3])), gen(z, y))


def test_biggan_self_attention_sits_where_asked() -> None:
    gen = BigGANGenerator(20, (3, 32, 32), 2)
    dis = BigGANDiscriminator((3, 32, 32), 2)
    assert gen.attention == dis.attention == 16
    assert gen.attn_after == 1  # after the second up-block, at 16x16 (StudioGAN)
    assert isinstance(dis.blocks[1], SelfAttention)  # after the first down-block
    assert sum(isinstance(m, SelfAttention) for m in dis.modules()) == 1
    assert BigGANGenerator(20, (3, 32, 32), 2, attention=0).attn is None
    with pytest.raises(GankitError, match="self-attention at 4x4"):
        BigGANGenerator(20, (3, 32, 32), 2, attention=4)


def test_self_attention_starts_as_the_identity_and_then_attends() -> None:
    attn = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(attn(x), x)
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    out = attn(x)
    assert not torch.allclose(out, x)
    # Attention mixes positions: changing one pixel changes outputs elsewhere.
    x2 = x.clone()
    x2[:, :, 0, 0] += 5
    assert not torch.allclose(attn(x2)[:, :, 7, 7], out[:, :, 7, 7])


def test_biggan_init_is_orthogonal() -> None:
    gen = BigGANGenerator(20, (3, 32, 32), 4, n_classes=3, shared_dim=8)
    w = gen.shared.weight  # (3, 8): orthonormal rows
    torch.testing.assert_close(w @ w.T, torch.eye(3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cls", [ResNetGenerator, BigGANGenerator])
def test_generators_need_labels_exactly_when_conditional(cls: type[nn.Module]) -> None:
    gen = cls(20, (3, 32, 32), 2, n_classes=3)
    with pytest.raises(GankitError, match="needs class labels"):
        gen(gen.sample_z(2))
    with pytest.raises(GankitError, match="unconditional"):
        cls(20, (3, 32, 32), 2)(torch.randn(2, 20), torch.tensor([0, 1]))


@pytest.mark.parametrize(("arch", "shape", "message"), [
    ("resnet", (3, 40, 40), "not supported by the resnet networks"),
    ("biggan", (3, 48, 48), "not supported by the biggan networks"),
    ("resnet", (3, 32, 16), "not supported"),
    ("resnet", (2,), "builds image networks"),
    ("biggan", (2,), "builds image networks"),
])
def test_unsupported_shapes_are_one_clear_error(arch: str, shape: tuple[int, ...],
                                                message: str) -> None:
    with pytest.raises(GankitError, match=message):
        build_networks(arch, shape, z_dim=8, width=2)


def test_registry_names_papers_defaults_and_errors() -> None:
    assert list(ARCHS) == ["dcgan", "resnet", "biggan", "stylegan2", "r3gan"]
    sngan = get_arch("resnet").defaults((3, 32, 32))
    assert {k: sngan[k] for k in ("z_dim", "batch_size", "n_dis", "lr_gen", "beta1", "beta2",
                                  "loss", "width")} == dict(
        z_dim=128, batch_size=64, n_dis=5, lr_gen=2e-4, beta1=0.0, beta2=0.9, loss="hinge",
        width=128)
    assert get_arch("resnet").defaults((3, 64, 64))["width"] == 64
    assert get_arch("biggan").defaults((3, 32, 32))["z_dim"] == 80
    with pytest.raises(GankitError, match="unknown arch 'vgg'"):
        get_arch("vgg")
    with pytest.raises(GankitError, match="norm 'batch' does not apply to arch 'resnet'") as info:
        build_networks("resnet", (3, 32, 32), z_dim=8, width=2, norm="batch")
    assert info.value.option == "norm" and "--" not in str(info.value)


def test_stylegan2_default_width_is_the_cpu_config() -> None:
    # The default width 32 is the module's CPU widths (base 2048, cap 128): the counts in
    # docs/architectures.md.
    def count(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    gen, dis = build_networks("stylegan2", (3, 32, 32), z_dim=128, width=32)
    assert (count(gen), count(dis)) == (1_149_267, 1_153_473)


def test_dcgan_through_the_registry_is_todays_pair() -> None:
    from gankit.models import DCGANGenerator, MLPGenerator

    gen, dis = build_networks("dcgan", (1, 8, 8), z_dim=8, width=4)
    assert isinstance(gen, DCGANGenerator) and dis.norm == "batch"
    gen, dis = build_networks("dcgan", (2,), z_dim=2, width=4)
    assert isinstance(gen, MLPGenerator) and dis.norm == "none"
