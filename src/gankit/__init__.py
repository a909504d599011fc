"""gankit: train GANs and other multi-network setups in PyTorch."""

from gankit.errors import GankitError
from gankit.export import load_generator
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
           "load_generator", "make_extension", "report"]
