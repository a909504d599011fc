"""The R3GAN networks: the CIFAR-10 preset's parameter counts, shapes, the fix-up
initialisation, conditioning, determinism and the ``--arch r3gan`` registry entry."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.models.archs import build_networks, get_arch
from gankit.models.layers import blur_downsample, upsample_2x
from gankit.models.r3gan import (
    ACT_GAIN,
    R3GAN_CPU_WIDTH,
    R3GANDiscriminator,
    R3GANGenerator,
    R3GANResidualBlock,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _block_params(c: int, expansion: int, cardinality: int) -> int:
    wide = c * expansion
    # 1x1 in, grouped 3x3, 1x1 out (no conv biases), two activation biases
    return c * wide + wide * (wide // cardinality) * 9 + wide * c + 2 * wide


def test_cifar10_preset_counts_match_the_hand_count() -> None:
    # width 768 at 4, 8, 16, 32; 2 blocks per stage; cardinality 96; expansion 2; z 64;
    # G's class embedding 64 (the noise size), D's 768 (the width).
    blocks = 8 * _block_params(768, 2, 96)
    assert blocks == 8 * 2_583_552
    g_base = blocks + 768 * 16 + 768 * 3   # 4x4 basis, 1x1 to RGB
    d_base = blocks + 3 * 768 + 768 * 16   # 1x1 from RGB, depthwise 4x4
    with torch.device("meta"):
        gen = R3GANGenerator(64, (3, 32, 32), 768, blocks=2, cardinality=96, expansion=2)
        dis = R3GANDiscriminator((3, 32, 32), 768, blocks=2, cardinality=96, expansion=2)
        gen_c = R3GANGenerator(64, (3, 32, 32), 768, n_classes=10)
        dis_c = R3GANDiscriminator((3, 32, 32), 768, n_classes=10)
    assert n_params(gen) == g_base + 64 * 768 == 20_732_160
    assert n_params(dis) == d_base + 768 * 1 == 20_683_776
    assert n_params(gen_c) == g_base + (64 + 64) * 768 + 10 * 64 == 20_781_952
    assert n_params(dis_c) == d_base + 768 * 768 + 10 * 768 == 21_280_512
    # the default cardinality at width 768 is the paper's 96
    assert gen_c.stages[0][0].grouped.groups == 96
    assert dis_c.stages[-1][-1].grouped.groups == 96


@pytest.mark.parametrize("side", [32, 64])
@pytest.mark.parametrize("n_classes", [0, 3])
def test_forward_shapes(side: int, n_classes: int) -> None:
    torch.manual_seed(0)
    shape = (3, side, side)
    gen = R3GANGenerator(8, shape, width=8, n_classes=n_classes)
    dis = R3GANDiscriminator(shape, width=8, n_classes=n_classes)
    assert len(gen.stages) == len(dis.stages) == int(math.log2(side)) - 1
    y = torch.arange(4) % n_classes if n_classes else None
    x = gen(gen.sample_z(4), y)
    assert x.shape == (4, *shape)
    out = dis(x, y)
    assert out.shape == (4,)
    assert torch.isfinite(out).all()
    out.sum().backward()  # every parameter is reached
    assert all(p.grad is not None for p in dis.parameters())


def test_single_channel_images() -> None:
    gen = R3GANGenerator(8, (1, 16, 16), width=4)
    dis = R3GANDiscriminator((1, 16, 16), width=4)
    assert dis(gen(torch.randn(2, 8))).shape == (2,)


def test_a_new_block_is_the_identity_and_its_branch_is_scaled() -> None:
    torch.manual_seed(0)
    block = R3GANResidualBlock(64, cardinality=8, expansion=2, n_blocks=8)
    assert torch.count_nonzero(block.project.weight) == 0
    x = torch.randn(2, 64, 8, 8)
    assert torch.equal(block(x), x)
    assert torch.equal(block.branch(x), torch.zeros_like(x))
    # the two other layers: std = gain * L^(-1/4) / sqrt(fan_in)
    want = ACT_GAIN * 8 ** -0.25
    assert block.expand.weight.std().item() * math.sqrt(64) == pytest.approx(want, rel=0.05)
    assert block.grouped.weight.std().item() * math.sqrt(16 * 9) == pytest.approx(want,
                                                                                  rel=0.05)
    # once the last layer moves, the branch contributes
    with torch.no_grad():
        block.project.weight.normal_()
    assert not torch.equal(block(x), x)


def test_fresh_networks_are_their_residual_free_paths() -> None:
    # With every branch at zero, G is basis -> upsamples -> 1x1 and D is 1x1 -> pools -> head.
    torch.manual_seed(1)
    gen = R3GANGenerator(8, (3, 16, 16), width=8).eval()
    z = torch.randn(3, 8)
    h = gen.basis.unsqueeze(0) * gen.scales(z)[:, :, None, None]
    for _ in range(len(gen.stages) - 1):
        h = upsample_2x(h)
    torch.testing.assert_close(gen(z), gen.to_image(h).clamp(-1, 1))
    dis = R3GANDiscriminator((3, 16, 16), width=8)
    x = torch.randn(3, 3, 16, 16)
    h = dis.from_image(x)
    for _ in range(len(dis.stages) - 1):
        h = blur_downsample(h)
    torch.testing.assert_close(dis(x), dis.head(dis.basis(h).flatten(1)).squeeze(1))


def test_conditional_networks_use_the_labels() -> None:
    torch.manual_seed(0)
    gen = R3GANGenerator(8, (3, 16, 16), width=8, n_classes=4)
    dis = R3GANDiscriminator((3, 16, 16), width=8, n_classes=4)
    assert gen.embed is not None and dis.embed is not None
    assert gen.embed.weight.shape == (4, 8) and dis.embed.weight.shape == (4, 8)
    assert dis.head.weight.shape == (8, 8)  # to the embedding, not to one logit
    z = torch.randn(2, 8).repeat(2, 1)
    y = torch.tensor([0, 0, 1, 1])
    x = gen(z, y)
    assert not torch.allclose(x[0], x[2])
    same = x[:1].expand(2, -1, -1, -1)
    out = dis(same, torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(GankitError, match="needs class labels"):
        gen(z)
    with pytest.raises(GankitError, match="unconditional"):
        R3GANDiscriminator((3, 16, 16), width=8)(x, y)


def test_deterministic_by_seed_and_eval_clamps() -> None:
    def build() -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(3)
        gen, dis = R3GANGenerator(8, (3, 16, 16), 8), R3GANDiscriminator((3, 16, 16), 8)
        z = torch.randn(2, 8)
        return gen.train()(z), dis(gen.eval()(z))

    a, b = build(), build()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    gen = R3GANGenerator(8, (3, 16, 16), 8)
    with torch.no_grad():
        gen.basis.mul_(100.0)  # outputs far outside [-1, 1]
    z = torch.randn(4, 8)
    assert gen.train()(z).abs().max() > 1.0  # training: unbounded
    assert gen.eval()(z).abs().max() <= 1.0


@pytest.mark.parametrize("shape", [(3, 28, 28), (3, 32, 16), (3, 4, 4), (3, 48, 48)])
def test_unsupported_shapes_name_the_fix(shape: tuple[int, int, int]) -> None:
    with pytest.raises(GankitError, match="power of two"):
        R3GANGenerator(8, shape, 8)
    with pytest.raises(GankitError, match="power of two"):
        R3GANDiscriminator(shape, 8)


def test_bad_sizes_name_the_argument() -> None:
    with pytest.raises(GankitError, match="width=0"):
        R3GANGenerator(8, (3, 16, 16), 0)
    with pytest.raises(GankitError, match="cardinality 5 does not divide"):
        R3GANDiscriminator((3, 16, 16), 8, cardinality=5)


def test_the_registry_builds_it_with_cpu_defaults() -> None:
    arch = get_arch("r3gan")
    d = arch.defaults((3, 32, 32))
    assert d == dict(batch_size=64, z_dim=64, n_dis=1, lr_gen=2e-4, lr_dis=2e-4, beta1=0.0,
                     beta2=0.99, norm="none", width=R3GAN_CPU_WIDTH)
    assert "loss" not in d and "penalty" not in d
    gen, dis = build_networks("r3gan", (3, 32, 32), z_dim=16, width=None, n_classes=10)
    assert isinstance(gen, R3GANGenerator) and isinstance(dis, R3GANDiscriminator)
    assert gen.basis.shape == (R3GAN_CPU_WIDTH, 4, 4) and gen.n_classes == 10
    # the CPU default's counts (docs/architectures-r3gan.md): 8 blocks of 35,072
    assert _block_params(64, 2, 8) == 35_072
    g64, d64 = build_networks("r3gan", (3, 32, 32), z_dim=64, width=None)
    assert (n_params(g64), n_params(d64)) == (285_888, 281_856)
    gen, _ = build_networks("r3gan", (3, 32, 32), z_dim=16, width=16)
    assert gen.basis.shape == (16, 4, 4)
    with pytest.raises(GankitError, match="norm 'spectral' does not apply to arch 'r3gan'"):
        build_networks("r3gan", (3, 32, 32), z_dim=8, width=8, norm="spectral")


def test_resamplers_are_the_papers_bilinear_filter_with_zero_padding() -> None:
    # Up: along each axis output 2i = (x[i-1] + 3 x[i]) / 4, 2i+1 = (3 x[i] + x[i+1]) / 4,
    # x zero outside. By hand for [[1, 2], [3, 4]]: rows [0.75, 1.25, 1.75, 1.5] and
    # [2.25, 3.25, 3.75, 3], then the same along the columns.
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    want = torch.tensor([[0.5625, 0.9375, 1.3125, 1.125],
                         [1.125, 1.75, 2.25, 1.875],
                         [1.875, 2.75, 3.25, 2.625],
                         [1.6875, 2.4375, 2.8125, 2.25]])
    torch.testing.assert_close(upsample_2x(x)[0, 0], want)
    # Down: output i = (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8 per axis, zero outside.
    row = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0, 32.0]).view(1, 1, 1, 6).expand(1, 1, 8, 6)
    got = blur_downsample(row)[0, 0, 1]  # an inner row: only the width axis is filtered
    torch.testing.assert_close(got, torch.tensor([(3 + 6 + 4) / 8, (2 + 12 + 24 + 16) / 8,
                                                  (8 + 48 + 96) / 8]))
    # A constant stays constant away from the border; the zeros show at the border.
    const = torch.full((2, 3, 8, 8), 5.0)
    down = blur_downsample(const)
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full((2, 3, 2, 2), 5.0))
    assert down[0, 0, 0, 0].item() == pytest.approx(5.0 * (7 / 8) ** 2)
    up = upsample_2x(const)
    torch.testing.assert_close(up[..., 1:-1, 1:-1], torch.full((2, 3, 14, 14), 5.0))
    assert up[0, 0, 0, 0].item() == pytest.approx(5.0 * (3 / 4) ** 2)
    assert up[0, 0, 0, 5].item() == pytest.approx(5.0 * 3 / 4)
