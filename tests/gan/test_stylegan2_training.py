"""StyleGAN2 training pieces: lazy-regularisation rescaling, path-length regulariser, resume."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

import gankit
from gankit.extensions import Snapshot
from gankit.gan import (
    R1,
    GANUpdater,
    PathLength,
    lazy_adam_hparams,
    lazy_regularization,
    path_length_penalty,
)
from gankit.models import DCGANGenerator
from gankit.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from gankit.training.reporter import report_scope

TINY: dict[str, Any] = {"channel_base": 128, "channel_max": 8}


@pytest.mark.parametrize(
    ("every", "want_lr", "want_betas"),
    [
        (16, 0.0025 * 16 / 17, (0.0, 0.99 ** (16 / 17))),  # the paper's R1 interval
        (4, 0.0025 * 0.8, (0.0, 0.99**0.8)),  # its path-length interval
        (1, 0.0025, (0.0, 0.99)),  # not lazy: unchanged
    ],
)
def test_lazy_rescaling_values(every, want_lr, want_betas):
    lr, betas = lazy_adam_hparams(0.0025, (0.0, 0.99), every)
    assert lr == pytest.approx(want_lr, rel=1e-12)
    assert betas == pytest.approx(want_betas, rel=1e-12)
    # c = 16/17: lr 0.0025 -> 0.00235294..., beta2 0.99 -> 0.9905855...
    if every == 16:
        assert lr == pytest.approx(0.002352941, rel=1e-6)
        assert betas[1] == pytest.approx(0.9905855, rel=1e-6)


def test_lazy_regularization_rescales_optimizer_groups_in_place():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.002,
                           betas=(0.5, 0.9))
    assert lazy_regularization(opt, 4) is opt
    c = 4 / 5
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.002 * c, 0.01 * c])
    assert opt.param_groups[0]["betas"] == pytest.approx((0.5**c, 0.9**c))
    with pytest.raises(ValueError, match="no betas"):
        lazy_regularization(torch.optim.SGD([a], lr=0.1), 4)
    with pytest.raises(ValueError, match="every=0"):
        lazy_adam_hparams(0.1, (0.0, 0.99), 0)


def test_path_length_penalty_of_a_linear_synthesis_is_exact():
    """images = A ws: the length is ||A^T u|| for the drawn direction u, known exactly."""
    torch.manual_seed(0)
    b, num_ws, w_dim, side = 3, 2, 5, 4
    a = torch.randn(num_ws * w_dim, 1 * side * side, dtype=torch.float64, requires_grad=True)
    ws = torch.randn(b, num_ws, w_dim, dtype=torch.float64, requires_grad=True)
    images = (ws.flatten(1) @ a).view(b, 1, side, side)
    pl_mean = torch.tensor(0.5, dtype=torch.float64)
    state = torch.get_rng_state()
    value = path_length_penalty(images, ws, pl_mean, decay=0.1)
    torch.set_rng_state(state)
    u = torch.randn(b, 1, side, side, dtype=torch.float64) / side
    grad = (u.flatten(1) @ a.detach().T).view(b, num_ws, w_dim)
    lengths = grad.square().sum(2).mean(1).sqrt()
    want_mean = 0.5 + 0.1 * (lengths.mean() - 0.5)
    assert float(pl_mean) == pytest.approx(float(want_mean), rel=1e-12)
    want = (lengths - want_mean).square().mean()
    assert float(value.detach()) == pytest.approx(float(want), rel=1e-9)
    value.backward()  # it differentiates back to the weights (here: A)
    assert a.grad is not None and a.grad.abs().sum() > 0


def _images(n_batches: int = 3, batch: int = 4, n_classes: int = 2) -> list[Any]:
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(batch, 3, 16, 16, generator=g) * 2 - 1,
             torch.arange(batch) % n_classes) for _ in range(n_batches)]


def build(out: Path, iterations: int, *, pl_weight: float = 2.0) -> gankit.Trainer:
    torch.manual_seed(0)
    gen = StyleGAN2Generator(8, (3, 16, 16), n_classes=2, mapping_layers=2, **TINY)
    dis = StyleGAN2Discriminator((3, 16, 16), n_classes=2, **TINY)
    # the lazy terms rescale both optimizers (lazy_regularization) for their interval 2
    opt_g = torch.optim.Adam(gen.parameters(), 2e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(dis.parameters(), 2e-3, betas=(0.0, 0.99))
    updater = GANUpdater(gen, dis, opt_g, opt_d, _images(), loss="ns",
                         dis_terms=[R1(1.0, every=2)], gen_terms=[PathLength(pl_weight, every=2)])
    assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-3 * 2 / 3)
    trainer = gankit.Trainer(updater, (iterations, "iteration"), out=out)
    trainer.extend(Snapshot(n_retains=1, trigger=lambda t: t.stop_trigger(t)))
    return trainer


def final_state(trainer: gankit.Trainer) -> dict[str, Any]:
    u = trainer.updater
    state = u.state_dict()
    return {"models": state["models"], "opt": {k: v["state"] for k, v in
                                               state["optimizers"].items()},
            "pl": state["terms"]["gen/pl"]["mean"]}


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for name in a["models"]:
        for key, t in a["models"][name].items():
            assert torch.equal(t, b["models"][name][key]), (name, key)
    for name in a["opt"]:
        for i, s in a["opt"][name].items():
            for key, t in s.items():
                assert torch.equal(t, b["opt"][name][i][key]), (name, i, key)
    assert torch.equal(a["pl"], b["pl"])


def test_stylegan2_trains_with_penalties_and_resumes_bitwise(tmp_path):
    straight = build(tmp_path / "straight", 6)
    straight.run()
    want = final_state(straight)
    assert float(want["pl"]) > 0  # the regulariser ran and moved its mean
    assert all(torch.isfinite(t).all() for t in want["models"]["gen"].values())

    build(tmp_path / "split", 3).run()
    snap = torch.load(tmp_path / "split" / "snapshot_iter_3.pt", weights_only=True)
    saved_mean = snap["updater"]["terms"]["gen/pl"]["mean"]
    assert float(saved_mean) > 0  # saved in the snapshot
    resumed = build(tmp_path / "split", 6)
    resumed.resume(tmp_path / "split")
    assert torch.equal(resumed.updater.terms["gen"][0].mean, saved_mean)
    resumed.run()
    assert_same(final_state(resumed), want)


def test_path_length_mean_is_what_makes_the_resume_exact(tmp_path, monkeypatch):
    """The comparison is sharp: not restoring the path-length mean alone breaks equality."""
    straight = build(tmp_path / "straight", 6)
    straight.run()
    build(tmp_path / "split", 3).run()
    resumed = build(tmp_path / "split", 6)
    monkeypatch.setattr(GANUpdater, "load_state_dict",
                        lambda self, state: gankit.Updater.load_state_dict(self, state))
    resumed.resume(tmp_path / "split")
    resumed.run()
    got, want = final_state(resumed), final_state(straight)
    assert not torch.equal(got["pl"], want["pl"])


def test_path_length_option_checks():
    gen, dis = StyleGAN2Generator(8, (3, 16, 16), **TINY), StyleGAN2Discriminator((3, 16, 16))
    opt = torch.optim.Adam(gen.parameters())
    loader = [torch.zeros(2, 3, 16, 16)]
    with pytest.raises(ValueError, match="DCGANGenerator is not one"):
        GANUpdater(DCGANGenerator(8, (3, 16, 16)), dis, opt, opt, loader,
                   gen_terms=[PathLength(2.0)])
    with pytest.raises(ValueError, match="interval must be a whole number"):
        PathLength(2.0, every=0)
    with pytest.raises(ValueError, match="decay must be in"):
        PathLength(2.0, decay=0.0)
    off = GANUpdater(gen, dis, opt, opt, loader)
    assert "terms" not in off.state_dict()  # snapshots of other runs unchanged
    on = GANUpdater(gen, dis, opt, opt, loader, gen_terms=[PathLength(2.0)])
    with pytest.raises(ValueError, match="no state of the gen/pl term"):
        on.load_state_dict(off.state_dict())


def test_generator_step_reports_the_path_length_terms():
    torch.manual_seed(0)
    gen = StyleGAN2Generator(8, (3, 16, 16), mapping_layers=1, **TINY)
    dis = StyleGAN2Discriminator((3, 16, 16), **TINY)
    updater = GANUpdater(gen, dis, torch.optim.Adam(gen.parameters()),
                         torch.optim.Adam(dis.parameters()), [torch.zeros(4, 3, 16, 16)],
                         gen_terms=[PathLength(2.0, every=2)])
    seen = []
    for _ in range(3):
        obs: dict[str, Any] = {}
        with report_scope(obs):
            updater.update()
        seen.append(sorted(obs))
    assert "gen/pl" in seen[0] and "gen/pl_mean" in seen[0]
    assert "gen/pl" not in seen[1] and "gen/loss" in seen[1]
    assert "gen/pl" in seen[2]
    assert math.isfinite(float(updater.terms["gen"][0].mean))


def test_bf16_training_steps_with_both_regularisers():
    torch.manual_seed(0)
    gen = StyleGAN2Generator(8, (3, 16, 16), n_classes=2, mapping_layers=1, **TINY)
    dis = StyleGAN2Discriminator((3, 16, 16), n_classes=2, **TINY)
    updater = GANUpdater(gen, dis, torch.optim.Adam(gen.parameters()),
                         torch.optim.Adam(dis.parameters()), _images(2),
                         dis_terms=[R1(1.0)], gen_terms=[PathLength(2.0, every=1)],
                         precision="bf16")
    before = [p.detach().clone() for p in gen.parameters()]
    obs: dict[str, Any] = {}
    with report_scope(obs):
        updater.update()
    assert all(math.isfinite(float(obs[k])) for k in ("dis/loss", "dis/r1", "gen/loss", "gen/pl"))
    assert any(not torch.equal(a, b) for a, b in zip(before, gen.parameters(), strict=True))
    assert all(p.dtype == torch.float32 for p in gen.parameters())
