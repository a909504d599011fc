"""The Updater: one training step over several models and optimizers.

A method is one ``update_core(batch)``; ``update()`` fetches the batch, moves it to the
device, runs ``update_core`` under autocast and counts. Models, optimizers and loaders
live in named dicts so a checkpoint, a DDP wrapper or an evaluator can find them by name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.training.distributed import rank_and_world_size
from gankit.training.reporter import report

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA when present, else the CPU; others are checked.

    Raises GankitError for a name torch does not know, a CUDA device on a machine without
    CUDA, and device types gankit does not train on.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise GankitError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device {device!r} was asked for but CUDA is not available; use cpu.")
    if resolved.type not in ("cpu", "cuda"):
        raise GankitError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N.")
    return resolved


def map_tensors(fn: Callable[[torch.Tensor], Any], batch: Any) -> Any:
    """``fn`` applied to every tensor of a (nested) batch: lists, tuples and namedtuples keep
    their type, mappings become dicts, anything else is returned as it is."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    # Lists and tuples first: the Mapping check is an ABC check, slow enough to show per step.
    if isinstance(batch, (list, tuple)):
        moved = [map_tensors(fn, v) for v in batch]
        # A namedtuple (default_collate keeps them) takes its fields as arguments.
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    if isinstance(batch, Mapping):
        return {k: map_tensors(fn, v) for k, v in batch.items()}
    return batch


def leading_size(batch: Any) -> int:
    """The batch dimension of the first tensor in a (nested) batch; 0 when it holds none."""
    sizes: list[int] = []
    map_tensors(lambda t: sizes.append(int(t.shape[0]) if t.dim() else 0), batch)
    return next((size for size in sizes if size), 0)


def to_device(batch: Any, device: torch.device, *, non_blocking: bool = True) -> Any:
    """Move every tensor in a (nested) batch; non_blocking so pinned copies overlap compute."""
    return map_tensors(lambda t: t.to(device, non_blocking=non_blocking), batch)


