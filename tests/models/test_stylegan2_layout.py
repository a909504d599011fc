"""StyleGAN2's resampling layout: the upsampling convolution runs at the low resolution (a
stride-2 transposed convolution, then the blur), the downsampling one blurs and then runs at
stride 2; counted multiply-accumulates match the formula of that layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.models.layers import (
    EqualConv2d,
    blur,
    modulated_conv2d,
    upsample_2x,
    upsample_conv2d,
)
from gankit.models.macs import CountMACs
from gankit.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

B, Z = 2, 16
CFG = {"channel_base": 256, "channel_max": 32}  # channels 32, 32, 16, 8 at 4, 8, 16, 32
CH = {4: 32, 8: 32, 16: 16, 32: 8}
FIR = 16  # taps of the 4x4 [1, 3, 3, 1] kernel, per output pixel and channel


def g_macs(old_layout: bool = False) -> int:
    """G forward at CFG, 32x32x3, batch B, eval: counted from the layout by hand."""
    mapping = B * 2 * Z * Z
    affines = B * Z * (CH[4] + CH[4])  # conv4, rgb4
    convs = B * CH[4] * 16 * CH[4] * 9 + B * 3 * 16 * CH[4]
    for r in (8, 16, 32):
        cin, cout = CH[r // 2], CH[r]
        affines += B * Z * (cin + cout + cout)
        if old_layout:  # 3x3 conv at r x r after a (not counted) bilinear upsample
            convs += B * cout * r * r * cin * 9
        else:  # each of the (r/2)^2 inputs spreads over a 3x3 cout patch, then the blur
            convs += B * cin * (r // 2) ** 2 * cout * 9 + B * cout * r * r * FIR
        convs += B * cout * r * r * cout * 9 + B * 3 * r * r * cout  # conv1, toRGB
    return mapping + affines + convs


def d_macs(old_layout: bool = False) -> int:
    """D forward at CFG, 32x32x3, batch B: counted from the layout by hand."""
    total = B * CH[32] * 32 * 32 * 3  # fromRGB
    for r in (32, 16, 8):
        cin, cout = CH[r], CH[r // 2]
        h = r // 2
        total += B * cin * r * r * cin * 9  # conv0
        if old_layout:  # 3x3 at r x r, then blur at stride 2
            total += B * cout * r * r * cin * 9 + B * cout * h * h * FIR
        else:  # blur padded 2 ((r + 1)^2 outputs), then 3x3 at stride 2
            total += B * cin * (r + 1) ** 2 * FIR + B * cout * h * h * cin * 9
        total += B * cin * h * h * FIR + B * cout * h * h * cin  # skip: blur, 1x1
    c4 = CH[4]
    total += B * c4 * 16 * (c4 + 1) * 9 + B * c4 * 16 * c4 + B * c4  # conv, fc, out
    return total


def test_counted_macs_match_the_paper_layout_and_beat_the_old_one() -> None:
    torch.manual_seed(0)
    gen = StyleGAN2Generator(Z, (3, 32, 32), mapping_layers=2, **CFG).eval()
    dis = StyleGAN2Discriminator((3, 32, 32), **CFG)
    with torch.no_grad(), CountMACs() as cg:
        img = gen(torch.randn(B, Z))
    with torch.no_grad(), CountMACs() as cd:
        dis(img)
    assert cg.total == g_macs()
    assert cd.total == d_macs()
    # the up-sampling convs are transposed, once per block; no 3x3 conv runs on the
    # upsampled grid before its weights
    assert [c[1][1:] for c in cg.calls if c[0] == "conv_t"] == [
        (B * CH[4], 4, 4), (B * CH[8], 8, 8), (B * CH[16], 16, 16)]
    assert cg.total < g_macs(old_layout=True) / 1.5
    assert cd.total < d_macs(old_layout=True) / 1.5


def test_resampling_convs_cost_a_quarter_of_the_full_resolution_ones() -> None:
    torch.manual_seed(0)
    x, w = torch.randn(1, 8, 8, 8), torch.randn(16, 8, 3, 3)
    with CountMACs() as up:
        upsample_conv2d(x, w)
    assert up.macs["conv_t"] * 4 == 16 * 16 * 16 * 8 * 9  # the conv at 16x16, over 4
    assert up.macs["conv"] == 16 * 16 * 16 * FIR  # the blur
    conv = EqualConv2d(8, 16, 3, down=True)
    with CountMACs() as down:
        conv(torch.randn(1, 8, 16, 16))
    assert down.calls[-1] == ("conv", (1, 8, 17, 17), (16, 8, 3, 3))
    assert down.macs["conv"] == 8 * 17 * 17 * FIR + 16 * 8 * 8 * 8 * 9


@pytest.mark.parametrize("k", [1, 3, 5])
def test_upsampling_conv_is_the_conv_of_the_upsampled_input_away_from_the_border(k):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    w = torch.randn(4, 3, k, k, dtype=torch.float64)
    new = upsample_conv2d(x, w)
    old = F.conv2d(upsample_2x(x), w, padding=k // 2)
    assert new.shape == old.shape == (2, 4, 16, 16)
    m = k // 2 + 2  # where neither sees past the image
    torch.testing.assert_close(new[..., m:-m, m:-m], old[..., m:-m, m:-m])
    # and it is the plain (full) conv of x with zeros inserted between its pixels, then
    # the blur with the gain 4: the stride-2 transposed conv with the flipped kernel
    stuffed = torch.zeros(2, 3, 16, 16, dtype=torch.float64)
    stuffed[..., ::2, ::2] = x
    side = 16 + k - 2  # the full conv's last row and column see only the last zero
    full = F.conv2d(F.pad(stuffed, (k - 1,) * 4), w)[..., :side, :side]
    torch.testing.assert_close(new, blur(full, (5 - k) // 2, gain=4.0))


def test_downsampling_conv_is_the_blurred_full_resolution_conv_away_from_the_border():
    torch.manual_seed(0)
    conv = EqualConv2d(3, 4, 3, down=True, bias=False).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    from_full = F.conv2d(F.conv2d(x, conv.weight * conv.weight_gain, padding=1),
                         blur_kernel(4), stride=2, padding=1, groups=4)
    out = conv(x)
    assert out.shape == (2, 4, 8, 8)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], from_full[..., 1:-1, 1:-1])
    assert not torch.allclose(out, from_full)  # the border differs: zeros before the conv


def blur_kernel(c: int) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    return (torch.outer(k, k) / 64).expand(c, 1, 4, 4)


def test_grouped_modulated_upsampling_matches_per_sample_kernels() -> None:
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 4, 4), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    out = modulated_conv2d(x, weight, styles, up=True)
    assert out.shape == (3, 5, 8, 8)
    for b in range(3):
        wb = weight * styles[b].view(1, -1, 1, 1)
        wb = wb * torch.rsqrt(wb.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        torch.testing.assert_close(out[b:b + 1], upsample_conv2d(x[b:b + 1], wb),
                                   rtol=1e-4, atol=1e-5)


def test_an_even_upsampling_kernel_is_refused() -> None:
    with pytest.raises(GankitError, match="odd kernel size, got 4"):
        upsample_conv2d(torch.randn(1, 2, 4, 4), torch.randn(3, 2, 4, 4))
