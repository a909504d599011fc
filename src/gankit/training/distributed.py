"""Several processes, one run: torchrun, DistributedDataParallel, per-rank seeds.

A run is distributed when torchrun (or ``gankit train --nproc N``, which calls torchrun's own
launcher) starts it with ``WORLD_SIZE > 1`` in the environment. Then every process:

- joins the process group (gloo on CPU, NCCL on CUDA, one GPU per local rank) with a bounded
  timeout, so a rank that hangs fails the run instead of freezing it; under torchrun's agent
  each group forms in a generation of its own, so a group restarted after a lost rank
  (``--max-restarts``) never reads what the dead group left in the agent's store;
- builds the same networks from the same seed, then wraps each trainable one in
  DistributedDataParallel in ``updater.models`` (``raw_models`` keep the plain modules, which
  snapshots save and which carry no hooks or collectives);
- reads its own share of every epoch (``make_loader(..., rank=r, world_size=n)``), so
  ``--batch-size`` is the batch of one process and the global batch is ``n`` times it;
- draws its own noise (ranks other than 0 re-seed after the networks are built).

Reported values are reduced across ranks when an extension reads their means
(``DictSummary.compute_mean``), not on every step. Only rank 0 writes files.
"""

from __future__ import annotations

import atexit
import datetime
import os
import random
import time
import warnings
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from gankit.errors import GankitError

if TYPE_CHECKING:
    from gankit.training.updater import Updater

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "agree",
    "all_gather_object",
    "any_rank",
    "barrier",
    "cleanup",
    "env_seconds",
    "group_generation",
    "init_distributed",
    "is_distributed",
    "launched_by_torchrun",
    "own_entry",
    "own_rng_state",
    "prepare_updater",
    "rank_and_world_size",
    "seed_rank",
]

#: Seconds a collective may wait for the other ranks before the run fails. Generous, because
#: rank 0 alone writes snapshots and sample grids while the others wait at the next step.
DEFAULT_TIMEOUT_S = 600.0
TIMEOUT_ENV = "GANKIT_DIST_TIMEOUT"
_TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_cpu_group: Any = None  # a gloo group beside NCCL's; None: the default group is gloo


def is_distributed() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_by_torchrun() -> bool:
    """True when torchrun started this process as one of several ranks."""
    text = os.environ.get("WORLD_SIZE") or "1"
    if not text.isdigit():
        raise GankitError(f"WORLD_SIZE={text!r} is not a number of processes; unset it or "
                          "start the run with torchrun.")
    return int(text) > 1


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable ``name``, else ``default``."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise GankitError(f"{name}={text!r} is not a positive number of seconds; "
                          f"set it to e.g. {default:g}.")
    return value


def _timeout_s() -> float:
    return env_seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)


def init_distributed(device: str | torch.device = "cpu",
                     timeout_s: float | None = None) -> torch.device:
    """Join the process group torchrun describes; returns the device this rank uses.

    Not launched by torchrun (no ``WORLD_SIZE > 1``): does nothing and returns ``device``.
    On CUDA every rank takes GPU ``LOCAL_RANK`` (an index in ``device`` is ignored) and the
    backend is NCCL; on the CPU it is gloo. ``timeout_s`` (default ``GANKIT_DIST_TIMEOUT``
    or 600 s) bounds the rendezvous and every collective.
    """
    device = torch.device(device)
    if not launched_by_torchrun():
        return device
    missing = [v for v in _TORCHRUN_VARS if not os.environ.get(v)]
    if missing:
        raise GankitError(
            f"WORLD_SIZE is set but {', '.join(missing)} is not; start several processes with "
            "torchrun or with gankit train, not by setting WORLD_SIZE by hand.", option="nproc"
        )
    if device.type == "cuda":
        local_rank = int(os.environ["LOCAL_RANK"])
        if local_rank >= torch.cuda.device_count():
            raise GankitError(
                f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                "start at most one process per GPU.", option="nproc"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)  # NCCL and all_gather_object use the current device
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise GankitError(f"device {str(device)!r} cannot train distributed; use cpu or cuda.")
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=timeout_s or _timeout_s())
        device_id = device if device.type == "cuda" else None
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True):
            dist.init_process_group(backend, timeout=timeout, device_id=device_id,
                                    store=_generation_store(timeout.total_seconds()),
                                    rank=int(os.environ["RANK"]),
                                    world_size=int(os.environ["WORLD_SIZE"]))
        else:
            dist.init_process_group(backend, timeout=timeout, device_id=device_id)
        global _cpu_group
        # NCCL reduces GPU tensors only; small host-side agreements go over gloo.
        _cpu_group = dist.new_group(backend="gloo", timeout=timeout) if backend == "nccl" \
            else None
        # Whatever way the process ends, leave the group before the interpreter tears down.
        atexit.register(cleanup, sync=False)
    return device


