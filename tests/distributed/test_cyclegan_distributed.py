"""CycleGAN's history buffers under torch.distributed: each rank resumes its own fakes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gankit.training.distributed import cleanup
from testsupport import leave_spawned_rank, make_cyclegan_updater


def _worker(rank: int, init: str, out: str, world: int, phase: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        u = make_cyclegan_updater(history=6)
        assert u.history_a is not None and u.history_b is not None
        if phase == "save":
            # Rank r's fakes are all r (a: r, b: 10 + r), 4 of the 6 slots filled.
            u.history_a(torch.full((4, 1, 8, 8), float(rank)))
            u.history_b(torch.full((4, 1, 8, 8), 10.0 + rank))
            state = u.state_dict()  # collective
            if rank == 0:  # as Snapshot: rank 0 writes
                torch.save(state, Path(out) / "state.pt")
        else:
            u.load_state_dict(torch.load(Path(out) / "state.pt"))
            a, b = u.history_a.images, u.history_b.images
            assert a is not None and b is not None
            torch.save({"a": a[:len(u.history_a)], "b": b[:len(u.history_b)]},
                       Path(out) / f"{phase}-rank{rank}.pt")
        leave_spawned_rank()  # cleanup(), then an exit that skips gloo's destructors
    finally:
        cleanup(sync=False)  # reached only on failure: that rank leaves at once


@pytest.mark.multiprocess
def test_each_rank_resumes_its_own_history(tmp_path: Path) -> None:
    def spawn(world: int, phase: str) -> None:
        init = f"file://{tmp_path / f'rendezvous-{phase}'}"
        mp.spawn(_worker, args=(init, str(tmp_path), world, phase), nprocs=world, join=True)

    spawn(2, "save")
    spawn(2, "load")
    for rank in (0, 1):
        got = torch.load(tmp_path / f"load-rank{rank}.pt")
        assert got["a"].shape == (4, 1, 8, 8)
        assert torch.equal(got["a"], torch.full((4, 1, 8, 8), float(rank)))
        assert torch.equal(got["b"], torch.full((4, 1, 8, 8), 10.0 + rank))
    # Three ranks now: the one the snapshot has no history for starts from rank 0's.
    spawn(3, "grow")
    got = torch.load(tmp_path / "grow-rank2.pt")
    assert torch.equal(got["a"], torch.zeros(4, 1, 8, 8))
    assert torch.equal(torch.load(tmp_path / "grow-rank1.pt")["b"], torch.full((4, 1, 8, 8), 11.0))
