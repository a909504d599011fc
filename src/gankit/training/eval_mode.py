"""One rule for evaluating a model: eval mode for every submodule, each one's mode restored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode; on exit give every submodule back its own previous mode.

    Per submodule, not per model: a frozen BatchNorm inside a training model stays in eval
    mode afterwards, where ``model.train(True)`` would flip it.
    """
    modes = [(sub, sub.training) for m in modules for sub in m.modules()]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for sub, mode in modes:
            sub.training = mode
