"""The MNIST a benchmark trains on (shared by bench/*.py): full MNIST if found, else the subset."""
import numpy as np

from tinygen.data import flatten, load_mnist, to_unit
from tinygen.data.mnist import find_mnist


def load(split, root, quick_size=None):
    """(images (N, 784) float32 in [0, 1], labels (N,) int64, which data it is).

    quick_size: take the first quick_size images of the bundled subset (a quick run). Otherwise the
    full MNIST when it is found (root, TINYGEN_DATA, the cache), else the whole bundled subset.
    """
    if quick_size is not None:
        images, labels = load_mnist(split, subset="bundled")
        n = quick_size
        images, labels, which = images[:n], labels[:n], f"bundled subset, first {n}"
    elif find_mnist(split, root) is not None:
        images, labels = load_mnist(split, root=root)
        which = "full MNIST"
    else:
        images, labels = load_mnist(split, subset="bundled")
        which = "bundled subset (full MNIST not found: set TINYGEN_DATA or --root)"
    return flatten(to_unit(images)), labels.astype(np.int64), which
