"""One rank of the 2-process stop test (gloo); test_stop_signal_ddp.py launches it via torchrun.

``python stop_ddp_worker.py SCENARIO OUT``:

- ``reference``: 9 iterations, an Evaluator every 3, snapshots every 3, in ``OUT/reference``.
- ``stop``: the same in ``OUT/stop``, but the Evaluator is made ~20 s long (its loader
  repeated, each batch sleeping) and rank 1 alone sends itself SIGTERM 0.5 s into it; the
  time it was sent goes to ``OUT/sent``.
- ``resume``: the ``stop`` run resumed from its newest snapshot, to the end.

Each rank writes ``OUT/SCENARIO.rank{r}.pt``: its stop reason, signal, iteration, parameters;
and exits 128 + the signal when a signal stopped it, as ``gankit train`` does.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

# tests/distributed is on PYTHONPATH (test_stop_signal_ddp.py puts it there)
from ddp_worker import DIM, PairUpdater, pair_data
from torch import nn

from gankit.data import make_loader
from gankit.extensions import LogReport, Snapshot
from gankit.training import Evaluator, Trainer, report
from gankit.training.checkpoint import list_snapshots
from gankit.training.distributed import (
    cleanup,
    init_distributed,
    prepare_updater,
    rank_and_world_size,
)

STEPS = 9


def build(out: Path, slow: bool) -> Trainer:
    rank, world_size = rank_and_world_size()
    torch.manual_seed(0)
    gen = nn.Linear(DIM, DIM)
    dis = nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, 1))
    updater = PairUpdater(
        {"gen": gen, "dis": dis},
        {"gen": torch.optim.SGD(gen.parameters(), lr=0.1, momentum=0.5),
         "dis": torch.optim.SGD(dis.parameters(), lr=0.1, momentum=0.5)},
        make_loader(pair_data(96, 1), 8, seed=3, rank=rank, world_size=world_size),
    )
    prepare_updater(updater)
    trainer = Trainer(updater, (STEPS, "iteration"), out)
    val: Any = list(make_loader(pair_data(32, 2), 8, shuffle=False, rank=rank,
                                world_size=world_size))
    if slow:
        val = val * 500  # 1,000 batches of ~20 ms: a 20 s evaluation

    def score(models: dict[str, Any], batch: Any) -> None:
        if slow:
            time.sleep(0.02)
        x, y = batch
        report({"dis/real": models["dis"](y).mean(),
                "dis/fake": models["dis"](models["gen"](x)).mean()})

    trainer.extend(Evaluator(val, updater.raw_models, score), trigger=(3, "iteration"))
    trainer.extend(LogReport(trigger=(3, "iteration")))
    trainer.extend(Snapshot(), trigger=(3, "iteration"))
    return trainer


class SignalDuringEvaluation:
    """Rank 1 only: SIGTERM 0.5 s after the first evaluation starts (runs just before it)."""

    priority = 301
    trigger = (3, "iteration")

    def __init__(self, sent: Path) -> None:
        self.sent = sent
        self.done = False

    def __call__(self, trainer: Trainer) -> None:
        if self.done or rank_and_world_size()[0] != 1:
            return
        self.done = True

        def send() -> None:
            self.sent.write_text(repr(time.time()))
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Timer(0.5, send).start()


def main() -> int:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    init_distributed("cpu")
    rank, _ = rank_and_world_size()
    if scenario == "reference":
        trainer = build(out / "reference", slow=False)
    elif scenario == "stop":
        trainer = build(out / "stop", slow=True)
        trainer.extend(SignalDuringEvaluation(out / "sent"), name="signal")
    else:
        trainer = build(out / "stop", slow=False)
        trainer.resume(list_snapshots(out / "stop")[-1])
    trainer.run()
    params = torch.cat([p.detach().flatten() for name in sorted(trainer.updater.raw_models)
                        for p in trainer.updater.raw_models[name].parameters()])
    cleanup()
    torch.save({"reason": trainer.stop_reason, "signal": trainer.stop_signal,
                "iteration": trainer.updater.iteration, "params": params,
                "ended": time.time()}, out / f"{scenario}.rank{rank}.pt")
    return 128 + (trainer.stop_signal or 0) if trainer.stop_reason == "signal" else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
