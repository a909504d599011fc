"""The Updater: several models and optimizers, gradient isolation, precision, counters."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from gankit.training import Trainer, Updater, report


def regression_data(n_batches: int = 8, batch_size: int = 32, seed: int = 0) -> list[Any]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_batches, batch_size, 4, generator=g) * 4 - 2
    return [(xb, torch.sin(xb).sum(1, keepdim=True)) for xb in x]


class Distill(Updater):
    """A teacher learns the target, a student learns the teacher (two models, two steps)."""

    def update_core(self, batch: Any) -> None:
        x, y = batch
        teacher, student = self.models["teacher"], self.models["student"]
        loss_t = nn.functional.mse_loss(teacher(x), y)
        self.step("teacher", loss_t)
        with torch.no_grad():
            target = teacher(x)
        loss_s = nn.functional.mse_loss(student(x), target)
        self.step("student", loss_s)
        report({"teacher/loss": loss_t, "student/loss": loss_s})


def mlp(hidden: int = 32) -> nn.Module:
    return nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 1))


def test_two_model_updater_learns(tmp_path):
    from gankit.extensions import LogReport

    torch.manual_seed(0)
    teacher, student = mlp(), mlp(16)
    updater = Distill(
        models={"teacher": teacher, "student": student},
        optimizers={"teacher": torch.optim.Adam(teacher.parameters(), 1e-2),
                    "student": torch.optim.Adam(student.parameters(), 1e-2)},
        loaders=regression_data(),
    )
    trainer = Trainer(updater, (20, "epoch"), out=tmp_path)
    trainer.extend(LogReport(trigger=(1, "epoch"), filename=None))
    trainer.run()
    log = trainer.get_extension("LogReport").log
    assert len(log) == 20
    for key in ("teacher/loss", "student/loss"):
        assert log[-1][key] < 0.2 * log[0][key], (key, log[0][key], log[-1][key])


class OneStep(Updater):
    """Calls ``self.step(name, loss_fn(models, batch))`` for the optimizer names given."""

    def __init__(self, *args: Any, plan: list[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan = plan

    def update_core(self, batch: Any) -> None:
        for name, loss_fn in self.plan:
            self.step(name, loss_fn(self.models, batch))


def snapshot_params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(module: nn.Module, before: list[torch.Tensor]) -> list[bool]:
    return [not torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True)]


def test_one_optimizer_over_two_models():
    torch.manual_seed(0)
    a, b = mlp(), mlp()
    before_a, before_b = snapshot_params(a), snapshot_params(b)
    opt = torch.optim.SGD(itertools.chain(a.parameters(), b.parameters()), lr=0.1)
    loss = lambda m, batch: (m["a"](batch[0]) + m["b"](batch[0]) - batch[1]).pow(2).mean()  # noqa: E731
    updater = OneStep({"a": a, "b": b}, {"both": opt}, regression_data(1), plan=[("both", loss)])
    updater.update()
    assert all(changed(a, before_a)) and all(changed(b, before_b))


def test_two_optimizers_over_one_model_step_only_their_parameters():
    torch.manual_seed(0)
    net = mlp()
    first, second = net[0], net[2]
    loss = lambda m, batch: (m["net"](batch[0]) - batch[1]).pow(2).mean()  # noqa: E731
    updater = OneStep(
        {"net": net},
        {"first": torch.optim.SGD(first.parameters(), lr=0.1),
         "second": torch.optim.SGD(second.parameters(), lr=0.1)},
        regression_data(2),
        plan=[("first", loss)],
    )
    before_first, before_second = snapshot_params(first), snapshot_params(second)
    updater.update()
    assert all(changed(first, before_first))
    assert not any(changed(second, before_second))
    assert all(p.grad is None for p in second.parameters())

    updater.plan = [("second", loss)]
    before_first = snapshot_params(first)
    updater.update()
    assert all(changed(second, before_second))
    assert not any(changed(first, before_first))


class GeneratorStep(Updater):
    """The discriminator's forward is inside the generator's loss."""

    def update_core(self, batch: Any) -> None:
        gen, dis = self.models["gen"], self.models["dis"]
        z = batch[0]
        loss_gen = nn.functional.softplus(-dis(gen(z))).mean()
        self.step("gen", loss_gen)


def test_generator_step_leaves_no_gradient_in_the_discriminator():
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    dis = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    before_gen, before_dis = snapshot_params(gen), snapshot_params(dis)
    updater = GeneratorStep(
        {"gen": gen, "dis": dis},
        {"gen": torch.optim.Adam(gen.parameters(), 1e-2),
         "dis": torch.optim.Adam(dis.parameters(), 1e-2)},
        regression_data(2),
    )
    updater.update()
    assert all(p.grad is None for p in dis.parameters())
    assert all(p.grad is not None for p in gen.parameters())
    assert not any(changed(dis, before_dis))
    assert all(changed(gen, before_gen))


def test_step_with_an_unknown_optimizer_name():
    net = mlp()
    updater = OneStep({"net": net}, {"net": torch.optim.SGD(net.parameters(), lr=0.1)},
                      regression_data(1), plan=[("gen", lambda m, b: m["net"](b[0]).mean())])
    with pytest.raises(KeyError, match=r"no optimizer named 'gen'; have \['net'\]"):
        updater.update()


class SharedGraph(Updater):
    """VAE-GAN style: two losses over one forward pass, stepped together."""

    def update_core(self, batch: Any) -> None:
        enc, dec = self.models["enc"], self.models["dec"]
        h = enc(batch[0])
        out = dec(h)
        loss_dec = (out - batch[1]).pow(2).mean()
        loss_enc = loss_dec + 0.1 * h.pow(2).mean()
        self.step_all({"enc": loss_enc, "dec": loss_dec})


def test_step_all_over_a_shared_graph_matches_separate_gradients():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(4, 6), nn.Tanh())
    dec = nn.Linear(6, 1)
    batch = regression_data(1)[0]
    # Expected: each loss's gradient with respect to its own optimizer's parameters only.
    h = enc(batch[0])
    out = dec(h)
    loss_dec = (out - batch[1]).pow(2).mean()
    loss_enc = loss_dec + 0.1 * h.pow(2).mean()
    g_enc = torch.autograd.grad(loss_enc, list(enc.parameters()), retain_graph=True)
    g_dec = torch.autograd.grad(loss_dec, list(dec.parameters()))
    lr = 0.5
    expected_enc = [p.detach() - lr * g for p, g in zip(enc.parameters(), g_enc, strict=True)]
    expected_dec = [p.detach() - lr * g for p, g in zip(dec.parameters(), g_dec, strict=True)]

    updater = SharedGraph({"enc": enc, "dec": dec},
                          {"enc": torch.optim.SGD(enc.parameters(), lr=lr),
                           "dec": torch.optim.SGD(dec.parameters(), lr=lr)}, [batch])
    updater.update()
    for p, e in zip([*enc.parameters(), *dec.parameters()], expected_enc + expected_dec,
                    strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("clip", "clipped"), [(0.01, {"a"}), ({"a": 0.01}, {"a"}),
                                               ({"b": 0.02}, {"b"}), (None, set())])
def test_grad_clip(clip, clipped):
    torch.manual_seed(0)
    a, b = mlp(), mlp()
    batch = regression_data(1, seed=3)[0]
    loss_fn = {
        "a": lambda m, bt: 100 * (m["a"](bt[0]) - bt[1]).pow(2).mean(),
        "b": lambda m, bt: 0.001 * m["b"](bt[0]).mean(),  # a tiny gradient: never clipped
    }
    norms = {}
    for name, model in (("a", a), ("b", b)):
        grads = torch.autograd.grad(loss_fn[name]({"a": a, "b": b}, batch),
                                    list(model.parameters()))
        norms[name] = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item()
    assert norms["a"] > 1 and norms["b"] < 0.02

    before = {"a": snapshot_params(a), "b": snapshot_params(b)}
    updater = OneStep(
        {"a": a, "b": b},
        {"a": torch.optim.SGD(a.parameters(), lr=1.0), "b": torch.optim.SGD(b.parameters(),
                                                                              lr=1.0)},
        [batch],
        grad_clip=clip,
        plan=[("a", loss_fn["a"]), ("b", loss_fn["b"])],
    )
    updater.update()
    for name, model in (("a", a), ("b", b)):
        delta = torch.cat([(p.detach() - q).flatten()
                           for p, q in zip(model.parameters(), before[name], strict=True)])
        limit = clip if not isinstance(clip, dict) else clip.get(name)
        expected = min(norms[name], limit) if name in clipped else norms[name]
        assert delta.norm().item() == pytest.approx(expected, rel=1e-3)


def test_grad_clip_names_unknown_optimizers():
    net = mlp()
    with pytest.raises(ValueError, match=r"grad_clip names unknown optimizers: \['dis'\]"):
        OneStep({"net": net}, {"net": torch.optim.SGD(net.parameters(), lr=0.1)},
                regression_data(1), grad_clip={"dis": 1.0}, plan=[])


class Tracked(Distill):
    """Distill, also recording the dtype autocast gives a Linear output."""

    dtypes: list[torch.dtype]

    def update_core(self, batch: Any) -> None:
        self.dtypes.append(self.models["student"](batch[0]).dtype)
        super().update_core(batch)


def _run_precision(precision: str, iterations: int = 6) -> tuple[Tracked, list[dict[str, Any]]]:
    torch.manual_seed(0)
    teacher, student = mlp(), mlp(16)
    updater = Tracked(
        models={"teacher": teacher, "student": student},
        optimizers={"teacher": torch.optim.Adam(teacher.parameters(), 1e-2),
                    "student": torch.optim.Adam(student.parameters(), 1e-2)},
        loaders=regression_data(3),
        precision=precision,
        grad_clip=1.0,
    )
    updater.dtypes = []
    observations = []
    from gankit.training import report_scope

    for _ in range(iterations):
        with report_scope({}) as obs:
            updater.update()
        observations.append(obs)
    return updater, observations


def test_bf16_autocast_runs_on_cpu_with_finite_losses():
    updater, observations = _run_precision("bf16")
    assert updater.dtypes == [torch.bfloat16] * 6
    losses = torch.stack([obs["teacher/loss"] for obs in observations])
    assert torch.isfinite(losses).all()
    assert all(p.dtype == torch.float32 for p in updater.models["teacher"].parameters())
    assert losses[-1] < losses[0]


def test_fp16_grad_scaler_path_runs_on_cpu():
    try:
        updater, observations = _run_precision("fp16")
    except (RuntimeError, NotImplementedError) as exc:  # pragma: no cover - old torch builds
        if "Half" in str(exc) or "not implemented" in str(exc).lower():
            pytest.skip(f"fp16 autocast is not supported on this CPU build: {exc}")
        raise
    assert updater.dtypes == [torch.float16] * 6
    assert set(updater.scalers) == {"teacher", "student"}
    losses = torch.stack([obs["student/loss"].float() for obs in observations])
    assert torch.isfinite(losses).all()
    state = updater.state_dict()
    assert set(state["scalers"]) == {"teacher", "student"}
    assert state["scalers"]["teacher"]["scale"] > 0


def test_fp32_runs_without_autocast():
    updater, _ = _run_precision("fp32", iterations=2)
    assert updater.dtypes == [torch.float32] * 2
    assert updater.scalers == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"precision": "fp8"}, ValueError, r"precision must be one of fp32, bf16, fp16, got 'fp8'"),
        ({"loaders": {"train": [1]}}, ValueError, r"loaders needs a 'main' entry"),
        ({"loaders": iter([1, 2])}, TypeError, r"main loader must have a length"),
        ({"loaders": []}, ValueError, r"yields no batch"),
    ],
)
def test_updater_rejects_bad_arguments(kwargs, error, match):
    net = mlp()
    args: dict[str, Any] = {"models": {"net": net},
                            "optimizers": {"net": torch.optim.SGD(net.parameters(), lr=0.1)},
                            "loaders": [1]}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        Updater(**args)


def test_update_core_must_be_written():
    net = mlp()
    updater = Updater({"net": net}, {"net": torch.optim.SGD(net.parameters(), lr=0.1)}, [1])
    with pytest.raises(NotImplementedError, match=r"write update_core"):
        updater.update()


class Counting(Updater):
    def update_core(self, batch: Any) -> None:
        self.seen.append(batch)


class EpochSampler(torch.utils.data.Sampler[int]):
    """Records every set_epoch call; the order is a function of the epoch."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.epoch = 0
        self.calls: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.calls.append(epoch)
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def _counting(loaders: Any) -> Counting:
    net = nn.Linear(1, 1)
    updater = Counting({"net": net}, {"net": torch.optim.SGD(net.parameters(), lr=0.1)}, loaders)
    updater.seen = []
    return updater


