"""report(), scopes, DictSummary, and no host sync per training step."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import gankit
from gankit.extensions import FailOnNonFinite, LogReport, PrintReport, ProgressBar
from gankit.training import DictSummary, report, report_scope


def test_report_stores_detached_scalars_in_the_current_scope():
    w = torch.tensor([2.0], requires_grad=True)
    with report_scope({}) as observation:
        report({"loss": (w * 3).sum(), "lr": 0.1, "step": 4})
        report({"loss": torch.ones(1, 1)}, "dis")
    assert set(observation) == {"loss", "lr", "step", "dis/loss"}
    assert observation["loss"].shape == () and not observation["loss"].requires_grad
    assert observation["loss"].item() == 6.0
    assert observation["dis/loss"].shape == ()
    assert (observation["lr"], observation["step"]) == (0.1, 4)


def test_report_goes_to_the_innermost_scope_and_is_a_no_op_outside():
    report({"x": 1.0})  # no scope: nothing happens, nothing raises
    with report_scope({}) as outer:
        report({"a": 1.0})
        with report_scope({}) as inner:
            report({"b": 2.0})
        report({"c": 3.0})
    assert outer == {"a": 1.0, "c": 3.0}
    assert inner == {"b": 2.0}


@pytest.mark.parametrize("shape", [(3,), (2, 2), (0,)])
def test_report_of_a_non_scalar_tensor_errors(shape):
    with report_scope({}), pytest.raises(ValueError, match=r"tensor of shape .* for 'gen/loss'"):
        report({"loss": torch.zeros(shape)}, "gen")


def test_dict_summary_means_over_what_was_reported():
    summary = DictSummary()
    summary.add({"a": torch.tensor(1.0), "b": 2, "skip": "text"})
    summary.add({"a": torch.tensor(3.0, dtype=torch.float64)})
    summary.add({"a": 5.0, "b": torch.tensor(4, dtype=torch.int64)})
    assert len(summary) == 2
    assert summary.compute_mean() == {"a": pytest.approx(3.0), "b": pytest.approx(3.0)}
    assert DictSummary().compute_mean() == {}


def test_dict_summary_state_round_trip_continues_the_same_means():
    values = [torch.tensor(v) for v in (0.1, 0.7, 1.3, 2.9)]
    whole = DictSummary()
    for v in values:
        whole.add({"x": v})
    first = DictSummary()
    for v in values[:2]:
        first.add({"x": v})
    second = DictSummary()
    second.load_state_dict(first.state_dict())
    for v in values[2:]:
        second.add({"x": v})
    assert second.compute_mean() == whole.compute_mean()


class Work(gankit.Updater):
    def update_core(self, batch: Any) -> None:
        x, y = batch
        gen, dis = self.models["gen"], self.models["dis"]
        loss_gen = (gen(x) - y).pow(2).mean()
        self.step("gen", loss_gen)
        loss_dis = dis(x).pow(2).mean()
        self.step("dis", loss_dis)
        gankit.report({"loss": loss_gen, "scale": loss_gen * 2}, "gen")
        gankit.report({"loss": loss_dis}, "dis")


SYNCS = ("item", "__float__", "__int__", "__bool__", "tolist", "cpu", "numpy")
SRC = str(Path(gankit.__file__).parent)


def test_no_host_sync_per_step(monkeypatch, tmp_path):
    torch.manual_seed(0)
    gen, dis = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    batches = [(x, x.sum(1, keepdim=True)) for x in torch.randn(7, 4, 3)]
    # SGD and a plain list: neither torch's Adam nor DataLoader syncs per step on their own.
    updater = Work({"gen": gen, "dis": dis},
                   {"gen": torch.optim.SGD(gen.parameters(), lr=0.01),
                    "dis": torch.optim.SGD(dis.parameters(), lr=0.01)}, batches)
    trainer = gankit.Trainer(updater, (100, "iteration"), out=tmp_path)
    printed = io.StringIO()
    trainer.extend(LogReport(trigger=(50, "iteration")))
    trainer.extend(PrintReport(["iteration", "gen/loss", "dis/loss"], out=printed))
    trainer.extend(ProgressBar(update_interval=5, out=io.StringIO(), force=True))
    trainer.extend(FailOnNonFinite(check_interval=50))

    total: Counter[str] = Counter()
    from_gankit: Counter[str] = Counter()

    def counting(name: str):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            import sys

            total[name] += 1
            if sys._getframe(1).f_code.co_filename.startswith(SRC):
                from_gankit[name] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name in SYNCS:
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    trainer.run()
    monkeypatch.undo()

    # LogReport fires twice, FailOnNonFinite checks twice; a sync per step would be >= 100.
    events = 2 + 2
    assert total["tolist"] >= 2, "instrumentation saw no reads at all"
    assert sum(from_gankit.values()) <= 5 * events, from_gankit
    assert sum(total.values()) <= 5 * events, total
    log = trainer.get_extension("LogReport").log
    assert [e["iteration"] for e in log] == [50, 100]
    assert printed.getvalue().count("\n") == 3  # header and two rows


def test_report_with_a_model_as_observer_records_the_models_name(make_trainer):
    """Chainer's report(values, observer): a model of the updater stands for its name."""
    trainer = make_trainer(stop=(1, "iteration"))
    net = trainer.updater.raw_models["net"]
    seen = {}

    @gankit.make_extension(trigger=(1, "iteration"), priority=500)
    def grab(t):
        gankit.report({"norm": net[0].weight.norm()}, net)
        gankit.report({"bias": net[0].bias.sum()}, "head")
        seen.update(t.observation)

    trainer.extend(grab)
    trainer.run()
    assert {"net/norm", "head/bias"} <= set(seen)


@pytest.mark.parametrize("observer, match", [
    (3, r"observer must be a name or a model of the updater, got int"),
    (nn.Linear(1, 1), r"Linear module that is not a model of the updater"),
])
def test_report_refuses_an_observer_it_cannot_name(observer, match):
    with report_scope({}), pytest.raises(TypeError, match=match):
        report({"loss": 1.0}, observer)
