"""Input checks the metrics share: matrices of samples, pairs of arrays of one shape."""
import numpy as np

from ..devices import host_array


def as_rows(name, x, what="X"):
    """x as a float64 matrix (N, D); raises for any other number of dimensions."""
    x = host_array(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: {what} must be a matrix (N, D), got shape {x.shape}")
    return x


def check_same_shape(name, a, b, a_name, b_name):
    if a.shape != b.shape:
        raise ValueError(f"{name}: {a_name} shape {a.shape} and {b_name} shape {b.shape} differ")
