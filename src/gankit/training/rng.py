"""The process's random streams (Python, numpy, torch CPU and CUDA) as one state, saved with
every snapshot and restored on resume or after abandoned work."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """Every random stream's state; numpy's as a tensor, so it loads with weights_only=True."""
    np_state: tuple[Any, ...] = np.random.get_state()  # type: ignore[assignment]
    state = {
        "python": random.getstate(),
        # numpy's state holds an ndarray; as a tensor it loads with weights_only=True.
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned (CUDA's streams when there are any here)."""
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
