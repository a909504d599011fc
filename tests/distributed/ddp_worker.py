"""One rank of the multi-process tests; test_distributed.py launches it through torchrun.

``python ddp_worker.py SCENARIO OUT`` under ``torchrun --nproc-per-node 2``:

- ``train``: a deterministic GAN-shaped run (PairUpdater) with logs, plots, samples, an
  Evaluator over sharded data and snapshots, each rank in its own ``OUT/rank{r}``; then a GAN
  run with per-rank noise in the shared ``OUT/gan``, resumed from its middle snapshot; then a
  run that only rank 1 is told to stop (SIGTERM). Rank 0 writes what the test checks to
  ``OUT/result.pt``.
- ``die``: rank 1 SIGKILLs itself at iteration 3 (an OOM kill, say).
- ``hang``: rank 1 sleeps ``HANG_S`` seconds at iteration 3 while rank 0 waits in a
  collective that times out.

The models and the updater live here too, so the test builds the one-process reference
from the same code.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.data import load_dataset, make_loader
from gankit.extensions import LogReport, PlotReport, Snapshot
from gankit.extensions.sample_grid import SampleGrid
from gankit.gan import R1, GANUpdater
from gankit.models import MLPDiscriminator, MLPGenerator
from gankit.training import Evaluator, Trainer, Updater, report
from gankit.training.distributed import (
    all_gather_object,
    cleanup,
    init_distributed,
    prepare_updater,
    rank_and_world_size,
    seed_rank,
)

N_TRAIN, N_VAL, DIM = 96, 32, 4
STEPS = 6


class PairUpdater(Updater):
    """A GAN step without noise: ``dis`` runs twice (real, fake), ``gen`` trains through it.

    ``gen`` maps a batch's ``x`` to a fake; ``dis`` tells ``y`` (real) from it. As in
    GANUpdater, the generator step goes through the raw discriminator.
    """

    def update_core(self, batch: Any) -> None:
        x, y = batch
        gen, dis = self.models["gen"], self.models["dis"]
        with torch.no_grad():
            fake = gen(x)
        loss_dis = F.softplus(-dis(y)).mean() + F.softplus(dis(fake)).mean()
        self.step("dis", loss_dis)
        loss_gen = F.softplus(-self.frozen("dis")(gen(x))).mean()
        self.step("gen", loss_gen)
        report({"dis/loss": loss_dis, "gen/loss": loss_gen})


def pair_data(n: int, seed: int) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, DIM, generator=g)
    return torch.utils.data.TensorDataset(x, x @ torch.full((DIM, DIM), 0.3) + 1.0)


def pair_trainer(out: Path, batch_size: int, rank: int = 0, world_size: int = 1,
                 stop: int = STEPS) -> Trainer:
    """The PairUpdater run; ``batch_size`` is per rank. Models start identical on every rank."""
    torch.manual_seed(0)
    gen = nn.Linear(DIM, DIM)
    dis = nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, 1))
    shard = {"rank": rank, "world_size": world_size}
    updater = PairUpdater(
        {"gen": gen, "dis": dis},
        {"gen": torch.optim.SGD(gen.parameters(), lr=0.1, momentum=0.5),
         "dis": torch.optim.SGD(dis.parameters(), lr=0.1, momentum=0.5)},
        make_loader(pair_data(N_TRAIN, 1), batch_size, seed=3, **shard),
    )
    trainer = Trainer(updater, (stop, "iteration"), out)
    val = make_loader(pair_data(N_VAL, 2), batch_size, shuffle=False, **shard)

    def score(models: dict[str, Any], batch: Any) -> None:
        x, y = batch
        report({"dis/real": models["dis"](y).mean(),
                "dis/fake": models["dis"](models["gen"](x)).mean()})

    trainer.extend(Evaluator(val, updater.raw_models, score), trigger=(3, "iteration"))
    trainer.extend(LogReport(trigger=(3, "iteration")))
    trainer.extend(PlotReport(["gen/loss", "dis/loss"], trigger=(3, "iteration")))
    trainer.extend(SampleGrid(lambda t: t.updater.raw_models["gen"](torch.zeros(8, DIM))),
                   trigger=(STEPS, "iteration"))
    trainer.extend(Snapshot(), trigger=(3, "iteration"))
    return trainer


def flat_parameters(trainer: Trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for name in sorted(trainer.updater.raw_models)
                      for p in trainer.updater.raw_models[name].parameters()])


def gan_trainer(out: Path, stop: int) -> Trainer:
    """A GANUpdater (MLPs on ring8) whose ranks draw different noise."""
    rank, world_size = rank_and_world_size()
    train = load_dataset("ring8", "train", seed=0)
    torch.manual_seed(0)
    gen, dis = MLPGenerator(2, 2, 16), MLPDiscriminator(2, 16)
    updater = GANUpdater(
        gen, dis, torch.optim.Adam(gen.parameters(), 1e-3),
        torch.optim.Adam(dis.parameters(), 1e-3),
        make_loader(train, 16, seed=0, rank=rank, world_size=world_size),
        dis_terms=[R1(0.1)],
    )
    prepare_updater(updater)
    seed_rank(0)
    trainer = Trainer(updater, (stop, "iteration"), out)
    trainer.extend(Snapshot(n_retains=None), trigger=(3, "iteration"))
    return trainer


def scenario_train(out: Path) -> None:
    rank, world_size = rank_and_world_size()
    trainer = pair_trainer(out / f"rank{rank}", 8, rank, world_size)
    prepare_updater(trainer.updater)
    trainer.run()
    params = all_gather_object(flat_parameters(trainer))
    log = trainer.get_extension("LogReport").log  # type: ignore[attr-defined]

    straight = gan_trainer(out / "gan", STEPS)
    straight.run()
    snapshot = torch.load(out / "gan" / "snapshot_iter_3.pt", weights_only=True)
    resumed = gan_trainer(out / "gan_resumed", STEPS)
    resumed.resume(out / "gan" / "snapshot_iter_3.pt")  # every rank reads rank 0's file
    resumed.run()
    same = all_gather_object(torch.equal(flat_parameters(straight), flat_parameters(resumed)))
    gan_params = all_gather_object(flat_parameters(straight))

    # SIGTERM reaches rank 1 only: both ranks must stop after the same iteration.
    stopped = pair_trainer(out / "signal", 8, rank, world_size, stop=1000)
    prepare_updater(stopped.updater)
    stopped.extend(_Fault("signal", at=4), name="fault")
    stopped.run()
    stops = all_gather_object((stopped.stop_reason, stopped.updater.iteration))
    if rank == 0:
        torch.save({"params": params, "log": log, "resumed_equal": same,
                    "gan_params": gan_params, "rng_per_rank": snapshot.get("rng_per_rank"),
                    "stops": stops}, out / "result.pt")


class _Fault:
    """At iteration ``at`` on rank 1: die by SIGKILL, get SIGTERM, or stall ``HANG_S`` s."""

    def __init__(self, how: str, at: int = 3) -> None:
        self.how = how
        self.at = at

    def __call__(self, trainer: Trainer) -> None:
        if trainer.updater.iteration != self.at or rank_and_world_size()[0] != 1:
            return
        if self.how == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.how == "signal":
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            time.sleep(float(os.environ.get("HANG_S", "60")))


def scenario_fault(out: Path, how: str) -> None:
    rank, world_size = rank_and_world_size()
    trainer = pair_trainer(out / f"rank{rank}", 8, rank, world_size, stop=1000)
    prepare_updater(trainer.updater)
    trainer.extend(_Fault(how), name="fault")
    trainer.run()


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    init_distributed("cpu")
    if scenario == "train":
        scenario_train(out)
        cleanup()
    else:
        scenario_fault(out, scenario)


if __name__ == "__main__":
    # As gankit's __main__ does: no interpreter teardown under torchrun (see there), after
    # a failure too, which could otherwise hang in the process group's destructors.
    try:
        main()
        code = 0
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
