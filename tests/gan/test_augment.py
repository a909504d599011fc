"""DiffAugment and ADA: differentiable, the identity at p=0, one transform for real and fake,
ADA's p following the sign of D on reals, and GANUpdater feeding D only augmented batches."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from gankit.data.augment import ADA, DIFFAUG_OPS, Augment, DiffAugment, get_augment
from gankit.gan.updaters import GANUpdater
from testsupport import TinyG

AUGMENTS = {
    **{f"diffaug-{op}": (lambda op=op: DiffAugment((op,))) for op in DIFFAUG_OPS},
    "diffaug-all": lambda: DiffAugment(),
    "ada-geometric": lambda: ADA(p=1.0, color=False),
    "ada-color": lambda: ADA(p=1.0, geometric=False),
    "ada-all": lambda: ADA(p=0.7),
}


def _images(c: int, n: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", list(AUGMENTS))
def test_gradient_reaches_the_input_and_the_batch_changes(name: str, channels: int) -> None:
    torch.manual_seed(1)
    x = _images(channels).requires_grad_(True)
    out = AUGMENTS[name]()(x)
    assert out.shape == x.shape
    assert not torch.equal(out, x)  # it did transform something
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("make", [lambda: DiffAugment(p=0.0), lambda: ADA(p=0.0),
                                  lambda: DiffAugment(("translation",), p=0.0)])
def test_p_zero_is_the_identity_bit_for_bit(make, channels: int) -> None:
    torch.manual_seed(2)
    x = _images(channels)
    assert torch.equal(make()(x), x)


@pytest.mark.parametrize("name", ["diffaug-translation", "diffaug-cutout", "ada-geometric"])
def test_real_and_fake_get_the_same_kind_of_transform(name: str) -> None:
    # The transform's parameters come from the RNG, never from the batch's content: under the
    # same RNG state a real and a fake batch get the same (here linear) transform T, so
    # T(a·real + b·fake) = a·T(real) + b·T(fake).
    real, fake = _images(1, seed=3), _images(1, seed=4)
    aug = AUGMENTS[name]()
    outs = []
    for batch in (real, fake, 0.3 * real + 0.7 * fake):
        torch.manual_seed(5)
        outs.append(aug(batch))
    assert torch.allclose(outs[2], 0.3 * outs[0] + 0.7 * outs[1], atol=1e-5)
    assert not torch.equal(outs[0], real)


def test_diffaug_translation_is_an_integer_shift_with_zero_padding() -> None:
    torch.manual_seed(6)
    x = _images(1, n=32, size=16) + 3.0  # no zeros in the image itself
    out = DiffAugment(("translation",))(x)
    for i in range(32):
        matched = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                want = torch.zeros_like(x[i])
                ys, yd = (slice(dy, 16), slice(0, 16 - dy)) if dy >= 0 else (
                    slice(0, 16 + dy), slice(-dy, 16))
                xs, xd = (slice(dx, 16), slice(0, 16 - dx)) if dx >= 0 else (
                    slice(0, 16 + dx), slice(-dx, 16))
                want[:, yd, xd] = x[i][:, ys, xs]
                matched |= torch.equal(out[i], want)
        assert matched, i


def test_diffaug_cutout_zeroes_a_half_side_square() -> None:
    torch.manual_seed(7)
    x = torch.ones(64, 1, 16, 16)
    out = DiffAugment(("cutout",))(x)
    zeros = (out == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() > 0  # an 8x8 square, clipped at the borders


def test_diffaug_cutout_at_32_is_16x16_and_translation_at_most_4() -> None:
    # The paper's ratios at the benchmark's size: cutout int(32 * 0.5 + 0.5) = 16 on a side,
    # translation up to int(32 * 0.125 + 0.5) = 4 pixels each way.
    torch.manual_seed(17)
    x = torch.ones(256, 1, 32, 32)
    zeros = (DiffAugment(("cutout",))(x) == 0).flatten(1).sum(1)
    assert zeros.max() == 256 and zeros.min() > 0
    ramp = torch.arange(32.0).expand(256, 1, 32, 32) + 1  # column index + 1, no zeros
    out = DiffAugment(("translation",))(ramp)
    inner = (out - ramp)[:, 0, 8:24, 8:24]  # away from the zero border: one column shift
    assert torch.equal(inner, inner[:, :1, :1].expand_as(inner))
    assert set(inner[:, 0, 0].tolist()) == set(range(-4, 5))


def test_diffaug_color_is_the_papers_brightness_saturation_contrast() -> None:
    torch.manual_seed(18)
    aug = DiffAugment(("color",))
    # A constant image: saturation and contrast act around means it equals, so only the
    # brightness offset U[-0.5, 0.5] remains, one per sample.
    flat = torch.full((512, 3, 4, 4), 0.2)
    shift = aug(flat) - flat
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.min() >= -0.5 and shift.max() <= 0.5
    assert shift.min() < -0.45 and shift.max() > 0.45
    # A grey image with zero mean: saturation is a no-op, contrast scales by U[0.5, 1.5].
    grey = torch.randn(512, 1, 4, 4).expand(512, 3, 4, 4)
    grey = grey - grey.mean(dim=(1, 2, 3), keepdim=True)
    out = aug(grey)
    centred = out - out.mean(dim=(1, 2, 3), keepdim=True)
    k = (centred.flatten(1) * grey.flatten(1)).sum(1) / grey.flatten(1).pow(2).sum(1)
    assert torch.allclose(centred, k[:, None, None, None] * grey, atol=1e-5)
    assert k.min() >= 0.5 - 1e-5 and k.max() <= 1.5 + 1e-5
    assert k.min() < 0.6 and k.max() > 1.4
    # Zero channel mean at every pixel: saturation U[0, 2] times contrast U[0.5, 1.5].
    chroma = torch.randn(512, 3, 4, 4)
    chroma = chroma - chroma.mean(dim=1, keepdim=True)
    out = aug(chroma)
    centred = out - out.mean(dim=(1, 2, 3), keepdim=True)
    k = (centred.flatten(1) * chroma.flatten(1)).sum(1) / chroma.flatten(1).pow(2).sum(1)
    assert torch.allclose(centred, k[:, None, None, None] * chroma, atol=1e-5)
    assert k.min() >= 0 and k.max() <= 3 + 1e-5
    assert k.min() < 0.1 and k.max() > 2.2  # beyond what contrast alone reaches


def test_ada_color_on_grey_images_keeps_them_grey_and_hue_saturation_are_grey_neutral() -> None:
    torch.manual_seed(8)
    x = torch.zeros(16, 3, 4, 4)  # grey pixels: hue and saturation must leave them grey
    x[:] = torch.linspace(-1, 1, 16)[:, None, None, None]
    out = ADA(p=1.0, geometric=False)(x)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5)
    assert torch.allclose(out[:, 1], out[:, 2], atol=1e-5)


def test_ada_p_rises_on_an_overfitting_d_at_the_paper_speed() -> None:
    ada = ADA(target=0.6, kimg=500)
    for _ in range(40):  # 10 adjustments of 4 batches of 64
        ada.observe(torch.full((64, 1), 5.0))  # D(real) strongly positive: r_t = 1 > 0.6
    assert ada.rt.item() == 1.0
    assert ada.p.item() == pytest.approx(10 * 4 * 64 / 500_000, rel=1e-5)
    ada.observe(torch.full((64, 1), 5.0))  # mid-interval: p waits for the 4th batch
    assert ada.p.item() == pytest.approx(10 * 4 * 64 / 500_000, rel=1e-5)


def test_ada_p_falls_on_an_underfitting_d_and_stays_in_0_1() -> None:
    ada = ADA(target=0.6, p=0.5, kimg=10)
    for _ in range(8):
        ada.observe(-torch.rand(100) - 0.1)  # D(real) negative: r_t = -1 < 0.6
    assert ada.rt.item() == -1.0
    assert ada.p.item() == pytest.approx(0.5 - 2 * 400 / 10_000)
    for _ in range(100):
        ada.observe(-torch.ones(100))
    assert ada.p.item() == 0.0
    for _ in range(400):
        ada.observe(torch.ones(100))
    assert ada.p.item() == 1.0
    assert ada.stats()["aug/p"] is ada.p


def test_ada_state_dict_round_trip_mid_interval() -> None:
    a = ADA(kimg=1)
    for _ in range(6):
        a.observe(torch.randn(32))
    b = ADA(kimg=1)
    b.load_state_dict(a.state_dict())
    for _ in range(6):
        out = torch.randn(32)
        a.observe(out)
        b.observe(out)
        assert torch.equal(a.p, b.p) and torch.equal(a.rt, b.rt)


@pytest.mark.parametrize(("spec", "kind"), [
    ("none", type(None)), ("diffaug", DiffAugment), ("diffaug:color,cutout", DiffAugment),
    ("ada", ADA), ("ada:0.7", ADA), ("ada:0.6:20", ADA)])
def test_get_augment(spec: str, kind: type) -> None:
    assert isinstance(get_augment(spec), kind)
    if spec == "diffaug:color,cutout":
        assert get_augment(spec).policy == ("color", "cutout")
    if spec == "ada:0.6:20":
        assert get_augment(spec).kimg == 20


@pytest.mark.parametrize("spec", ["bogus", "diffaug:flip", "diffaug:", "ada:1.5", "ada:x",
                                  "ada:0.6:0", "none:1"])
def test_get_augment_rejects(spec: str) -> None:
    # the library names the spec, not a flag (the CLI adds --augment)
    with pytest.raises(ValueError, match=f"augmentation '{re.escape(spec)}'") as err:
        get_augment(spec)
    assert "--" not in str(err.value)


def test_ada_fixed_keeps_p_where_it_is_set() -> None:
    ada = get_augment("ada:fixed")
    assert isinstance(ada, ADA) and ada.target is None and ada.p.item() == 0.0
    ada.p.fill_(0.3)
    ada.observe(torch.ones(64))  # would move p down and up at target 0.6; fixed: stays
    ada.observe(torch.ones(64))
    ada.observe(torch.ones(64))
    ada.observe(torch.ones(64))
    assert ada.p.item() == pytest.approx(0.3)


# ------------------------------------------------------------------- through GANUpdater
class Marked(Augment):
    """Adds 100 to what it sees, so D can tell an augmented batch from a raw one."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x + 100.0


