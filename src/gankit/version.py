"""The version of gankit (``gankit.__version__``), in a module of its own so that any module
can import it without importing the package's top level first."""

__version__ = "0.1.0"