def test_epoch_counters_over_a_loader_of_known_length():
    updater = _counting(["b0", "b1", "b2"])
    rows = []
    for _ in range(7):
        updater.update()
        rows.append((updater.iteration, updater.epoch, updater.epoch_detail,
                     updater.is_new_epoch))
    assert updater.epoch_length == 3
    assert rows == [
        (1, 0, pytest.approx(1 / 3), False),
        (2, 0, pytest.approx(2 / 3), False),
        (3, 1, 1.0, True),
        (4, 1, pytest.approx(4 / 3), False),
        (5, 1, pytest.approx(5 / 3), False),
        (6, 2, 2.0, True),
        (7, 2, pytest.approx(7 / 3), False),
    ]
    assert updater.seen == ["b0", "b1", "b2"] * 2 + ["b0"]


def test_set_epoch_is_called_on_the_sampler_at_each_epoch_start():
    sampler = EpochSampler(6)
    loader = torch.utils.data.DataLoader(torch.arange(6), batch_size=2, sampler=sampler)
    updater = _counting(loader)
    calls_after = []
    for _ in range(7):
        updater.update()
        calls_after.append(list(sampler.calls))
    # Epochs of 3 batches start at updates 1, 4 and 7 (lazily: not at the end of the last).
    assert calls_after[0] == [0]
    assert calls_after[3] == [0, 1]
    assert calls_after[5] == [0, 1]
    assert calls_after[6] == [0, 1, 2]
    # Each epoch's batches are that epoch's permutation.
    for epoch in range(2):
        order = torch.randperm(6, generator=torch.Generator().manual_seed(epoch))
        got = torch.cat(updater.seen[3 * epoch: 3 * epoch + 3])
        assert torch.equal(got, order)


