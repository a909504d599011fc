"""One rank of the distributed evaluation test: ``python eval_worker.py OUT`` under torchrun.

Every rank builds the same untrained GAN (MLPs on ring8) and a GANEvaluator with a small
random feature network, evaluates once, and rank 0 saves the scores and the evaluator's
real statistics to ``OUT/result.pt``. The test builds the one-process reference from the
same function.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.data import load_dataset, make_loader
from gankit.extensions.gan_evaluator import GANEvaluator
from gankit.gan.updaters import GANUpdater
from gankit.metrics.scoring import FeatureSpace
from gankit.models import MLPDiscriminator, MLPGenerator
from gankit.training import Trainer
from gankit.training.distributed import cleanup, init_distributed, rank_and_world_size
from gankit.training.eval_mode import eval_mode

N, N_REAL = 101, 57  # odd: the two ranks get shares of different sizes


def evaluate(out: Path) -> dict[str, Any]:
    """Scores of one evaluation and the real statistics it used."""
    train = load_dataset("ring8", "train", seed=0)
    val = load_dataset("ring8", "val", seed=0)
    torch.manual_seed(0)
    gen, dis = MLPGenerator(2, 2, 16), MLPDiscriminator(2, 16)
    updater = GANUpdater(gen, dis, torch.optim.Adam(gen.parameters()),
                         torch.optim.Adam(dis.parameters()), make_loader(train, 16, seed=0))
    trainer = Trainer(updater, (1, "iteration"), out)
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 6))
    space = FeatureSpace(net, "a random 2-16-6 network", module=net, name="test-net",
                         batch_size=7)  # several batches per share
    evaluator = GANEvaluator(val, train, metrics=("fid", "kid", "pr", "modes"), n=N,
                             n_real=N_REAL, features=space, seed=3)
    with eval_mode(gen, dis), torch.no_grad():
        scores = evaluator.evaluate(trainer)
    assert evaluator._real is not None
    return {"scores": scores, "mu": evaluator._real.mu, "sigma": evaluator._real.sigma,
            "n_real": evaluator._real.n, "protocol": evaluator.protocol}


def main() -> None:
    out = Path(sys.argv[1])
    init_distributed("cpu")
    result = evaluate(out / f"rank{rank_and_world_size()[0]}")
    if rank_and_world_size()[0] == 0:
        torch.save(result, out / "result.pt")
    cleanup()


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as gankit's __main__ does under torchrun