class Updater:
    """Owns the models, optimizers and data of one training method.

    Args:
        models: named modules, e.g. ``{"gen": G, "dis": D}``.
        optimizers: named optimizers; each may cover several models, and several may cover
            one model. ``step(name, loss)`` backpropagates into that optimizer's parameters
            only, so a generator step leaves no gradient in the discriminator.
        loaders: the main data loader, or a dict with a ``"main"`` entry (more are reachable
            through ``next_batch(name)``). The main loader must have a length. If its sampler
            has ``set_epoch``, it is called at each epoch start, which makes the data order a
            function of the epoch and lets a resumed run see the same batches.
        device: where models and batches go (``"auto"``: CUDA when available).
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"fp16"`` (autocast and a
            GradScaler per optimizer).
        grad_clip: maximum gradient norm, for all optimizers or per optimizer name.
        skip_nonfinite: skip the optimizer steps of a ``step_all`` whose losses or gradients
            hold NaN/Inf, instead of letting them poison the weights; counted in
            ``skipped_steps`` and reported as ``skipped``. It costs one host sync per step.
    """

    def __init__(
        self,
        models: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        loaders: Iterable[Any] | Mapping[str, Iterable[Any]],
        *,
        device: str | torch.device | None = "cpu",
        precision: str = "fp32",
        grad_clip: float | Mapping[str, float] | None = None,
        skip_nonfinite: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise GankitError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}."
            )
        self.device = resolve_device(device)
        self.precision = precision
        self.models: dict[str, nn.Module] = {k: m.to(self.device) for k, m in models.items()}
        # The modules whose state is saved; a DDP wrapper in ``models`` keeps its module here.
        self.raw_models: dict[str, nn.Module] = dict(self.models)
        self.optimizers = dict(optimizers)
        self.loaders = dict(loaders) if isinstance(loaders, Mapping) else {"main": loaders}
        if "main" not in self.loaders:
            raise GankitError("loaders needs a 'main' entry: the loader that drives the epochs.")
        try:
            self._epoch_len = len(self.loaders["main"])  # type: ignore[arg-type]
        except TypeError:
            raise TypeError("the main loader must have a length to count epochs.") from None
        if self._epoch_len == 0:
            raise GankitError("the main loader yields no batch; is the data smaller than a batch?")
        self._params = {
            name: [p for group in opt.param_groups for p in group["params"]]
            for name, opt in self.optimizers.items()
        }
        # What each backward reaches, listed once: the parameters that require grad now. A
        # parameter frozen later (requires_grad_(False)) must leave its optimizer too.
        self._inputs = {name: [p for p in ps if p.requires_grad]
                        for name, ps in self._params.items()}
        if isinstance(grad_clip, Mapping):
            unknown = set(grad_clip) - set(self.optimizers)
            if unknown:
                raise GankitError(f"grad_clip names unknown optimizers: {sorted(unknown)}.")
            self.grad_clip = dict(grad_clip)
        else:
            self.grad_clip = dict.fromkeys(self.optimizers, grad_clip) if grad_clip else {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        if precision == "fp16":
            self.scalers = {n: torch.amp.GradScaler(self.device.type) for n in self.optimizers}
        self.skip_nonfinite = skip_nonfinite
        self.skipped_steps = 0
        self.iteration = 0
        # Real images of the main loader consumed by all processes together: the progress
        # that schedules in "kimg" read (training/schedules.py).
        self.images_seen = 0
        self._world_size: int | None = None
        self.epoch = 0
        self.is_new_epoch = False
        self._epoch_pos = 0
        self._iterators: dict[str, Iterator[Any]] = {}

    # ----------------------------------------------------------------- what a method writes
    def update_core(self, batch: Any) -> None:
        """One training step on ``batch`` (already on the device). Override this."""
        raise NotImplementedError("subclass Updater and write update_core(self, batch).")

    def frozen(self, name: str) -> nn.Module:
        """Model ``name`` as its plain module, for a step that does not train it.

        Under DistributedDataParallel ``self.models[name]`` is the wrapper, whose forward
        arms a gradient all-reduce that only a backward into its parameters completes; a
        generator step through the wrapped discriminator leaves the next step waiting
        forever. Call the discriminator as ``self.frozen("dis")`` there (and anywhere a
        network only serves another one's loss); call ``self.models[name]`` where it trains.
        """
        try:
            return self.raw_models[name]
        except KeyError:
            raise KeyError(f"no model named {name!r}; have {sorted(self.raw_models)}.") from None

    def step(self, name: str, loss: torch.Tensor, *, retain_graph: bool = False) -> bool:
        """zero_grad, backward into optimizer ``name``'s parameters, clip, (scale,) step.

        Returns False when ``skip_nonfinite`` skipped the step.
        """
        return self.step_all({name: loss}, retain_graph=retain_graph)

    def step_all(self, losses: Mapping[str, torch.Tensor], *, retain_graph: bool = False) -> bool:
        """Several optimizers on one graph: every backward first, then every step.

        Needed when the losses share a forward pass (VAE-GAN's encoder and decoder): stepping
        one optimizer before the other's backward would change tensors the graph still needs.
        """
        names = list(losses)
        for name in names:
            if name not in self.optimizers:
                raise KeyError(f"no optimizer named {name!r}; have {sorted(self.optimizers)}.")
            self.optimizers[name].zero_grad(set_to_none=True)
        if self.precision == "fp32":
            self._backward(names, losses, retain_graph)
        else:
            # Backward outside autocast: gradients take the dtype of their forward ops anyway.
            # (fp32 skips this: torch.autocast() costs as much per step as a small kernel.)
            with torch.autocast(self.device.type, enabled=False):
                self._backward(names, losses, retain_graph)
        if self.skip_nonfinite and not self._all_finite(losses):
            for name in names:
                self.optimizers[name].zero_grad(set_to_none=True)
            self.skipped_steps += 1
            report({"skipped": 1.0})
            return False
        for name in names:
            opt, scaler = self.optimizers[name], self.scalers.get(name)
            clip = self.grad_clip.get(name)
            if clip:
                if scaler is not None:
                    scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(self._params[name], clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
        return True

    def _backward(self, names: list[str], losses: Mapping[str, torch.Tensor],
                  retain_graph: bool) -> None:
        last = len(names) - 1
        for i, name in enumerate(names):
            loss = losses[name]
            scaler = self.scalers.get(name)
            if scaler is not None:
                loss = scaler.scale(loss)
            torch.autograd.backward(loss, inputs=self._inputs[name],
                                    retain_graph=retain_graph or i < last)

    def _all_finite(self, losses: Mapping[str, torch.Tensor]) -> bool:
        flags = [torch.isfinite(loss).all() for loss in losses.values()]
        flags += [torch.isfinite(p.grad).all() for name in losses for p in self._params[name]
                  if p.grad is not None]
        return bool(torch.stack(flags).all())

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context of this updater's precision (a no-op in fp32)."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def next_batch(self, name: str = "main") -> Any:
        """The next batch of loader ``name`` on the device; other loaders cycle forever."""
        if name == "main":
            return to_device(self._next_main(), self.device)
        it = self._iterators.get(name)
        try:
            if it is None:
                raise StopIteration
            batch = next(it)
        except StopIteration:
            self._iterators[name] = it = iter(self.loaders[name])
            batch = next(it)
        return to_device(batch, self.device)

    # ------------------------------------------------------------------- the loop's side
    @property
    def epoch_detail(self) -> float:
        return self.epoch + self._epoch_pos / self._epoch_len

    @property
    def epoch_length(self) -> int:
        return self._epoch_len

    def update(self) -> None:
        batch = self.next_batch("main")
        if self._world_size is None:
            self._world_size = rank_and_world_size()[1]
        self.images_seen += leading_size(batch) * self._world_size
        if self.precision == "fp32":  # no context at all: even an empty one costs per step
            self.update_core(batch)
        else:
            with self.autocast():
                self.update_core(batch)
        self.iteration += 1

    def _next_main(self) -> Any:
        it = self._iterators.get("main")
        if it is None:
            it = self._iterators["main"] = self._start_epoch()
        try:
            batch = next(it)
        except StopIteration:
            raise RuntimeError(
                f"the main loader ended after {self._epoch_pos} batches but its length is "
                f"{self._epoch_len}; a loader must yield len(loader) batches per epoch."
            ) from None
        self._epoch_pos += 1
        self.is_new_epoch = self._epoch_pos == self._epoch_len
        if self.is_new_epoch:
            self.epoch += 1
            self._epoch_pos = 0
            del self._iterators["main"]
        return batch

    def _start_epoch(self) -> Iterator[Any]:
        loader = self.loaders["main"]
        for holder in (loader, getattr(loader, "sampler", None),
                       getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
            if holder is not None and hasattr(holder, "set_epoch"):
                holder.set_epoch(self.epoch)
                break
        return iter(loader)

    # -------------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "images_seen": self.images_seen,
            "epoch": self.epoch,
            "epoch_pos": self._epoch_pos,
            "models": {k: m.state_dict() for k, m in self.raw_models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for kind, own in (("models", self.raw_models), ("optimizers", self.optimizers)):
            if set(state[kind]) != set(own):
                raise GankitError(
                    f"the snapshot has {kind} {sorted(state[kind])} but this run has "
                    f"{sorted(own)}."
                )
        for k, m in self.raw_models.items():
            m.load_state_dict(state["models"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.scalers.items():
            if k in state["scalers"]:
                s.load_state_dict(state["scalers"][k])
        self.iteration = state["iteration"]
        self.images_seen = int(state.get("images_seen", 0))  # absent in older snapshots
        self.epoch = state["epoch"]
        self.is_new_epoch = False
        self._iterators.clear()
        # Mid-epoch: replay this epoch's order and skip what was consumed. The sampler's
        # order depends only on the epoch, so these are the batches the run would see.
        self._epoch_pos = 0
        for _ in range(state["epoch_pos"]):
            self._next_main()