def test_set_epoch_on_the_loader_itself():
    class Loader(list):
        def __init__(self, items: list[Any]) -> None:
            super().__init__(items)
            self.calls: list[int] = []

        def set_epoch(self, epoch: int) -> None:
            self.calls.append(epoch)

    loader = Loader([1, 2])
    updater = _counting(loader)
    for _ in range(5):
        updater.update()
    assert loader.calls == [0, 1, 2]


def test_a_loader_shorter_than_its_length_is_reported():
    class Liar(list):
        def __len__(self) -> int:
            return 3

    updater = _counting({"main": Liar([1, 2])})
    updater.update()
    updater.update()
    with pytest.raises(RuntimeError, match=r"ended after 2 batches but its length is 3"):
        updater.update()


def test_next_batch_cycles_other_loaders():
    updater = _counting({"main": [0, 1, 2, 3, 4], "extra": [10, 20]})
    assert [updater.next_batch("extra") for _ in range(5)] == [10, 20, 10, 20, 10]
    assert updater.iteration == 0 and updater.epoch == 0  # only "main" drives the counters


def test_load_state_dict_replays_to_the_same_position_mid_epoch():
    def fresh() -> Counting:
        return _counting(torch.utils.data.DataLoader(torch.arange(10), batch_size=2,
                                                     sampler=EpochSampler(10)))

    reference = fresh()
    for _ in range(12):
        reference.update()
    first = fresh()
    for _ in range(7):  # epoch 1, two batches in
        first.update()
    second = fresh()
    second.load_state_dict(first.state_dict())
    assert (second.iteration, second.epoch, second.epoch_detail) == (7, 1, pytest.approx(1.4))
    for _ in range(5):
        second.update()
    assert all(torch.equal(a, b) for a, b in zip(second.seen[-5:], reference.seen[7:],
                                                  strict=True))


