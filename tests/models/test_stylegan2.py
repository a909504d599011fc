"""StyleGAN2 networks: shapes, modulated conv, demodulation, mixing, truncation, precision."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.gan.sampling import generate
from gankit.models.layers import (
    EqualLinear,
    blur_downsample,
    modulated_conv2d,
    upsample_2x,
)
from gankit.models.stylegan2 import (
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    minibatch_stddev,
    stylegan2_levels,
)

# Tiny widths: the large sizes stay cheap (channels = min(base // res, cap)).
TINY = {"channel_base": 256, "channel_max": 16}


def tiny_gen(shape=(3, 16, 16), n_classes=0, **kw) -> StyleGAN2Generator:
    return StyleGAN2Generator(16, shape, n_classes=n_classes, mapping_layers=2,
                              **{**TINY, **kw})


def labels(n: int, n_classes: int) -> torch.Tensor | None:
    return torch.arange(n) % n_classes if n_classes else None


@pytest.mark.parametrize("n_classes", [0, 4])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("side", [16, 32, 64, 128, 256])
def test_output_shapes_every_size_channels_and_conditioning(side, channels, n_classes):
    torch.manual_seed(0)
    shape = (channels, side, side)
    gen = tiny_gen(shape, n_classes)
    dis = StyleGAN2Discriminator(shape, n_classes=n_classes, **TINY)
    z, y = gen.sample_z(2), labels(2, n_classes)
    img = gen(z, y)
    assert img.shape == (2, *shape)
    out = dis(img, y)
    assert out.shape == (2,)
    out.sum().backward()
    assert all(p.grad is not None for p in gen.parameters())
    assert gen.num_ws == 2 * stylegan2_levels(shape) - 2
    gen.eval()
    sample = gen(z, y)
    assert sample.min() >= -1 and sample.max() <= 1


@pytest.mark.parametrize(
    ("shape", "match"),
    [((3, 8, 8), "16, 32, 64, 128 or 256"), ((3, 512, 512), "16, 32, 64, 128 or 256"),
     ((3, 28, 28), "16, 32"), ((3, 32, 16), "square"), ((32, 32), "channels, height")],
)
def test_bad_shapes_raise(shape, match):
    with pytest.raises(GankitError, match=match):
        StyleGAN2Generator(16, shape)
    with pytest.raises(GankitError, match=match):
        StyleGAN2Discriminator(shape)


def test_labels_are_checked_and_options_validated():
    gen = tiny_gen(n_classes=3)
    with pytest.raises(GankitError, match="needs class labels"):
        gen(gen.sample_z(2))
    with pytest.raises(GankitError, match="unconditional"):
        StyleGAN2Discriminator((3, 16, 16), **TINY)(torch.zeros(2, 3, 16, 16), torch.zeros(2))
    with pytest.raises(GankitError, match=r"mixing_prob=1\.5"):
        tiny_gen(mixing_prob=1.5)
    with pytest.raises(GankitError, match="noise_mode='off'"):
        tiny_gen(noise_mode="off")


def test_channel_widths_follow_base_and_cap():
    gen = StyleGAN2Generator(16, (3, 64, 64), channel_base=1024, channel_max=32)
    # 4, 8: capped at 32; 16: 1024 // 16 = 64 -> 32; 32: 32; 64: 16.
    assert gen.synthesis.const.shape == (32, 4, 4)
    assert [b.torgb.conv.weight.shape[1] for b in gen.synthesis.blocks] == [32, 32, 32, 16]


def _reference_modulated_conv(x, weight, styles, demodulate):
    """One plain conv per sample with its own modulated (demodulated) kernel."""
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b].view(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        outs.append(F.conv2d(x[b:b + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("demodulate", [True, False])
def test_grouped_modulated_conv_equals_a_per_sample_loop(kernel, demodulate):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, 9, 9, generator=g, dtype=torch.float64)
    weight = torch.randn(7, 6, kernel, kernel, generator=g, dtype=torch.float64)
    styles = torch.randn(5, 6, generator=g, dtype=torch.float64) + 1
    got = modulated_conv2d(x, weight, styles, demodulate=demodulate)
    want = _reference_modulated_conv(x, weight, styles, demodulate)
    assert got.shape == (5, 7, 9, 9)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # float32, as the networks run it
    got32 = modulated_conv2d(x.float(), weight.float(), styles.float(), demodulate=demodulate)
    torch.testing.assert_close(got32, want.float(), rtol=1e-5, atol=1e-5)
    # and the loop really tells samples apart: swapping two styles changes the output
    swapped = modulated_conv2d(x, weight, styles[[1, 0, 2, 3, 4]], demodulate=demodulate)
    assert not torch.allclose(swapped[:2], want[:2], atol=1e-3)


def test_demodulation_gives_unit_output_std_for_unit_input():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 32, 48, 48, generator=g)
    weight = torch.randn(16, 32, 3, 3, generator=g) * 5  # badly scaled on purpose
    styles = torch.rand(4, 32, generator=g) * 3 + 0.1
    out = modulated_conv2d(x, weight, styles, demodulate=True)[:, :, 1:-1, 1:-1]
    std = out.std(dim=(2, 3))  # per sample and output channel
    assert torch.allclose(std, torch.ones_like(std), atol=0.06), std
    plain = modulated_conv2d(x, weight, styles, demodulate=False)[:, :, 1:-1, 1:-1]
    assert plain.std() > 3  # without demodulation the scale is far from 1


@torch.no_grad()
def test_equalized_linear_stores_unit_weights_over_lr_mul_and_scales_at_run_time():
    torch.manual_seed(0)
    layer = EqualLinear(256, 64, lr_mul=0.01, bias_init=1.0)
    assert float(layer.weight.std()) == pytest.approx(100, rel=0.05)  # N(0, 1) / lr_mul
    out = layer(torch.randn(512, 256))
    assert float(out.std()) == pytest.approx(1.0, rel=0.1)  # He-scaled at run time
    assert float(out.mean()) == pytest.approx(1.0, abs=0.1)  # the bias, times lr_mul


def test_resampling_filters():
    x = torch.randn(2, 3, 8, 8)
    assert upsample_2x(x).shape == (2, 3, 16, 16)
    assert blur_downsample(x).shape == (2, 3, 4, 4)
    # The filters sum to one: constants pass, away from the border (zeros outside).
    const = torch.full((1, 2, 8, 8), 3.0)
    torch.testing.assert_close(blur_downsample(const)[..., 1:-1, 1:-1],
                               torch.full((1, 2, 2, 2), 3.0))
    torch.testing.assert_close(upsample_2x(const)[..., 1:-1, 1:-1],
                               torch.full((1, 2, 14, 14), 3.0))
    # At the border one tap of four (up: 1/4 of the weight; down: 1/8) reads a zero.
    torch.testing.assert_close(upsample_2x(const)[0, 0, 0, 1:-1], torch.full((14,), 2.25))
    torch.testing.assert_close(blur_downsample(const)[0, 0, 0, 1:-1], torch.full((2,), 2.625))
    # Interior of the upsample: neighbours weighted 3/4 and 1/4 ([1, 3, 3, 1] / 4).
    row = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 6, 6)
    up = upsample_2x(row)[0, 0, 5]
    torch.testing.assert_close(up[3:5], torch.tensor([0.75 * 1 + 0.25 * 2, 0.75 * 2 + 0.25 * 1]))


def test_minibatch_stddev_groups_of_four():
    x = torch.randn(8, 5, 4, 4)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 6, 4, 4)
    torch.testing.assert_close(out[:, :5], x)
    # Samples i and i + 2 share a group (reshape(G, -1, ...)), their std channel is equal.
    group = x[0::2]
    want = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(out[0, 5], torch.full((4, 4), float(want)))
    assert not torch.allclose(out[0, 5], out[1, 5])
    # A batch that 4 does not divide falls back to the largest dividing group.
    assert minibatch_stddev(torch.randn(6, 2, 4, 4)).shape == (6, 3, 4, 4)


def test_truncation_psi_one_is_identity_and_zero_gives_the_mean_w():
    torch.manual_seed(0)
    gen = tiny_gen()
    gen.train()
    for _ in range(3):  # move w_avg away from zero
        gen(gen.sample_z(8))
    gen.eval()
    z = gen.sample_z(4)
    ws = gen.ws(z)
    assert torch.equal(gen.ws(z, truncation_psi=1.0), ws)
    assert torch.equal(gen(z, truncation_psi=1.0), gen(z))
    mean = gen.ws(z, truncation_psi=0.0)
    assert gen.w_avg.abs().sum() > 0
    torch.testing.assert_close(mean, gen.w_avg.expand_as(mean), rtol=0, atol=0)
    half = gen.ws(z, truncation_psi=0.5)
    torch.testing.assert_close(half, gen.w_avg + 0.5 * (ws - gen.w_avg))
    # The attribute serves generate() and copies (EMA) unchanged; a cutoff keeps late styles.
    gen.truncation_psi, gen.truncation_cutoff = 0.0, 2
    cut = gen.ws(z)
    torch.testing.assert_close(cut[:, :2], gen.w_avg.expand(4, 2, -1), rtol=0, atol=0)
    assert torch.equal(cut[:, 2:], ws[:, 2:])
    gen.truncation_cutoff = None
    images = generate(gen, 4, seed=1)
    assert torch.allclose(images[0], images[1])  # every sample is the mean image


def test_w_avg_tracks_the_mapping_output_in_training_only():
    torch.manual_seed(0)
    gen = tiny_gen(w_avg_beta=0.5)
    z = gen.sample_z(16)
    gen.eval()
    gen(z)
    assert torch.equal(gen.w_avg, torch.zeros_like(gen.w_avg))
    gen.train()
    gen(z)
    with torch.no_grad():
        torch.testing.assert_close(gen.w_avg, 0.5 * gen.mapping(z).mean(0))


def test_style_mixing_in_training_only_and_per_sample():
    torch.manual_seed(0)
    gen = tiny_gen(mixing_prob=1.0)
    z = gen.sample_z(64)
    gen.train()
    ws = gen.ws(z)
    # Every sample switches from its own w to another at a cut in 1..num_ws-1.
    first = ws[:, :1]
    same = (ws == first).all(dim=2)  # (B, num_ws)
    cuts = same.sum(dim=1)
    assert same[:, 0].all() and (cuts < gen.num_ws).all() and (cuts >= 1).all()
    assert len(set(cuts.tolist())) > 1  # the cut is drawn per sample
    gen.mixing_prob = 0.0
    assert (gen.ws(z) == gen.ws(z)[:, :1]).all()
    gen.mixing_prob = 1.0
    gen.eval()
    assert (gen.ws(z) == gen.ws(z)[:, :1]).all()  # never in eval


def test_eval_sampling_is_repeatable_and_noise_matters_in_training():
    torch.manual_seed(0)
    gen = tiny_gen(mixing_prob=0.0)
    with torch.no_grad():
        for m in gen.modules():
            if hasattr(m, "strength"):
                m.strength.fill_(0.5)
    assert torch.equal(generate(gen, 3, seed=5), generate(gen, 3, seed=5))  # const noise
    gen.train()
    z = gen.sample_z(2)
    assert not torch.equal(gen(z), gen(z))  # fresh noise each call
    gen.noise_mode = "none"
    assert torch.equal(gen(z), gen(z))


def test_ema_copy_keeps_the_sampling_interface():
    from gankit.extensions.ema import EMA

    gen = tiny_gen(n_classes=2)
    ema = EMA(gen, decay=0.9)
    gen.train()
    gen(gen.sample_z(4), labels(4, 2))  # moves w_avg
    ema(None)  # type: ignore[arg-type]
    assert torch.equal(ema.average.w_avg, gen.w_avg)  # buffers are copied
    images = generate(ema.average, 4, seed=0)
    assert images.shape == (4, 3, 16, 16)


def test_bf16_forward_backward():
    torch.manual_seed(0)
    gen = tiny_gen(n_classes=2)
    dis = StyleGAN2Discriminator((3, 16, 16), n_classes=2, **TINY)
    y = labels(4, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        img = gen(gen.sample_z(4), y)
        out = dis(img, y)
    assert img.dtype == torch.bfloat16
    out.float().sum().backward()
    grads = [p.grad for p in [*gen.parameters(), *dis.parameters()]]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_torch_compile_forward_matches_eager():
    """One graph (no breaks), in eval and in training (mixing, noise, return_ws)."""
    torch.manual_seed(0)
    gen = tiny_gen(n_classes=2).eval()
    z, y = gen.sample_z(2), labels(2, 2)
    compiled = torch.compile(copy.deepcopy(gen), backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(z, y), gen(z, y))
    gen.train()
    compiled = torch.compile(gen, backend="eager", fullgraph=True)
    torch.manual_seed(1)
    img, ws = compiled(z, y, return_ws=True)
    torch.manual_seed(1)
    want_img, want_ws = gen(z, y, return_ws=True)
    assert ws.shape == (2, gen.num_ws, gen.w_dim)
    torch.testing.assert_close(img, want_img)
    torch.testing.assert_close(ws, want_ws)


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_layer_parameter_counts_match_stylegan2_ada():
    """The per-layer counts StyleGAN2-ADA's summary prints for 512-channel layers."""
    from gankit.models.stylegan2 import _DBlock, _StyleLayer, _ToRGB

    assert count(_StyleLayer(512, 512, 512, 8)) == 2_622_465  # synthesis.bN.conv0/conv1
    assert count(_ToRGB(512, 3, 512)) == 264_195  # synthesis.bN.torgb
    assert count(EqualLinear(512, 512)) == 262_656  # mapping.fcN
    gen = StyleGAN2Generator(512, (3, 32, 32), mapping_layers=2, channel_base=16384,
                             channel_max=512)
    assert gen.synthesis.const.numel() == 8192  # synthesis.b4 const
    # D block: two 3x3 convs with bias and a bias-free 1x1 skip
    assert count(_DBlock(512, 512)) == 2 * (512 * 512 * 9 + 512) + 512 * 512


def test_parameter_counts_of_documented_configs():
    # the CPU defaults at 32x32 (README), and the paper's CIFAR-10 widths
    assert count(StyleGAN2Generator(128, (3, 32, 32))) == 1_149_267
    assert count(StyleGAN2Discriminator((3, 32, 32))) == 1_153_473
    cifar = {"channel_base": 16384, "channel_max": 512}
    assert count(StyleGAN2Generator(512, (3, 32, 32), mapping_layers=2, **cifar)) == 19_947_539
    assert count(StyleGAN2Discriminator((3, 32, 32), **cifar)) == 21_507_073
