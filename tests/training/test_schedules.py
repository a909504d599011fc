"""Schedules: the ramps' values, progress in iterations and in images, and one mechanism
for a term's weight, the learning rate, Adam's beta2 and the EMA's half-life that a resumed
run continues bit for bit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gankit import Trainer
from gankit.errors import GankitError
from gankit.extensions import EMA, Snapshot
from gankit.gan import R1, GANUpdater
from gankit.training.schedules import Constant, Ramp, ScheduleHyperparameters, progress_of
from testsupport import TinyG, differing


def test_ramp_values() -> None:
    cos = Ramp(2e-4, 5e-5, 100.0)
    assert cos(0) == 2e-4 and cos(100) == 5e-5 and cos(1e9) == 5e-5
    assert cos(50) == pytest.approx((2e-4 + 5e-5) / 2)
    assert cos(25) == pytest.approx(5e-5 + 1.5e-4 * (1 + math.cos(math.pi / 4)) / 2)
    lin = Ramp(0.0, 1.0, 10, shape="linear", delay=5)
    assert [lin(t) for t in (0, 5, 10, 15, 20)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert Constant(3)(123) == 3.0
    for bad in (dict(length=0), dict(unit="epochs"), dict(shape="step"), dict(delay=-1)):
        with pytest.raises(GankitError):
            Ramp(**{"start": 1.0, "end": 0.0, "length": 10, **bad})


def _updater() -> GANUpdater:
    torch.manual_seed(0)
    data = torch.rand(48, 1, 4, 4) * 2 - 1
    gen, dis = TinyG(), torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    dis.forward = lambda x, y=None, _f=dis.forward: _f(x)  # type: ignore[method-assign]
    return GANUpdater(gen, dis, torch.optim.Adam(gen.parameters(), 1e-3),
                      torch.optim.Adam(dis.parameters(), 1e-3),
                      torch.utils.data.DataLoader(data, batch_size=8),
                      dis_terms=[R1(Ramp(1.0, 0.1, 0.04, unit="kimg"))])


def test_progress_counts_updates_and_images() -> None:
    u = _updater()
    for _ in range(3):
        u.update()
    assert (u.iteration, u.images_seen) == (3, 24)
    assert progress_of(u, "kimg") == 0.024 and progress_of(u, "iteration") == 3.0
    assert u.state_dict()["images_seen"] == 24


def _trainer(out: Path, stop: int) -> Trainer:
    u = _updater()
    trainer = Trainer(u, (stop, "iteration"), out)
    trainer.extend(ScheduleHyperparameters({
        "gen/lr": Ramp(1e-3, 1e-4, 10), "dis/beta2": Ramp(0.9, 0.99, 0.08, unit="kimg")}))
    trainer.extend(EMA(u.raw_models["gen"], half_life=Ramp(0.0, 0.05, 8)))
    trainer.extend(Snapshot(n_retains=None), trigger=(3, "iteration"))
    return trainer


def test_every_scheduled_value_resumes_bitwise(tmp_path: Path) -> None:
    straight = _trainer(tmp_path / "a", 6)
    straight.run()
    _trainer(tmp_path / "b", 3).run()
    resumed = _trainer(tmp_path / "b", 6)
    resumed.resume(tmp_path / "b")
    resumed.run()
    assert differing(straight.state_dict()["updater"], resumed.state_dict()["updater"]) == []
    assert differing(straight.state_dict()["extensions"],
                     resumed.state_dict()["extensions"]) == []
    u = straight.updater
    # the values the schedules set for update 7 (after 6 updates, 48 images)
    assert u.optimizers["gen"].param_groups[0]["lr"] == Ramp(1e-3, 1e-4, 10)(6)
    assert u.optimizers["dis"].param_groups[0]["betas"][1] == pytest.approx(
        Ramp(0.9, 0.99, 0.08)(0.048))
    ema = straight.get_extension("EMA")
    assert ema.images_seen == 48


def test_schedule_targets_are_checked() -> None:
    with pytest.raises(GankitError, match="OPTIMIZER/PARAM"):
        ScheduleHyperparameters({"gen/momentum": Ramp(1, 0, 1)})
    with pytest.raises(GankitError, match="no optimizer named 'enc'"):
        ScheduleHyperparameters({"enc/lr": Ramp(1, 0, 1)}).apply(_updater())
