"""gankit: train GANs and other multi-network setups in PyTorch."""

__version__ = "0.1.0"

from gankit.errors import GankitError
from gankit.models.export import load_generator
from gankit.training import (
    Evaluator,
    Extension,
    Trainer,
    Updater,
    make_extension,
    report,
)

__all__ = ["Evaluator", "Extension", "GankitError", "Trainer", "Updater", "__version__",
           "load_generator", "make_extension", "report"]
