"""The ``multiprocess`` marker: tests that start ranks through torchrun (seconds each).

Deselect them with ``pytest -m "not multiprocess"`` for a quick run.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "multiprocess: starts several processes through torchrun (slow on few cores)"
    )
