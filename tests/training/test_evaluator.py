"""The Evaluator: eval mode and no_grad inside, modes restored, per-batch means under val/."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from gankit.extensions import LogReport
from gankit.training import Evaluator, report, report_scope


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_modes_are_restored_and_eval_runs_in_eval_mode_under_no_grad(make_trainer):
    trainer = make_trainer()
    a = nn.Sequential(nn.Linear(2, 2), nn.Dropout())  # training
    b = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()  # eval
    c = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    c[1].eval()  # a frozen BatchNorm inside a training model: a mix within one model
    before = {name: _modes(m) for name, m in (("a", a), ("b", b), ("c", c))}
    seen: list[Any] = []

    def eval_fn(models: dict[str, nn.Module], batch: torch.Tensor) -> None:
        seen.append(({n: any(_modes(m)) for n, m in (("a", a), ("b", b), ("c", c))},
                     torch.is_grad_enabled()))
        report({"x": a(batch).sum()})

    evaluator = Evaluator([torch.ones(3, 2), torch.ones(1, 2)], {"a": a, "b": b, "c": c}, eval_fn)
    with report_scope({}):
        evaluator(trainer)
    assert seen == [({"a": False, "b": False, "c": False}, False)] * 2
    after = {name: _modes(m) for name, m in (("a", a), ("b", b), ("c", c))}
    assert after == before


def test_modes_are_restored_when_eval_fn_raises(make_trainer):
    trainer = make_trainer()
    net = trainer.updater.models["net"]
    assert net.training

    def eval_fn(models: Any, batch: Any) -> None:
        raise ZeroDivisionError("bad metric")

    with pytest.raises(ZeroDivisionError):
        Evaluator([1], eval_fn=eval_fn)(trainer)
    assert net.training
    assert torch.is_grad_enabled()


def test_defaults_to_the_updater_models(make_trainer):
    trainer = make_trainer()
    modes = []
    seen = []

    def eval_fn(models: dict[str, nn.Module], batch: Any) -> None:
        seen.append(models)
        modes.append(models["net"].training)

    Evaluator([1, 2], eval_fn=eval_fn)(trainer)
    assert modes == [False, False]
    assert seen == [{"net": trainer.updater.raw_models["net"]}] * 2
    assert trainer.updater.models["net"].training


# Batches of uneven sizes: the mean of batch means differs from the mean over samples.
BATCHES = [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([10.0, 20.0]), torch.tensor([7.0])]


def eval_fn(models: Any, batch: torch.Tensor) -> None:
    report({"mean": batch.mean(), "size": float(len(batch))}, "gen")
    if len(batch) > 1:  # reported by two batches of three
        report({"spread": batch.max() - batch.min()})


EXPECTED = {
    "val/gen/mean": (2.5 + 15.0 + 7.0) / 3,
    "val/gen/size": (4 + 2 + 1) / 3,
    "val/spread": (3.0 + 10.0) / 2,
}


def test_reports_per_batch_means_over_the_whole_loader(make_trainer):
    trainer = make_trainer()
    with report_scope({}) as observation:
        result = Evaluator(BATCHES, eval_fn=eval_fn)(trainer)
    assert result == {key: pytest.approx(value) for key, value in EXPECTED.items()}
    assert set(observation) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert float(observation[key]) == pytest.approx(value)


def test_in_a_run_the_values_reach_the_log(make_trainer):
    trainer = make_trainer(stop=(2, "epoch"), n_batches=3)
    trainer.extend(Evaluator(BATCHES, eval_fn=eval_fn, prefix="test"))
    trainer.extend(LogReport(trigger=(1, "epoch"), filename=None))
    trainer.run()
    log = trainer.get_extension("LogReport").log
    assert [e["iteration"] for e in log] == [3, 6]
    for entry in log:
        for key, value in EXPECTED.items():
            assert entry[key.replace("val/", "test/")] == pytest.approx(value)
        assert entry["loss"] > 0  # training values are still there


def test_batches_move_to_the_updater_device(make_trainer):
    trainer = make_trainer()
    devices = []
    Evaluator([(torch.ones(1), {"y": torch.zeros(1)})],
              eval_fn=lambda m, b: devices.append((b[0].device, b[1]["y"].device)))(trainer)
    assert devices == [(torch.device("cpu"), torch.device("cpu"))]


def test_evaluate_needs_a_loader_and_eval_fn_or_an_override(make_trainer):
    trainer = make_trainer()
    with pytest.raises(NotImplementedError, match=r"give a loader and eval_fn"):
        Evaluator(None)(trainer)

    class Fid(Evaluator):
        def evaluate(self, trainer) -> dict[str, float]:
            return {"fid": 12.5}

    with report_scope({}) as observation:
        Fid(None)(trainer)
    assert observation == {"val/fid": 12.5}


def test_chainer_order_models_second_as_the_article_writes_it(make_trainer):
    """The article's GAN_Evaluator ports as Evaluator(val_loader, {"gen": G, "dis": D}, fn)."""
    trainer = make_trainer()
    gen, dis = nn.Linear(2, 2), nn.Linear(2, 1)

    def fn(models: dict[str, nn.Module], batch: torch.Tensor) -> None:
        report({"loss": models["dis"](models["gen"](batch)).mean()}, models["gen"])

    with report_scope({}) as observation:
        result = Evaluator([torch.ones(2, 2)], {"gen": gen, "dis": dis}, fn)(trainer)
    expected = float(dis(gen(torch.ones(2, 2))).mean().detach())
    assert observation.keys() == {"val/gen/loss"}
    assert result == {"val/gen/loss": pytest.approx(expected)}


def test_a_single_module_is_the_main_model(make_trainer):
    trainer = make_trainer()
    net = nn.Linear(2, 1)
    seen = []
    Evaluator([torch.ones(1, 2)], net, lambda m, b: seen.append(m))(trainer)
    assert seen == [{"main": net}]


def test_a_function_in_the_models_place_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"second argument is the models.*eval_fn="):
        Evaluator([1], eval_fn)  # the old (loader, eval_fn) order


def test_the_documented_call_takes_the_trainer_and_returns_the_means(make_trainer):
    """The class doc says how to call it: with the trainer (Chainer's takes none)."""
    import inspect

    assert "evaluator(trainer)" in (Evaluator.__doc__ or "")
    trainer_param = inspect.signature(Evaluator.__call__).parameters["trainer"]
    assert trainer_param.default is inspect.Parameter.empty
    with report_scope({}):
        result = Evaluator(BATCHES, eval_fn=eval_fn)(make_trainer())
    assert set(result) == set(EXPECTED)
