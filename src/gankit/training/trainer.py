"""The Trainer: the loop, the stop trigger, the extensions and the one state tree."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from gankit.errors import GankitError
from gankit.training import stop
from gankit.training.checkpoint import latest_snapshot, list_snapshots, load_state
from gankit.training.distributed import agree, all_gather_object, is_distributed, own_rng_state
from gankit.training.extension import Extension, FunctionExtension
from gankit.training.reporter import Value, report_scope
from gankit.training.rng import rng_state, set_rng_state
from gankit.training.triggers import Trigger, TriggerLike, get_stop_trigger, get_trigger
from gankit.training.updater import Updater
from gankit.version import __version__

#: Seconds between the ranks' exchanges of their stop flags (see Trainer._stop_now).
STOP_EXCHANGE_S = 0.5


@dataclass
class _Entry:
    extension: Extension
    trigger: Trigger
    priority: int
    order: int


class Trainer:
    """Runs ``updater.update()`` until ``stop_trigger`` fires, calling extensions after each.

    Args:
        updater: the training method.
        stop_trigger: ``(N, "epoch")``, ``(N, "iteration")`` or a callable of the trainer.
        out: the run directory; extensions write their files here.
        metadata: plain values saved with every snapshot (the CLI stores the recipe here).
    """

    def __init__(
        self,
        updater: Updater,
        stop_trigger: TriggerLike = (1, "epoch"),
        out: str | Path = "result",
        *,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.updater = updater
        self.stop_trigger = get_stop_trigger(stop_trigger)
        self.out = Path(out)
        self.metadata = dict(metadata or {})
        self.observation: dict[str, Value] = {}
        self.stop_reason: str | None = None  # "signal" when SIGINT/SIGTERM ended the run
        self._entries: dict[str, _Entry] = {}
        self._elapsed_before = 0.0
        self._start: float | None = None
        self._running = False
        self.stop_signal: int | None = None  # the signal number that stopped the run
        # Set when a stop abandoned an extension: (its index in run order, its name). The
        # snapshot keeps it with the iteration's observation; a resumed run redoes that
        # extension and those after it before its next update, as if never interrupted.
        self._pending: tuple[int, str] | None = None
        # The distributed stop exchange's schedule (see _stop_now), set at each run().
        self._distributed = False
        self._exchanged_at, self._exchanged_it, self._next_exchange = 0.0, 0, 0
        # Where the update in flight started (iteration, epoch_detail), None between updates.
        self._updating: tuple[int, float] | None = None
        #: Set when run() raised: True when the error came before the update in flight took
        #: its first batch (a data loader failure), so the models, optimizers, RNG streams
        #: and extensions hold the state of the last completed iteration, fit for a snapshot.
        self.failed_before_update = False

    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (or when not distributed): the process that writes files."""
        return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0

    @property
    def elapsed_time(self) -> float:
        """Seconds of training so far, resumed runs included."""
        running = time.perf_counter() - self._start if self._start is not None else 0.0
        return self._elapsed_before + running

    @property
    def extensions(self) -> dict[str, Extension]:
        return {name: e.extension for name, e in self._entries.items()}

    def get_extension(self, name: str) -> Extension:
        if name not in self._entries:
            raise KeyError(f"no extension named {name!r}; have {sorted(self._entries)}.")
        return self._entries[name].extension

    def extend(
        self,
        extension: Extension | Any,
        *,
        name: str | None = None,
        trigger: TriggerLike | None = None,
        priority: int | None = None,
    ) -> None:
        """Register an extension (an ``Extension`` or a function of the trainer).

        ``trigger`` and ``priority`` default to the extension's own attributes; ``priority=0``
        is a priority, not a default. A taken name gets a numeric suffix.
        """
        if self._running:
            raise RuntimeError("extend() was called while the trainer runs; extend before run().")
        if not isinstance(extension, Extension):
            if not callable(extension):
                raise TypeError(
                    f"extend() takes an Extension or a function of the trainer, got {extension!r}."
                )
            extension = FunctionExtension(
                extension,
                getattr(extension, "trigger", (1, "iteration")),
                getattr(extension, "priority", 100),
                getattr(extension, "name", None) or getattr(extension, "__name__", None),
            )
        if priority is None:
            priority = extension.priority
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int, got {priority!r}.")
        base = name if name is not None else extension.default_name
        if not isinstance(base, str) or not base:
            raise GankitError(f"an extension name must be a non-empty string, got {base!r}.")
        unique, n = base, 1
        while unique in self._entries:
            unique, n = f"{base}_{n}", n + 1
        self._entries[unique] = _Entry(
            extension,
            get_trigger(trigger if trigger is not None else extension.trigger),
            priority,
            len(self._entries),
        )

    def _ordered(self) -> list[_Entry]:
        return sorted(self._entries.values(), key=lambda e: (-e.priority, e.order))

    def run(self) -> None:
        """Train until the stop trigger fires, a stop signal arrives or an error is raised.

        SIGINT, SIGTERM and SIGUSR1 stop the run after the update in flight; an extension
        that polls :func:`gankit.training.stop.check_stop` (evaluators do) is abandoned
        within about a second, and the abandoned work is redone on resume.
        """
        if self._running:
            raise RuntimeError("this trainer is already running.")
        if self.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
        entries = self._ordered()
        self._running = True
        self.stop_reason = None
        self._updating, self.failed_before_update = None, False
        self._start = time.perf_counter()
        # report(values, model) names a model of the updater; the wrapped (DDP, compiled) and
        # plain modules both stand for its name. One outer scope, so steps build no mapping.
        observers = [*self.updater.raw_models.items(), *self.updater.models.items()]
        self._distributed = is_distributed()
        self._exchanged_at, self._exchanged_it = time.perf_counter(), self.updater.iteration
        self._next_exchange = self.updater.iteration + 1
        try:
            with stop.handle_signals(), report_scope({}, observers):
                self.stop_signal = None
                for e in entries:
                    e.extension.initialize(self)
                while True:
                    if self._pending is not None:  # finish the iteration a stop abandoned
                        name = self._pending[1]
                        target = self._entries.get(name)
                        if target is None:
                            raise GankitError(
                                f"the snapshot stopped inside extension {name!r}, which this "
                                "run does not have; resume with the same extensions."
                            )
                        first = next(i for i, e in enumerate(entries) if e is target)
                        self._pending = None
                    else:
                        if self.stop_trigger(self):
                            break
                        self.observation = {}
                        first = -1
                    # One scope per iteration: the update and the extensions report into it.
                    with report_scope(self.observation):
                        if first < 0:
                            self._updating = (self.updater.iteration, self.updater.epoch_detail)
                            self.updater.update()
                            self._updating = None
                        completed = self._run_extensions(entries, first)
                    if not completed:
                        break
                    if self._stop_now():
                        self._stopped(stop.pending_signal())
                        break
        except BaseException as exc:
            # Updater.update takes its batch first: while where the epoch stands is unchanged,
            # nothing of the update has run.
            self.failed_before_update = self._updating == (self.updater.iteration,
                                                           self.updater.epoch_detail)
            self._updating = None
            # Each extension's on_error on its own: one that fails neither keeps the others
            # from theirs nor replaces the error that ended the run.
            for e in entries:
                try:
                    e.extension.on_error(self, exc)
                except Exception as inner:
                    warnings.warn(f"{self._name_of(e)}.on_error raised "
                                  f"{type(inner).__name__}: {inner}", RuntimeWarning,
                                  stacklevel=2)
            raise
        finally:
            for e in entries:
                e.extension.finalize(self)
            self._elapsed_before = self.elapsed_time
            self._start = None
            self._running = False

    def _run_extensions(self, entries: list[_Entry], first: int) -> bool:
        """Call the extensions whose trigger fires; False when a stop abandoned one.

        ``first >= 0`` resumes an abandoned iteration: that extension's trigger has fired
        already (and is not asked again), the ones before it have run. Runs inside the
        iteration's report scope.
        """
        for i in range(max(first, 0), len(entries)):
            e = entries[i]
            if i == first or e.trigger(self):
                try:
                    e.extension(self)
                except stop.StopRequested as req:
                    self._pending = (i, self._name_of(e))
                    self._stopped(req.signum)
                    return False
        return True

    def _stop_now(self) -> bool:
        """Whether a stop signal ends the run after this iteration.

        Alone, a look at a flag. Distributed, ranks must stop after the same iteration, so
        they exchange their flags, but not every iteration: at each exchange they also agree
        on the slowest rank's time per iteration and meet again about STOP_EXCHANGE_S later,
        so a signal is honoured within about that time and the collective costs nothing.
        """
        if not self._distributed:
            return stop.stop_requested()
        it = self.updater.iteration
        if it < self._next_exchange:
            return False
        now = time.perf_counter()
        per_iteration = (now - self._exchanged_at) / max(it - self._exchanged_it, 1)
        stopping, slowest = agree(stop.stop_requested(), per_iteration)
        self._exchanged_at, self._exchanged_it = now, it
        self._next_exchange = it + max(1, int(STOP_EXCHANGE_S / max(slowest, 1e-9)))
        return stopping

    def _stopped(self, signum: int | None) -> None:
        self.stop_reason = "signal"
        self.stop_signal = signum if signum is not None else stop.pending_signal()

    def _name_of(self, entry: _Entry) -> str:
        return next(n for n, e in self._entries.items() if e is entry)

    # ----------------------------------------------------------------------- state tree
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly where this one is."""
        extensions = {}
        for name, e in self._entries.items():
            extensions[name] = {
                "extension": e.extension.state_dict(),
                "trigger": e.trigger.state_dict(),
            }
        rng = rng_state()
        state: dict[str, Any] = {
            "gankit_version": __version__,
            "metadata": dict(self.metadata),
            "elapsed_time": self.elapsed_time,
            "updater": self.updater.state_dict(),
            "extensions": extensions,
            "rng": rng,
        }
        if self._pending is not None:
            # Stopped inside an extension: keep the iteration's observation, so the resumed
            # run finishes that iteration with the values its update reported.
            state["pending"] = {
                "index": self._pending[0],
                "name": self._pending[1],
                "observation": {k: _portable(v) for k, v in self.observation.items()},
            }
        if is_distributed():
            # Collective: every rank calls state_dict (Snapshot does), each resumes its own noise.
            state["rng_per_rank"] = all_gather_object(rng)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("gankit_version") != __version__:
            warnings.warn(
                f"this snapshot was written by gankit {state.get('gankit_version')}, "
                f"this is gankit {__version__}; resuming anyway.",
                stacklevel=2,
            )
        saved_meta = state.get("metadata", {})
        for key, value in self.metadata.items():
            if key in saved_meta and saved_meta[key] != value:
                raise GankitError(f"its {key} is {saved_meta[key]!r}, this run's is {value!r}")
        self.updater.load_state_dict(state["updater"])
        for name, saved in state["extensions"].items():
            if name in self._entries:
                self._entries[name].extension.load_state_dict(saved["extension"])
                self._entries[name].trigger.load_state_dict(saved["trigger"])
        self._elapsed_before = state["elapsed_time"]
        pending = state.get("pending")
        if pending is not None:
            device = self.updater.device
            self._pending = (int(pending["index"]), str(pending["name"]))
            self.observation = {
                k: v.to(device) if isinstance(v, torch.Tensor) else v
                for k, v in pending["observation"].items()
            }
        else:
            self._pending = None
        # Last, so nothing above (the replayed batches, say) consumes the restored streams.
        rng = own_rng_state(state)
        if rng is not None:
            set_rng_state(rng)

    def resume(self, source: str | Path) -> Path | None:
        """Continue from a snapshot file, or from the newest good one in a run directory.

        Returns the snapshot's path, or None when there is nothing to resume: a directory
        that does not exist yet or holds no snapshot, so ``trainer.resume(out)`` before
        ``trainer.run()`` serves a first run and a continued one alike. A missing snapshot
        file (a name ending in ``.pt``) is an error. In a directory, damaged snapshots are
        skipped with a warning for the newest good one; when none loads, it is an error.
        """
        source = Path(source)
        if source.is_dir() or (not source.exists() and source.suffix != ".pt"):
            if not list_snapshots(source):
                return None
            path, state = latest_snapshot(source)
        elif not source.exists():
            raise GankitError(
                f"snapshot {source} does not exist; give an existing snapshot file, or the run "
                "directory to continue from its newest snapshot."
            )
        else:
            path, state = source, load_state(source)
        try:
            self.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise GankitError(
                f"snapshot {path} does not fit this run ({first}); "
                "resume with the same recipe and network options it was trained with."
            ) from None
        return path




def _portable(value: Value) -> Value:
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value