def test_load_state_dict_rejects_other_model_names():
    updater = _counting([1, 2])
    state = updater.state_dict()
    state["models"] = {"gen": {}}
    with pytest.raises(ValueError,
                       match=r"snapshot has models \['gen'\] but this run has \['net'\]"):
        updater.load_state_dict(state)


def test_to_device_keeps_the_batch_structure():
    from collections import namedtuple

    from gankit.training import to_device

    Pair = namedtuple("Pair", "x y")
    x = torch.ones(2)
    batch = {"a": [x, (x, 3)], "b": Pair(x, "label"), "c": None}
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved["b"], Pair) and moved["b"].y == "label"
    assert type(moved["a"]) is list and type(moved["a"][1]) is tuple
    assert torch.equal(moved["a"][1][0], x) and moved["a"][1][1] == 3 and moved["c"] is None


def test_frozen_gives_the_plain_module_when_models_hold_a_wrapper():
    net = mlp()
    updater = Updater({"net": net}, {"net": torch.optim.SGD(net.parameters(), 0.1)},
                      regression_data())
    updater.models["net"] = torch.nn.parallel.DataParallel(net)  # stands in for DDP
    assert updater.frozen("net") is net
    assert updater.models["net"] is not net
    with pytest.raises(KeyError, match=r"no model named 'dis'; have \['net'\]"):
        updater.frozen("dis")
