"""gankit: train GANs and other multi-network setups in PyTorch."""

__version__ = "0.1.0"

from gankit.errors import GankitError
from gankit.training import (
    Evaluator,
    Extension,
    Trainer,
    Updater,
    make_extension,
    report,
)

__all__ = ["Evaluator", "Extension", "GankitError", "Trainer", "Updater", "__version__",
           "make_extension", "report"]
