"""Data for tinygen: MNIST (read from IDX files, downloaded and verified, or the bundled subset)."""
from .mnist import load_mnist, read_idx

__all__ = [
    "load_mnist",
    "read_idx",
]
