"""Data for tinygen: MNIST (IDX files found, downloaded and verified, or the bundled subset), toy
distributions for the GAN lessons, a DataLoader, and transforms from uint8 images to inputs."""
from . import toy, transforms  # noqa: F401
from .loader import DataLoader
from .mnist import load_mnist, read_idx
from .transforms import (  # noqa: F401
    Binarizer,
    Dequantizer,
    binarize_dynamic,
    binarize_static,
    dequantize,
    flatten,
    to_symmetric,
    to_unit,
)

__all__ = [
    "load_mnist",
    "read_idx",
    "DataLoader",
    "toy",
    "transforms",
]