class SpyD(nn.Module):
    def __init__(self, sign: float = 1.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen: list[torch.Tensor] = []
        self.sign = sign

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(x.detach())
        return self.sign * 5.0 + self.w * x.flatten(1).mean(1)


def _updater(dis: nn.Module, augment: Augment | str | None, **kw) -> GANUpdater:
    gen = TinyG()
    data = torch.rand(64, 1, 4, 4) * 2 - 1
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    return GANUpdater(gen, dis, torch.optim.SGD(gen.parameters(), 0.01),
                      torch.optim.SGD(dis.parameters(), 0.01), loader, augment=augment, **kw)


def test_updater_augments_every_batch_d_sees_in_both_steps() -> None:
    dis, aug = SpyD(), Marked()
    updater = _updater(dis, aug)
    updater.update()
    assert len(dis.seen) == 3  # D step: real and fake; G step: fake
    assert aug.calls == 3
    assert all(t.min() > 90 for t in dis.seen)  # raw batches lie in [-1, 1]


def test_updater_ada_p_rises_with_an_overfitting_d_and_is_reported() -> None:
    import gankit

    updater = _updater(SpyD(sign=1.0), ADA(kimg=1))
    observation: dict = {}
    with gankit.training.reporter.report_scope(observation):
        for _ in range(8):
            updater.update()
    assert updater.augment.p.item() == pytest.approx(2 * 4 * 16 / 1000)
    assert observation["aug/p"].item() == updater.augment.p.item()
    down = _updater(SpyD(sign=-1.0), ADA(p=0.5, kimg=1))
    for _ in range(8):
        down.update()
    assert down.augment.p.item() == pytest.approx(0.5 - 2 * 4 * 16 / 1000)


def test_generator_gradient_flows_through_diffaugment_in_its_step() -> None:
    # The generator is only ever judged through the augmentation: its step's loss must
    # reach its weights through the (differentiable) DiffAugment ops.
    class LinD(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(16, 1)

        def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
            return self.lin(x.flatten(1))

    torch.manual_seed(19)
    updater = _updater(LinD(), DiffAugment())
    gen = updater.raw_models["gen"]
    before = gen.lin.weight.detach().clone()
    grads: list[torch.Tensor] = []
    gen.lin.weight.register_hook(lambda g: grads.append(g.clone()))
    updater.update()
    assert len(grads) == 1 and grads[0].abs().sum() > 0
    assert not torch.equal(gen.lin.weight, before)
