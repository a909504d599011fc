"""Multiply-accumulates of a forward pass, counted from the operands' shapes.

``with CountMACs() as c: net(x)`` sums the conv2d, conv_transpose2d and linear calls made
inside the block, by kind (``c.macs``, ``c.total``) and records each convolution's input and
weight shapes (``c.calls``). Elementwise ops, matmuls and interpolation are not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["CountMACs"]


class CountMACs(TorchFunctionMode):
    """Counts the multiply-accumulates of conv2d, conv_transpose2d and linear calls."""

    def __init__(self) -> None:
        super().__init__()
        self.macs: dict[str, int] = {"conv": 0, "conv_t": 0, "linear": 0}
        self.calls: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in (F.conv2d, torch.conv2d):  # (Cin / groups) k k per output element
            x, w = args[0], args[1]
            self.macs["conv"] += out.numel() * w[0].numel()
            self.calls.append(("conv", tuple(x.shape), tuple(w.shape)))
        elif func in (F.conv_transpose2d, torch.conv_transpose2d):  # (Cout / groups) k k per input
            x, w = args[0], args[1]
            self.macs["conv_t"] += x.numel() * w[0].numel()
            self.calls.append(("conv_t", tuple(x.shape), tuple(w.shape)))
        elif func is F.linear:
            self.macs["linear"] += out.numel() * args[1].shape[1]
        return out

    @property
    def total(self) -> int:
        """All counted multiply-accumulates."""
        return sum(self.macs.values())
