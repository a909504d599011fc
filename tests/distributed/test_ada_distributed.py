"""ADA under torch.distributed: every rank's reals count, and all ranks keep one p."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gankit.training.distributed import cleanup
from testsupport import leave_spawned_rank


def _worker(rank: int, init: str, out: str) -> None:
    from gankit.data.augment import ADA

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        ada = ADA(target=0.6, p=0.5, kimg=1)
        # rank 0's D is sure of its reals, rank 1's is not: r_t over both = (32 - 16) / 48.
        for _ in range(4):
            ada.observe(torch.ones(8) if rank == 0 else -torch.ones(4))
        torch.save({"p": ada.p, "rt": ada.rt}, Path(out) / f"rank{rank}.pt")
        leave_spawned_rank()  # cleanup(), then an exit that skips gloo's destructors
    finally:
        cleanup(sync=False)  # reached only on failure: that rank leaves at once


@pytest.mark.multiprocess
def test_ranks_share_r_t_and_p(tmp_path: Path) -> None:
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_worker, args=(init, str(tmp_path)), nprocs=2, join=True)
    got = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert got[0]["rt"].item() == got[1]["rt"].item() == torch.tensor(16 / 48).item()
    # r_t < 0.6: p falls by the 48 reals of both ranks, not by one rank's share.
    assert got[0]["p"].item() == got[1]["p"].item() == torch.tensor(0.5 - 48 / 1000).item()
