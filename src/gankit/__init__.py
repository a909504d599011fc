"""gankit: train GANs and other multi-network setups in PyTorch."""

from gankit.errors import GankitError
from gankit.training import (
    Evaluator,
    Extension,
    Trainer,
    Updater,
    make_extension,
    report,
)
from gankit.version import __version__

__all__ = ["Evaluator", "Extension", "GankitError", "Trainer", "Updater", "__version__",
           "make_extension", "report"]
