"""Data sources (embedded digits, generated shapes32, 2-D mixtures, image folders, npz, MNIST
idx) and loaders."""

from gankit.data.datasets import SPLITS, ArrayDataset, load_dataset
from gankit.data.digits import load_digits
from gankit.data.files import load_folder, load_mnist_idx, load_npz
from gankit.data.loader import EpochLoader, EpochSampler, collate_batched, make_loader
from gankit.data.shapes import load_shapes32
from gankit.data.toy2d import make_toy2d

__all__ = [
    "SPLITS",
    "ArrayDataset",
    "EpochLoader",
    "EpochSampler",
    "collate_batched",
    "load_dataset",
    "load_digits",
    "load_folder",
    "load_mnist_idx",
    "load_npz",
    "load_shapes32",
    "make_loader",
    "make_toy2d",
]
