"""CycleGAN: cycle/identity math, loss weights, gradient routing, the translator, the domains."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from gankit.data import load_dataset
from gankit.data.domains import make_domains, transform_images
from gankit.errors import GankitError
from gankit.gan.cyclegan import (
    CycleEvaluator,
    CycleGANUpdater,
    HistoryBuffer,
    ResnetTranslator,
    cycle_losses,
)
from gankit.training import Trainer
from gankit.training.reporter import report_scope
from testsupport import make_cyclegan_updater as make_updater


class Affine(nn.Module):
    def __init__(self, scale: float, shift: float) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x + self.shift


# G, F as affine maps on a = 1 and b = 2 everywhere; the expected L1 errors worked by hand.
@pytest.mark.parametrize(("g", "f", "aba", "bab", "idt_b", "idt_a"), [
    ((2.0, 0.0), (0.5, 0.0), 0.0, 0.0, 2.0, 0.5),  # inverses: no cycle error
    ((1.0, 1.0), (1.0, 0.0), 1.0, 1.0, 1.0, 0.0),  # G adds 1, F is the identity
    ((1.0, 0.0), (1.0, 0.0), 0.0, 0.0, 0.0, 0.0),  # both identity: every term vanishes
    ((-1.0, 0.0), (2.0, 0.0), 3.0, 6.0, 4.0, 1.0),  # F(G(1)) = -2, G(F(2)) = -4
])
def test_cycle_and_identity_math(g: tuple[float, float], f: tuple[float, float], aba: float,
                                 bab: float, idt_b: float, idt_a: float) -> None:
    a, b = torch.ones(2, 1, 2, 2), torch.full((2, 1, 2, 2), 2.0)
    out = cycle_losses(Affine(*g), Affine(*f), a, b)
    assert out["cycle_aba"].item() == pytest.approx(aba)
    assert out["cycle_bab"].item() == pytest.approx(bab)
    assert out["identity_b"].item() == pytest.approx(idt_b)
    assert out["identity_a"].item() == pytest.approx(idt_a)
    torch.testing.assert_close(out["fake_b"], g[0] * a + g[1])
    assert "identity_a" not in cycle_losses(Affine(*g), Affine(*f), a, b, identity=False)


@pytest.mark.parametrize(("cycle", "identity"), [(10.0, 0.5), (3.0, 0.0), (0.0, 1.0)])
def test_generator_loss_weighs_the_terms(cycle: float, identity: float) -> None:
    u = make_updater(cycle=cycle, identity=identity)
    obs: dict[str, Any] = {}
    with report_scope(obs):
        u.update()
    v = {k: float(x) for k, x in obs.items()}
    expected = v["gen/adv"] + cycle * v["gen/cycle"] + identity * cycle * v.get("gen/identity", 0)
    assert v["gen/loss"] == pytest.approx(expected, rel=1e-5)
    assert ("gen/identity" in v) == (identity > 0)
    assert v["dis/loss"] == pytest.approx(v["dis/a"] + v["dis/b"], rel=1e-5)
    assert all(torch.isfinite(torch.tensor(x)) for x in v.values())


class SpyUpdater(CycleGANUpdater):
    def step(self, name: str, loss: torch.Tensor, *, retain_graph: bool = False) -> None:
        super().step(name, loss, retain_graph=retain_graph)
        if name == "gen":
            self.dis_grads = [p.grad for k in ("dis_a", "dis_b")
                              for p in self.raw_models[k].parameters()]


def test_generator_step_leaves_no_gradient_in_the_discriminators() -> None:
    u = make_updater(SpyUpdater)
    u.update()
    assert u.dis_grads and all(g is None for g in u.dis_grads)
    # The discriminator step that follows does train them.
    assert all(p.grad is not None for p in u.raw_models["dis_a"].parameters())


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (1, 28, 28)])
def test_translator_keeps_the_shape(shape: tuple[int, int, int]) -> None:
    y = ResnetTranslator(shape, 4)(torch.randn(2, *shape))
    assert y.shape == (2, *shape) and y.abs().max() <= 1


def test_translator_refuses_odd_sides() -> None:
    with pytest.raises(GankitError, match=r"\(1, 7, 7\) is not supported"):
        ResnetTranslator((1, 7, 7))


def _input_pixels_seen(net: ResnetTranslator, shape: tuple[int, int, int],
                       pixel: tuple[int, int]) -> torch.Tensor:
    """Which input pixels the output at ``pixel`` depends on through the convs: instance
    norm (whose statistics span the image) is swapped for the identity first."""
    for module in list(net.modules()):
        for child, sub in list(module.named_children()):
            if isinstance(sub, nn.InstanceNorm2d):
                setattr(module, child, nn.Identity())
    # Over 16 inputs, so that no input pixel in reach is missed because the ReLUs on its
    # path happen to be off for one input.
    x = torch.randn(16, *shape, requires_grad=True)
    net(x)[:, 0, pixel[0], pixel[1]].sum().backward()
    assert x.grad is not None
    return x.grad.abs().sum((0, 1)) > 0


@pytest.mark.parametrize(("n_blocks", "side"), [(0, 5), (1, 9), (2, 13)])
def test_full_resolution_translator_sees_a_square_around_each_pixel(n_blocks: int,
                                                                   side: int) -> None:
    torch.manual_seed(0)
    shape = (1, 16, 16)
    net = ResnetTranslator(shape, 8, n_blocks=n_blocks, down=0)
    assert net(torch.randn(2, *shape)).shape == (2, *shape)
    assert ResnetTranslator((3, 7, 7), 4, n_blocks, down=0)(torch.randn(2, 3, 7, 7)).shape == (
        2, 3, 7, 7)  # no level to halve: any side
    seen = _input_pixels_seen(net, shape, (8, 8))
    expected = torch.zeros(16, 16, dtype=torch.bool)
    r = side // 2
    expected[8 - r:8 + r + 1, 8 - r:8 + r + 1] = True
    assert torch.equal(seen, expected)


def test_downsampling_translator_sees_the_whole_small_image() -> None:
    # The paper's layout scaled down to 8x8 (one stride-2 level): every pixel in view.
    torch.manual_seed(0)
    seen = _input_pixels_seen(ResnetTranslator((1, 8, 8), 8, n_blocks=3, down=1), (1, 8, 8),
                              (0, 0))
    assert seen.all()


@pytest.mark.parametrize(("shape", "down"), [((1, 6, 6), 2), ((1, 4, 4), 2), ((1, 1, 1), 0)])
def test_translator_refuses_sides_its_levels_cannot_halve(shape: tuple[int, int, int],
                                                          down: int) -> None:
    step = 2 ** down
    with pytest.raises(GankitError, match=rf"divisible by {step} and at least {2 * step}"):
        ResnetTranslator(shape, down=down)


def test_domains_share_no_source_image() -> None:
    data = load_dataset("digits", "val")
    d = make_domains(data, "rot90")
    assert len(d) == len(data) // 2 and d.shape == (1, 8, 8)
    back = torch.rot90(d.b, -1, dims=(-2, -1))  # B's source images
    torch.testing.assert_close(back, data.x[1::2][: len(d)])
    torch.testing.assert_close(d.a, data.x[0::2][: len(d)])
    a_bytes = {x.numpy().tobytes() for x in data.x[0::2]}
    assert not any(x.numpy().tobytes() in a_bytes for x in data.x[1::2])
    a, b = d.__getitems__([3, 0])
    torch.testing.assert_close(a, d.a[[3, 0]])
    torch.testing.assert_close(b, d.b[[3, 0]])


@pytest.mark.parametrize(("bad", "match"), [("spin", "unknown domain transform 'spin'")])
def test_unknown_transform(bad: str, match: str) -> None:
    with pytest.raises(GankitError, match=match):
        transform_images(torch.zeros(1, 1, 8, 8), bad)


def test_point_data_has_no_domains() -> None:
    with pytest.raises(GankitError, match="holds points"):
        make_domains(load_dataset("ring8", "val"))


def test_evaluator_reports_both_cycle_directions(tmp_path: Any) -> None:
    u = make_updater()
    d = make_domains(load_dataset("digits", "val"))
    trainer = Trainer(u, (1, "iteration"), out=tmp_path)
    obs: dict[str, Any] = {}
    with report_scope(obs):
        CycleEvaluator([(d.a, d.b)], d)(trainer)
    g, f = u.raw_models["gen_ab"].eval(), u.raw_models["gen_ba"].eval()
    with torch.no_grad():
        aba = (f(g(d.a)) - d.a).abs().mean().item()
        bab = (g(f(d.b)) - d.b).abs().mean().item()
    assert float(obs["val/cycle_aba"]) == pytest.approx(aba, rel=1e-5)
    assert float(obs["val/cycle_bab"]) == pytest.approx(bab, rel=1e-5)
    assert float(obs["val/cycle"]) == pytest.approx((aba + bab) / 2, rel=1e-5)


# ------------------------------------------------------------------ the history buffer
def _marked(values: range) -> torch.Tensor:
    """Images whose every pixel is their number: which image came back is readable."""
    return torch.tensor(list(values), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)


@pytest.mark.parametrize("n", [1, 7, 50, 64, 130])
def test_history_returns_a_batch_of_the_same_size(n: int) -> None:
    buffer = HistoryBuffer(50)
    for _ in range(3):
        out = buffer(torch.randn(n, 1, 4, 4))
        assert out.shape == (n, 1, 4, 4)
    assert len(buffer) == min(50, 3 * n)


def test_history_passes_images_through_while_filling() -> None:
    buffer = HistoryBuffer(10)
    first = buffer(_marked(range(6)))
    torch.testing.assert_close(first, _marked(range(6)))
    second = buffer(_marked(range(6, 10)))  # exactly full now: still all new
    torch.testing.assert_close(second, _marked(range(6, 10)))


def test_history_mixes_old_and_new_half_and_half() -> None:
    torch.manual_seed(0)
    buffer = HistoryBuffer(50)
    buffer(_marked(range(50)))
    seen, new, total = set(range(50)), 0, 0
    for step in range(40):
        start = 1000 + 32 * step
        ids = buffer(_marked(range(start, start + 32)))[:, 0, 0, 0].long().tolist()
        fresh = [i for i in ids if i >= start]
        new += len(fresh)
        total += len(ids)
        old = [i for i in ids if i < start]
        assert all(i in seen for i in old)  # an old image was generated before
        assert len(set(old)) == len(old)  # and leaves the buffer when it is returned
        seen.update(range(start, start + 32))
        seen.difference_update(old)
    assert 0.45 < new / total < 0.55  # 1,280 draws of p = 0.5: sd 0.014
    assert len(buffer) == 50


def test_history_state_round_trips() -> None:
    buffer = HistoryBuffer(8)
    buffer(torch.randn(12, 1, 2, 2))
    state = buffer.state_dict()
    assert state["count"] == 8 and state["images"].shape == (8, 1, 2, 2)
    other = HistoryBuffer(8)
    other.load_state_dict(state)
    batch = torch.randn(5, 1, 2, 2)
    rng = torch.get_rng_state()
    expected = buffer(batch)
    torch.set_rng_state(rng)
    torch.testing.assert_close(other(batch), expected, rtol=0, atol=0)
    torch.testing.assert_close(other.images, buffer.images, rtol=0, atol=0)
    with pytest.raises(ValueError, match="holds 8 images, this run's 4"):
        HistoryBuffer(4).load_state_dict(state)
    with pytest.raises(ValueError, match="size=0"):
        HistoryBuffer(0)


def test_updater_saves_its_history_and_shows_it_to_the_discriminators() -> None:
    u = make_updater(history=6)
    u.update()  # batches of 4
    u.update()
    assert len(u.history_a) == len(u.history_b) == 6
    state = u.state_dict()
    fresh = make_updater(history=6)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.history_b.images, u.history_b.images, rtol=0, atol=0)
    assert make_updater(history=0).history_a is None
    with pytest.raises(ValueError, match="no history buffers"):
        make_updater(history=6).load_state_dict(make_updater(history=0).state_dict())


class FakeSpy(CycleGANUpdater):
    def update_core(self, batch: Any) -> None:
        seen: list[torch.Tensor] = []
        dis = self.models["dis_b"]
        hook = dis.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
        super().update_core(batch)
        hook.remove()
        self.seen_by_dis_b = seen


def test_discriminator_sees_fakes_from_the_history() -> None:
    u = make_updater(FakeSpy, history=4)
    u.update()  # fills the buffer with this step's 4 fakes
    before = {x.numpy().tobytes() for x in u.history_b.images}
    torch.manual_seed(3)
    u.update()
    new, real, shown = u.seen_by_dis_b  # the G step's frozen call, then the D step's two
    fresh = {x.numpy().tobytes() for x in new}
    rows = [x.numpy().tobytes() for x in shown]
    assert shown.shape == real.shape == (4, 1, 8, 8)
    assert all(r in before or r in fresh for r in rows)
    assert any(r in before for r in rows) and any(r in fresh for r in rows)
    # Without a history the discriminator sees exactly this step's fakes.
    plain = make_updater(FakeSpy, history=0)
    plain.update()
    new, _, shown = plain.seen_by_dis_b
    assert torch.equal(new, shown)


# ------------------------------------------------------------------- the domains
def test_default_domains_differ_in_appearance() -> None:
    data = load_dataset("digits", "val")
    d = make_domains(data)
    assert d.transform == "invert"
    torch.testing.assert_close(d.b, -data.x[1::2][: len(d)])


def test_thicken_is_a_plus_shaped_dilation() -> None:
    x = torch.full((1, 1, 5, 5), -1.0)
    x[0, 0, 2, 2] = 1.0  # one ink pixel in the middle
    x[0, 0, 0, 4] = 0.5  # and a fainter one in a corner
    y = transform_images(x, "thicken")
    expected = torch.full((1, 1, 5, 5), -1.0)
    for r, c in ((2, 2), (1, 2), (3, 2), (2, 1), (2, 3)):
        expected[0, 0, r, c] = 1.0
    for r, c in ((0, 4), (1, 4), (0, 3)):  # the border adds no ink
        expected[0, 0, r, c] = 0.5
    torch.testing.assert_close(y, expected)
    digits = load_dataset("digits", "val").x
    thick = transform_images(digits, "thicken")
    assert (thick >= digits).all() and thick.mean() > digits.mean() + 0.3
