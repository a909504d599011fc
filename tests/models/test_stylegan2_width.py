"""StyleGAN2's ``width``: one knob for channel_base and channel_max, as ``--width`` gives it."""

from __future__ import annotations

import pytest

from gankit.errors import GankitError
from gankit.models.archs import build_networks
from gankit.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator


def shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_width_32_is_the_cpu_default():
    assert shapes(StyleGAN2Generator(32, (3, 32, 32), width=32)) == shapes(
        StyleGAN2Generator(32, (3, 32, 32)))
    assert shapes(StyleGAN2Discriminator((3, 32, 32), width=32)) == shapes(
        StyleGAN2Discriminator((3, 32, 32)))


def test_width_sets_base_64x_and_cap_4x():
    gen = StyleGAN2Generator(16, (3, 32, 32), width=16, mapping_layers=2)
    # channels min(1024 // res, 64): 64 at 4, 8, 16; 32 at 32
    assert gen.synthesis.const.shape == (64, 4, 4)
    assert [b.torgb.conv.weight.shape[1] for b in gen.synthesis.blocks] == [64, 64, 32]
    same = StyleGAN2Generator(16, (3, 32, 32), channel_base=1024, channel_max=64,
                              mapping_layers=2)
    assert shapes(gen) == shapes(same)
    dis = StyleGAN2Discriminator((3, 32, 32), width=16)
    assert shapes(dis) == shapes(StyleGAN2Discriminator((3, 32, 32), channel_base=1024,
                                                        channel_max=64))


def test_width_overrides_base_and_cap():
    a = StyleGAN2Discriminator((3, 16, 16), width=4, channel_base=99999, channel_max=999)
    assert shapes(a) == shapes(StyleGAN2Discriminator((3, 16, 16), width=4))
    assert a.feature_dim == 16


def test_the_arch_registry_passes_width():
    gen, dis = build_networks("stylegan2", (3, 32, 32), z_dim=16, width=8)
    assert gen.synthesis.const.shape == (32, 4, 4)
    assert dis.feature_dim == 32


@pytest.mark.parametrize("cls", [StyleGAN2Generator, StyleGAN2Discriminator])
def test_bad_width_names_it(cls):
    args = (16, (3, 16, 16)) if cls is StyleGAN2Generator else ((3, 16, 16),)
    with pytest.raises(GankitError, match="width=0"):
        cls(*args, width=0)
