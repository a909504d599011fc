"""Data sources (embedded digits, generated shapes32, 2-D mixtures, image folders, archives,
npz, MNIST idx) and their registry, the ``DataSource`` protocol they share, uint8 storage,
lazy decoding and the epoch-seeded loaders."""

from gankit.data.archive import load_shards, load_zip, prepare_folder
from gankit.data.datasets import (
    DATA_MODES,
    LAZY_THRESHOLD_BYTES,
    SPLITS,
    ArrayDataset,
    DataSource,
    take_fraction,
    to_unit,
)
from gankit.data.digits import load_digits
from gankit.data.files import load_folder, load_mnist_idx, load_npz
from gankit.data.lazy import CorruptBatch, FolderReader, LazyImages
from gankit.data.loader import EpochLoader, EpochSampler, collate_batched, make_loader
from gankit.data.registry import SOURCES, Source, load_dataset, register_source, source_specs
from gankit.data.shapes import load_shapes32
from gankit.data.toy2d import make_toy2d

__all__ = [
    "DATA_MODES",
    "LAZY_THRESHOLD_BYTES",
    "SOURCES",
    "SPLITS",
    "ArrayDataset",
    "CorruptBatch",
    "DataSource",
    "EpochLoader",
    "EpochSampler",
    "FolderReader",
    "LazyImages",
    "Source",
    "collate_batched",
    "load_dataset",
    "load_digits",
    "load_folder",
    "load_mnist_idx",
    "load_npz",
    "load_shapes32",
    "load_shards",
    "load_zip",
    "make_loader",
    "make_toy2d",
    "prepare_folder",
    "register_source",
    "source_specs",
    "take_fraction",
    "to_unit",
]
