"""Build bench/assets/fashion_mnist_sample.npz, the embedded default dataset.

A seeded stratified sample of the real Fashion-MNIST: 600 training and 100 test images per
class (bench.data.datasets.SAMPLE_PER_CLASS), uint8, in the layout of keras.datasets.

usage: python scripts/make_fashion_mnist_sample.py [SOURCE.npz]   (default: ../shared/data/fashion_mnist.npz)
"""
import sys
from pathlib import Path

import numpy as np

from bench.data import datasets, kinds

REPO = Path(__file__).resolve().parent.parent


def main(source: Path) -> None:
    with np.load(source) as npz:
        arrays = {key: npz[key] for key in npz.files}
    sample = datasets.make_sample(arrays, seed=0)
    np.savez_compressed(kinds.SAMPLE_FILE, **sample)
    print(kinds.SAMPLE_FILE, {key: value.shape for key, value in sample.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared/data/fashion_mnist.npz")
