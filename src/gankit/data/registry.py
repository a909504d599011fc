"""The data sources by name, and ``load_dataset`` that turns a spec into one.

A spec is a source's name (``"digits"``) or, for a source that reads the user's files, its
name and a path (``"folder:PATH"``). Each source is one ``register_source`` call; a new one
(another generated set, another file format) registers itself the same way, and
``load_dataset``, the list of specs in its errors and the command line's ``--data`` pick it
up from ``SOURCES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from gankit.data.archive import load_shards, load_zip
from gankit.data.datasets import DATA_MODES, DataSource, check_split
from gankit.data.digits import load_digits
from gankit.data.files import load_folder, load_mnist_idx, load_npz
from gankit.data.shapes import load_shapes32
from gankit.data.stackedmnist import load_stacked_mnist
from gankit.data.toy2d import TOY2D, make_toy2d
from gankit.errors import GankitError

__all__ = ["SOURCES", "Source", "load_dataset", "register_source", "source_specs"]

#: ``load(arg, split, image_size=..., seed=..., mode=...)``: ``arg`` is the path of a
#: source that takes one, else the source's own name
Loader = Callable[..., DataSource]


@dataclass(frozen=True)
class Source:
    """One data source: how to load it and which options apply to it."""

    name: str
    load: Loader
    #: the placeholder of a spec ``"name:PATH"`` for a source that reads the user's files
    #: (``"PATH"``, ``"DIR"``); empty for a source named by its bare name
    path: str = ""
    #: what ``load_dataset``'s ``mode`` may ask for ("auto" always applies)
    modes: tuple[str, ...] = ("auto", "memory")
    #: 2-D points rather than images: ``image_size`` does not apply
    points: bool = False

    @property
    def spec(self) -> str:
        """How a spec names it: ``"digits"``, ``"folder:PATH"``."""
        return f"{self.name}:{self.path}" if self.path else self.name


SOURCES: dict[str, Source] = {}


def register_source(name: str, load: Loader, *, path: str = "",
                    modes: tuple[str, ...] = ("auto", "memory"), points: bool = False) -> Source:
    """Add a source under ``name`` (see ``Source`` for the options); ``load_dataset`` calls
    ``load(arg, split, image_size=..., seed=..., mode=...)`` for its specs, with ``arg`` the
    path (``path`` given: specs ``"name:PATH"``) or ``name``. Returns the entry."""
    if name in SOURCES:
        raise GankitError(f"data source {name!r} is registered already; pick another name")
    source = Source(name, load, path, modes, points)
    SOURCES[name] = source
    return source


def source_specs() -> str:
    """The registered specs as one phrase, e.g. ``'digits', 'ring8' or 'folder:PATH'``."""
    specs = [repr(s.spec) for s in SOURCES.values()]
    return ", ".join(specs[:-1]) + f" or {specs[-1]}" if len(specs) > 1 else "".join(specs)


def load_dataset(
    spec: str, split: str = "train", *, image_size: int | None = None, seed: int = 0,
    mode: str = "auto",
) -> Any:
    """Load the dataset named by ``spec``: a ``DataSource`` (typed ``Any`` while callers
    annotate it as the ``ArrayDataset`` most sources return).

    Specs: ``"digits"`` (sklearn's embedded 8x8 digits), ``"shapes32"`` (generated 32x32 RGB
    shapes, 16 classes), ``"ring8"`` / ``"grid25"`` (generated
    2-D Gaussian mixtures; ``seed`` picks the sample), ``"folder:PATH"`` (image files),
    ``"npz:PATH"``, ``"mnist-idx:DIR"``, ``"shards:PATH"`` (written by ``gankit prepare``) and
    ``"zip:PATH"`` (a zip of images, stylegan2-ada's dataset_tool layout), and whatever else
    ``register_source`` added. ``split`` is ``"train"``, ``"val"`` (a fixed held-out part
    that does not depend on ``seed``) or ``"all"``. ``image_size=S`` makes images S x S
    (center crop, then resize); it does not apply to point data. ``mode`` ("auto", "memory"
    or "lazy") says whether a folder is decoded up front into an ``ArrayDataset`` or per
    batch into a ``LazyImages``; "auto" goes lazy above ``LAZY_THRESHOLD_BYTES``. Archives
    are always read per batch. Every source returns a ``DataSource``.
    """
    if not isinstance(spec, str):
        raise GankitError(f"data spec must be a string such as {source_specs()}, not {spec!r}")
    check_split(split)
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size < 1):
        raise GankitError(f"image size {image_size!r} is not a positive integer; pass e.g. 32")
    if mode not in DATA_MODES:
        raise GankitError(f"unknown data mode {mode!r}; use 'auto', 'memory' or 'lazy'",
                          option="data_mode")
    kind, sep, path = spec.partition(":")
    source = SOURCES.get(kind) if sep else None
    if source is not None and source.path:
        if not path:
            raise GankitError(f"data spec {spec!r} has no path after '{kind}:'; "
                              f"write it as {source.spec!r}")
        arg = path
    else:
        source = SOURCES.get(spec)
        if source is None or source.path:
            raise GankitError(f"unknown data spec {spec!r}; use one of {source_specs()}")
        arg = spec
    if mode not in source.modes:
        what = (f"{kind}: data, which is one file read whole; use data mode 'auto' or a "
                f"folder:/shards: spec" if source.path
                else f"the built-in data {spec!r}; use data mode 'auto'")
        raise GankitError(f"data mode {mode!r} does not apply to {what}", option="data_mode")
    if source.points and image_size is not None:
        raise GankitError(f"image size {image_size} does not apply to the 2-D point data "
                          f"{spec!r}; leave the image size unset", option="image_size")
    return source.load(arg, split, image_size=image_size, seed=seed, mode=mode)


def _builtin(load: Callable[..., DataSource]) -> Loader:
    return lambda name, split, *, image_size, seed, mode: load(split, image_size=image_size)


def _toy2d(name: str, split: str, *, image_size: int | None, seed: int, mode: str) -> DataSource:
    return make_toy2d(name, split, seed=seed)


def _files(load: Callable[..., DataSource]) -> Loader:
    return lambda path, split, *, image_size, seed, mode: load(path, split,
                                                               image_size=image_size)


def _folder(path: str, split: str, *, image_size: int | None, seed: int,
            mode: str) -> DataSource:
    return cast(DataSource, load_folder(path, split, image_size=image_size, mode=mode))


register_source("digits", _builtin(load_digits))
register_source("shapes32", _builtin(load_shapes32))
for _name in TOY2D:
    register_source(_name, _toy2d, points=True)
register_source("folder", _folder, path="PATH", modes=DATA_MODES)
register_source("npz", _files(load_npz), path="PATH")
register_source("mnist-idx", _files(load_mnist_idx), path="DIR")
# three MNIST digits as the colour channels, 1,000 modes, drawn by the seed
register_source("stackedmnist", lambda path, split, *, image_size, seed, mode: load_stacked_mnist(
    path, split, image_size=image_size, seed=seed), path="DIR")
register_source("shards", _files(load_shards), path="PATH", modes=DATA_MODES)
register_source("zip", _files(load_zip), path="PATH", modes=DATA_MODES)
