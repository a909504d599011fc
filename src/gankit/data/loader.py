"""Reproducible, batched loading: an epoch-seeded sampler and the DataLoader built on it.

Shuffling never touches the global torch RNG: the sampler draws each epoch's order from its
own generator seeded by ``(seed, epoch)``, and the DataLoader gets its own generator for the
worker base seed. So adding or removing a loader cannot change a model's initialisation or
noise, and a resumed run replays the same order from the epoch number alone. Workers only
read and decode the items of the batches the sampler hands them, so the order is the same with
any number of workers.

Batches travel as the data set stores them (uint8 images: a quarter of float32) and become
float in [-1, 1] where they are used: on the training device when the loader is given one
(after a pinned, non-blocking copy on CUDA), else on the CPU in the main process.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator, Sequence, Sized
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, default_collate
from torch.utils.data._utils import signal_handling

from gankit.data.datasets import batch_to_unit
from gankit.data.lazy import CorruptBatch
from gankit.errors import GankitError
from gankit.training.reporter import report
from gankit.training.updater import to_device

__all__ = ["EpochLoader", "EpochSampler", "WorkerDied", "collate_batched", "make_loader",
           "worker_died"]

# torch's two messages for a worker that is gone: from its SIGCHLD handler and from the
# liveness check a fetch makes while it waits for data.
_WORKER_GONE = re.compile(r"DataLoader worker \(pid(?:\(s\))? ([0-9, ]+)\) "
                          r"(?:is killed by signal: ([^.]+)|exited unexpectedly"
                          r"(?: with exit code (-?[0-9]+))?)")


class WorkerDied(GankitError):
    """A data loader worker process ended while the run was training.

    ``pid``: the worker's process id; ``signum``: the signal that killed it (9, SIGKILL, is
    what the out-of-memory killer sends), or None when it exited with ``exit_code``.
    """

    def __init__(self, pid: int | None, signum: int | None, exit_code: int | None) -> None:
        self.pid, self.signum, self.exit_code = pid, signum, exit_code
        who = f"a data loader worker (pid {pid})" if pid is not None else "a data loader worker"
        if signum is not None:
            name = _signal_name(signum)
            how = f"was killed by signal {signum} ({name})" if name else \
                f"was killed by signal {signum}"
            if signum == signal.SIGKILL:
                how += ", perhaps by the out-of-memory killer"
        elif exit_code is not None:
            how = f"exited with code {exit_code}"
        else:
            how = "exited unexpectedly"
        self.cause = f"{who} {how}"
        super().__init__(f"{self.cause}; give the job more memory or use fewer workers, then "
                         "resume the run")


def _signal_name(signum: int) -> str | None:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return None


def worker_died(exc: BaseException, workers: Sequence[Any] = ()) -> WorkerDied | None:
    """The ``WorkerDied`` that ``exc`` (an error torch raised, or one already converted)
    stands for, or None when it is not about a data loader worker that is gone.

    ``workers``: the loader iterator's worker processes. With them, an error of the pipe to a
    worker (the end of a batch's shared memory that a dying worker held, say) counts too when
    a worker has ended, and a dead worker's exit code gives the signal that killed it."""
    if isinstance(exc, WorkerDied):
        return exc
    m = _WORKER_GONE.search(str(exc)) if isinstance(exc, RuntimeError) else None
    pid: int | None = None
    signum: int | None = None
    code: int | None = None
    if m is not None:
        pid = int(m.group(1).split(",")[0])
        code = int(m.group(3)) if m.group(3) else None
        if m.group(2):  # torch gives strsignal's words ("Killed"); find the number they name
            words = m.group(2).strip()
            signum = next((s for s in signal.Signals if signal.strsignal(s) == words), None)
    elif isinstance(exc, (RuntimeError, EOFError, OSError)) and workers:
        for _ in range(20):  # a worker killed a moment ago may not be reaped yet
            dead = [w for w in workers if getattr(w, "exitcode", None) is not None]
            if dead:
                pid = dead[0].pid
                break
            time.sleep(0.05)
        else:
            return None
    else:
        return None
    for w in workers:
        if getattr(w, "pid", None) == pid and getattr(w, "exitcode", None) is not None:
            code = w.exitcode
    if signum is None and code is not None and code < 0:  # multiprocessing: -N is signal N
        signum, code = -code, None
    return WorkerDied(pid, signum, code)


def _epoch_seed(seed: int, epoch: int) -> int:
    # SeedSequence hashes the pair, so (seed, epoch + 1) and (seed + 1, epoch) do not collide
    # the way ``seed + epoch`` (DistributedSampler's choice) would.
    words = np.random.SeedSequence([seed % 2**64, epoch % 2**64]).generate_state(2, np.uint32)
    return int(words[0]) << 32 | int(words[1])


class EpochSampler(Sampler[int]):
    """Indices ``0..n-1`` in an order that is a pure function of ``(seed, epoch)``.

    Call ``set_epoch(e)`` before each epoch for a fresh order (iterating does not advance it).
    With ``world_size > 1`` rank ``r`` gets positions ``r, r + world_size, ...`` of the epoch
    order: disjoint, equally sized shares, padded by wrapping around to the start unless
    ``drop_last`` drops the remainder instead.
    """

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False) -> None:
        if n < 0:
            raise GankitError(f"sampler size {n} is negative; pass the number of samples")
        if world_size < 1:
            raise GankitError(f"world size {world_size} must be at least 1")
        if not 0 <= rank < world_size:
            raise GankitError(f"rank {rank} is outside 0..{world_size - 1} for world size "
                              f"{world_size}; pass a rank below the world size")
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        per_rank = n // world_size if drop_last else -(-n // world_size)
        self._total = per_rank * world_size

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on."""
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        """This rank's indices for the current epoch, as a LongTensor."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(_epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        if self._total > self.n:  # pad by wrapping; repeat more than once if n < world_size
            order = order.repeat(-(-self._total // self.n))
        return order[: self._total][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self._total // self.world_size


def collate_batched(batch: Any) -> Any:
    """Collate for datasets whose ``__getitems__`` already returns stacked tensors.

    A list means the DataLoader fetched sample by sample (the dataset has no
    ``__getitems__``), so it falls back to torch's ``default_collate``.
    """
    if isinstance(batch, list):
        return default_collate(batch)
    return batch


class EpochLoader(DataLoader[Any]):
    """A DataLoader over an ``EpochSampler``; ``set_epoch`` picks the next epoch's order.

    Iterating yields float batches: uint8 images are moved to ``device`` (when set) and
    converted there, one batch ahead so the copy overlaps the step that uses the previous
    one. A worker process that dies (the out-of-memory killer's SIGKILL, say) ends the
    iteration with a ``WorkerDied`` naming it. A ``CorruptBatch`` from a lazy data set stops
    with a GankitError naming the file, or with ``skip_corrupt`` drops those items and counts
    them (``skipped``; reported as ``data/skipped`` in the log).
    """

    device: torch.device | None = None
    skip_corrupt: bool = False

    @property
    def epoch_sampler(self) -> EpochSampler:
        """The sampler that orders the indices."""
        return cast(EpochSampler, self.batch_sampler.sampler)  # type: ignore[union-attr]

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the next iteration in the order of ``epoch``."""
        self.epoch_sampler.set_epoch(epoch)

    @property
    def skipped(self) -> int:
        """How many corrupt items this loader has skipped so far."""
        return len(self.__dict__.get("_bad", ()))

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        if self.num_workers > 0:
            # torch's SIGCHLD handler raises a dead worker's error wherever the main thread
            # is, in the middle of an update too. Without it the fetch that waits for data
            # finds the worker gone (within 5 s), so the error comes between two updates,
            # with the state of the last completed iteration, which can still be saved.
            signal_handling._SIGCHLD_handler_set = True
        it = super().__iter__()
        try:
            try:
                ahead = self._ready(next(it))
            except StopIteration:
                return
            for raw in it:
                current, ahead = ahead, self._ready(raw)
                yield current
            yield ahead
        except (RuntimeError, EOFError, OSError) as exc:
            died = worker_died(exc, getattr(it, "_workers", ()))
            if died is None:
                raise
            raise died from None

    def _ready(self, batch: Any) -> Any:
        if isinstance(batch, CorruptBatch):
            batch = self._corrupt(batch)
        if self.device is not None:
            batch = to_device(batch, self.device, non_blocking=self.pin_memory)
        return batch_to_unit(batch)

    def _corrupt(self, batch: CorruptBatch) -> Any:
        if not self.skip_corrupt:
            raise GankitError(f"{batch.errors[0]}, or skip corrupt files (they are counted as "
                              f"data/skipped in the log)", option="skip_corrupt")
        if batch.batch is None:
            raise GankitError(f"every image of a batch is corrupt ({batch.errors[0]}); check "
                              f"the data")
        bad = self.__dict__.setdefault("_bad", set())
        batch.name_skipped(bad)  # each file once, not once per epoch
        report({"data/skipped": float(len(bad))})
        return batch.batch


_SPLIT_WORDS = {"train": "training ", "val": "validation "}


def make_loader(dataset: Dataset[Any], batch_size: int, *, shuffle: bool = True, seed: int = 0,
                drop_last: bool = True, num_workers: int = 0, rank: int = 0,
                world_size: int = 1, pin_memory: bool | None = None,
                device: str | torch.device | None = None, prefetch: int = 2,
                skip_corrupt: bool = False) -> EpochLoader:
    """A DataLoader that fetches whole batches with one indexing op.

    Indices come from an ``EpochSampler(len(dataset), seed=seed, ...)`` in batches of
    ``batch_size`` (the short last batch dropped when ``drop_last``); datasets with a batched
    ``__getitems__`` such as ``ArrayDataset`` skip per-sample collation. Iterating does not
    touch the global torch RNG. Batches come out as float on ``device`` (CPU when None);
    ``pin_memory`` (default: whether ``device`` is CUDA) makes that copy non-blocking.
    Each worker keeps ``prefetch`` batches in flight and lives as long as the loader.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise GankitError(f"batch size {batch_size!r} must be a positive integer; "
                          f"use e.g. 64")
    if not isinstance(dataset, Sized):
        raise GankitError(f"dataset {type(dataset).__name__} has no length; make_loader needs "
                          f"a map-style dataset with __len__")
    # The data shuffles only within this rank's share, but every rank must draw the same
    # epoch order, so the loader shuffles with the sampler and never with its own RNG.
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank,
                           world_size=world_size, drop_last=drop_last)
    if drop_last and batch_size > len(sampler):
        name = getattr(dataset, "name", "") or type(dataset).__name__
        what = _SPLIT_WORDS.get(getattr(dataset, "split", ""), "")
        per_rank = f" per rank ({len(dataset)} over {world_size} ranks)" if world_size > 1 else ""
        raise GankitError(
            f"batch size {batch_size} is larger than the {len(sampler)} {what}samples"
            f"{per_rank} of '{name}'; use a batch size of {len(sampler)} or less")
    if prefetch < 1:
        raise GankitError(f"prefetch {prefetch} must be at least 1 batch per worker")
    generator = torch.Generator()
    generator.manual_seed(seed % 2**64)
    if device == "auto":  # as the Updater reads it
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = None if device is None else torch.device(device)
    if pin_memory is None:
        pin_memory = dev is not None and dev.type == "cuda"
    loader = EpochLoader(
        dataset,
        batch_sampler=BatchSampler(sampler, batch_size, drop_last),
        collate_fn=collate_batched,
        num_workers=num_workers,
        pin_memory=pin_memory,
        # Respawning workers each epoch costs seconds (and a lazy source's open files).
        persistent_workers=num_workers > 0,
        prefetch_factor=prefetch if num_workers > 0 else None,
        generator=generator,
    )
    loader.device = dev
    loader.skip_corrupt = skip_corrupt
    return loader