_GENERATION = "gankit/generation"
_POLL_S = 0.05
_group_generation = 0


def _generation_store(timeout_s: float) -> Any:
    """torchrun's agent store, under a prefix that this attempt's ranks alone share.

    The agent keeps one store for all the attempts of a job (``--max-restarts``), and the keys
    a process group writes there as it forms (each rank's address, the join counters) outlive
    a failed attempt: the next attempt's ranks read the dead ranks' addresses (gloo: "connection
    refused") or pass a barrier early. The restart count cannot serve as the prefix: with
    several nodes, an agent whose workers were healthy restarts them without counting. So rank
    0 opens a new generation (a counter in the store) and acknowledges each rank that joins it;
    a rank that joined an older generation (the counter read before rank 0 raised it) gets no
    acknowledgement, as that generation's rank 0 is gone, and joins the newer one.
    """
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=False, timeout=datetime.timedelta(seconds=timeout_s))
    if rank == 0:
        generation = store.add(_GENERATION, 1)
        for r in range(1, world):
            key = f"{_GENERATION}/{generation}/join/{r}"
            store.wait([key])
            store.set(f"{_GENERATION}/{generation}/ack/{r}", store.get(key).decode())
    else:
        nonce = os.urandom(16).hex()
        deadline = time.monotonic() + timeout_s
        joined = None
        while True:
            generation = store.add(_GENERATION, 0)
            if generation != joined:
                store.set(f"{_GENERATION}/{generation}/join/{rank}", nonce)
                joined = generation
            ack = f"{_GENERATION}/{generation}/ack/{rank}"
            if store.check([ack]) and store.get(ack).decode() == nonce:
                break
            if time.monotonic() > deadline:
                raise GankitError(f"rank 0 did not start within {timeout_s:g} s; check its "
                                  f"messages, or raise {TIMEOUT_ENV}.")
            time.sleep(_POLL_S)
    global _group_generation
    _group_generation = generation
    return dist.PrefixStore(f"{_GENERATION}/{generation}/group/", store)


def group_generation() -> int:
    """How many times this torchrun job's process group has formed, this one included: the
    same number on every rank, higher after each restart (0 when not under torchrun's agent)."""
    return _group_generation


def cleanup(sync: bool = True) -> None:
    """Leave the process group (a no-op when there is none).

    ``sync`` first waits for every rank, so no rank tears its connections down while another
    still talks to it (a rank that exits early made the others abort at exit with "terminate
    called without an active exception"). Failure paths leave with ``sync=False``.
    """
    global _cpu_group
    if dist.is_available() and dist.is_initialized():
        if sync and dist.get_world_size() > 1:
            dist.barrier(group=_cpu_group)
        dist.destroy_process_group()  # and every subgroup
    _cpu_group = None


def barrier() -> None:
    """Wait for every rank (a no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when not distributed). Collective.

    ``obj`` must be picklable; it travels over gloo, so CPU tensors stay on the CPU.
    """
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj, group=_cpu_group)
    return gathered


def any_rank(flag: bool) -> bool:
    """True when ``flag`` is true on any rank (``flag`` itself when not distributed).

    Collective, on the CPU over gloo, so a CUDA run does not wait for its GPU queue: the
    trainer asks it once per iteration whether a rank got SIGINT/SIGTERM, so that every rank
    stops after the same iteration and writes its part of the final snapshot.
    """
    if not is_distributed():
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_cpu_group)
    return bool(value.item())


def agree(flag: bool, value: float) -> tuple[bool, float]:
    """``(any rank's flag, the largest value)`` in one CPU collective (the inputs when not
    distributed). The trainer's stop exchange: every rank gets the same answer, so every rank
    schedules its next exchange at the same iteration."""
    if not is_distributed():
        return flag, value
    both = torch.tensor([float(flag), value], dtype=torch.float64)
    dist.all_reduce(both, op=dist.ReduceOp.MAX, group=_cpu_group)
    return bool(both[0]), float(both[1])


