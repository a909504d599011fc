"""Shared fixtures: a one-model toy run small enough for every engine test, the command line
in a subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from gankit.training import Trainer, Updater, report
from testsupport import run_gankit


class ToyUpdater(Updater):
    """Linear regression with SGD; reports ``loss`` each step."""

    def update_core(self, batch: Any) -> None:
        x, y = batch
        loss = nn.functional.mse_loss(self.models["net"](x), y)
        self.step("net", loss)
        report({"loss": loss})


def toy_batches(n_batches: int, batch_size: int = 4, seed: int = 0) -> list[tuple[Any, Any]]:
    """A plain list is a loader with a length: no DataLoader machinery in engine tests."""
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n_batches, batch_size, 3, generator=g)
    return [(x, x.sum(1, keepdim=True)) for x in xs]


@pytest.fixture(autouse=True, scope="session")
def _gankit_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Feature classifiers go to a temporary cache, never to the user's home (subprocesses
    inherit it through the environment)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(tmp_path_factory.getbasetemp() / "gankit-cache"))
        yield


@pytest.fixture
def gankit_cli() -> Callable[..., subprocess.CompletedProcess]:
    """``gankit_cli("train", ..., check=0)``: the command line in a subprocess, on this
    checkout (``testsupport.run_gankit``); returns the completed process."""
    return run_gankit


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., Trainer]:
    """``make_trainer(stop=(N, unit), n_batches=L, updater_cls=ToyUpdater)`` -> a Trainer."""

    def make(
        stop: Any = (6, "iteration"),
        n_batches: int = 4,
        updater_cls: type[Updater] = ToyUpdater,
        out: Path | None = None,
    ) -> Trainer:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, 1))
        updater = updater_cls(
            models={"net": net},
            optimizers={"net": torch.optim.SGD(net.parameters(), lr=0.05)},
            loaders=toy_batches(n_batches),
        )
        return Trainer(updater, stop, out=out or tmp_path / "run")

    return make
