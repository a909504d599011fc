"""Reporting observed values without a host-device sync on every step.

``report({"gen/loss": loss})`` stores the tensor itself (detached) in the current
observation. Summaries add tensors on their own device and turn them into Python floats
only when an extension reads the mean, so a CUDA run does not stall once per step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from gankit.errors import GankitError

Value = torch.Tensor | float | int

# The open scopes, innermost last: (observation, id(module) -> the module's name).
_scopes: list[tuple[dict[str, Value], dict[int, str]]] = []


class report_scope:
    """Collect every ``report`` made inside the ``with`` block into ``observation``.

    ``observers`` names the modules that ``report(values, module)`` may name (the Trainer
    passes the updater's models); an inner scope without them keeps the outer scope's. A
    class, not a generator: the trainer opens one per iteration.
    """

    __slots__ = ("_names", "observation")

    def __init__(
        self,
        observation: dict[str, Value],
        observers: Mapping[str, nn.Module] | Iterable[tuple[str, nn.Module]] | None = None,
    ) -> None:
        self.observation = observation
        self._names: dict[int, str] | None = None
        if observers is not None:
            pairs = observers.items() if isinstance(observers, Mapping) else observers
            self._names = {id(m): name for name, m in pairs}

    def __enter__(self) -> dict[str, Value]:
        names = self._names if self._names is not None else (_scopes[-1][1] if _scopes else {})
        _scopes.append((self.observation, names))
        return self.observation

    def __exit__(self, *exc: object) -> None:
        _scopes.pop()


def report(values: Mapping[str, Value], observer: str | nn.Module | None = None) -> None:
    """Record named values for the current iteration.

    Tensors must hold one element; they are detached and kept on their device. ``observer``
    says whose values they are, as in Chainer's ``report(values, observer)``: a prefix string
    or a model of the updater, which stands for its name, so ``report({"loss": x}, "gen")``
    and ``report({"loss": x}, gen)`` both record ``gen/loss``. Outside a scope (a plain
    forward in a notebook) this does nothing.
    """
    prefix = observer
    if observer is not None and not isinstance(observer, str):
        if not isinstance(observer, nn.Module):
            raise TypeError(
                f"report()'s observer must be a name or a model of the updater, got "
                f"{type(observer).__name__}."
            )
        prefix = _scopes[-1][1].get(id(observer)) if _scopes else None
        if prefix is None and _scopes:
            raise TypeError(
                f"report() got a {type(observer).__name__} module that is not a model of the "
                "updater; pass one of its models or a name string as the observer."
            )
    if not _scopes:
        return
    observation = _scopes[-1][0]
    for key, value in values.items():
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, torch.Tensor):
            if value.dim() == 0:  # a loss: the common case, checked first
                observation[name] = value.detach()
                continue
            if value.numel() != 1:
                raise GankitError(
                    f"report() got a tensor of shape {tuple(value.shape)} for '{name}'; "
                    "report scalars, e.g. loss.mean()."
                )
            value = value.detach().reshape(())
        observation[name] = value


class DictSummary:
    """Running means of observations, kept as device tensors until read."""

    def __init__(self) -> None:
        self._sums: dict[str, Value] = {}
        self._counts: dict[str, int] = {}

    def add(self, observation: Mapping[str, Value]) -> None:
        for key, value in observation.items():
            if isinstance(value, torch.Tensor):
                if value.dtype != torch.float32:  # bf16/fp16 sums would lose precision
                    value = value.float()
            elif not isinstance(value, (int, float)):
                continue
            previous = self._sums.get(key)
            self._sums[key] = value if previous is None else previous + value
            self._counts[key] = self._counts.get(key, 0) + 1

    def __len__(self) -> int:
        return len(self._sums)

    def compute_mean(self) -> dict[str, float]:
        """Means of everything added; one host transfer per device, reduced across ranks."""
        keys = sorted(self._sums)
        if not keys:
            return {}
        sums = _to_floats([self._sums[k] for k in keys])
        counts = [float(self._counts[k]) for k in keys]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # Every rank reads its summaries at the same trigger, so this is collective-safe.
            # Ranks may have seen different keys (rare); reduce over the union by name.
            sums, counts = _all_reduce_by_key(keys, sums, counts)
        return {k: s / c for k, s, c in zip(keys, sums, counts, strict=True) if c > 0}

    def state_dict(self) -> dict[str, Any]:
        keys = sorted(self._sums)
        sums = _to_floats([self._sums[k] for k in keys])
        return {"sums": dict(zip(keys, sums, strict=True)), "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sums = dict(state["sums"])
        self._counts = dict(state["counts"])


def _to_floats(values: list[Value]) -> list[float]:
    """Python floats for a mix of numbers and tensors, one transfer per device."""
    out: list[float] = [0.0] * len(values)
    by_device: dict[torch.device, list[int]] = {}
    for i, v in enumerate(values):
        if isinstance(v, torch.Tensor):
            by_device.setdefault(v.device, []).append(i)
        else:
            out[i] = float(v)
    for idx in by_device.values():
        stacked = torch.stack([values[i].reshape(()).float() for i in idx])  # type: ignore[union-attr]
        for i, f in zip(idx, stacked.tolist(), strict=True):
            out[i] = f
    return out


def _all_reduce_by_key(
    keys: list[str], sums: list[float], counts: list[float]
) -> tuple[list[float], list[float]]:
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, dict(zip(keys, zip(sums, counts, strict=True), strict=True)))
    total_s = dict.fromkeys(keys, 0.0)
    total_c = dict.fromkeys(keys, 0.0)
    for part in gathered:
        for k, (s, c) in part.items():
            if k in total_s:
                total_s[k] += s
                total_c[k] += c
    return [total_s[k] for k in keys], [total_c[k] for k in keys]