def seed_rank(seed: int) -> None:
    """Give ranks other than 0 their own python/numpy/torch streams derived from ``seed``.

    Call it after the networks are built from the common seed: the ranks start from the same
    weights but draw different noise, as a larger batch would. Rank 0 keeps its streams, so
    its first draws equal those of a one-process run.
    """
    rank, _ = rank_and_world_size()
    if rank == 0:
        return
    words = np.random.SeedSequence([seed, rank]).generate_state(2, np.uint32)
    derived = int(words[0]) << 32 | int(words[1])
    random.seed(derived)
    np.random.seed(int(words[0]))
    torch.manual_seed(derived)


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def prepare_updater(updater: Updater, *, compile: bool | Collection[str] = False,
                    channels_last: bool | None = None,
                    find_unused_parameters: bool = False) -> Updater:
    """Wrap the networks in ``updater.models`` for speed and several processes, in place.

    - ``channels_last`` (default: on CUDA) stores the weights of 4-D convolutions in NHWC,
      which tensor cores prefer; the raw modules are converted, so snapshots are unchanged.
    - With several ranks, each model with trainable parameters becomes
      ``DistributedDataParallel`` with ``forward_sync_buffers=False``: buffers (batch-norm
      running statistics) are synced once at wrap time and then stay per rank. Syncing them
      at every forward would broadcast rank 0's statistics in place between the two
      discriminator calls (real, fake) of one step, a known source of "modified by an inplace
      operation" errors and of rank-0-only statistics; training-mode batch norm normalises
      with the batch statistics anyway, so per-rank buffers change no gradient.
    - ``compile``: ``True`` or the names of the networks to wrap (DDP included) in
      ``torch.compile``. Leave out a network whose loss takes a double backward (a
      discriminator with an R1/R2/GP penalty): compiled graphs do not support it.

    ``updater.raw_models`` keep the plain modules for state_dict, EMA and evaluation.
    """
    if channels_last is None:
        channels_last = updater.device.type == "cuda"
    to_compile = set(updater.raw_models) if compile is True else set(compile or ())
    unknown = to_compile - set(updater.raw_models)
    if unknown:
        raise GankitError(f"compile names unknown models {sorted(unknown)}; "
                         f"have {sorted(updater.raw_models)}.")
    for name, raw in updater.raw_models.items():
        model: nn.Module = raw
        if channels_last:
            # Only 4-D tensors change layout. Module.to takes memory_format; its stubs omit it.
            raw.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if is_distributed() and _trainable(raw):
            ids = [updater.device.index] if updater.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(
                raw, device_ids=ids, forward_sync_buffers=False,
                find_unused_parameters=find_unused_parameters,
            )
        if name in to_compile:
            model = torch.compile(model)  # type: ignore[assignment]
        updater.models[name] = model
    return updater


def own_entry(per_rank: list[Any] | None, fallback: Any) -> Any:
    """This rank's entry of a list gathered from every rank when a snapshot was written
    (``all_gather_object``), or ``fallback`` for a rank it has none for (more ranks now)."""
    rank, _ = rank_and_world_size()
    return per_rank[rank] if per_rank is not None and rank < len(per_rank) else fallback


def own_rng_state(state: dict[str, Any]) -> dict[str, Any] | None:
    """The RNG streams this rank resumes from a trainer state, or None to keep its own.

    A snapshot of a distributed run holds every rank's streams under ``rng_per_rank`` (rank
    0's also under ``rng``). A rank the snapshot has no streams for (the run now has more
    ranks than it had) keeps the streams ``seed_rank`` gave it, so no two ranks share noise.
    """
    rank, world = rank_and_world_size()
    per_rank = state.get("rng_per_rank")
    if per_rank is None:
        return state["rng"] if rank == 0 else None
    if len(per_rank) != world and rank == 0:
        warnings.warn(
            f"the snapshot was written by {len(per_rank)} processes and this run has {world}; "
            "the data order and noise differ from an uninterrupted run.", stacklevel=2,
        )
    own: dict[str, Any] | None = own_entry(per_rank, None)
    return own


#: what the collective backends say when a peer process of the group has gone
_PEER_LOSS = ("Connection reset by peer", "Connection closed by peer", "Broken pipe",
              "Socket Timeout", "NCCL communicator was aborted", "ProcessGroupGloo")


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc``, raised in a distributed run, says another process of the group died."""
    if not is_distributed():
        return False
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return any(marker in text for marker in _PEER_LOSS)
