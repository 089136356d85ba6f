"""Tensor factories: zeros, ones, randn, rand, arange (float32 unless dtype says otherwise)."""
import numpy as np

from .ops.shape import one_tuple  # zeros(2, 3) or zeros((2, 3))
from .random import generator
from .tensor import Tensor, float32


def zeros(*shape, dtype=float32, requires_grad=False):
    return Tensor(np.zeros(one_tuple(shape)), requires_grad=requires_grad, dtype=dtype)


def ones(*shape, dtype=float32, requires_grad=False):
    return Tensor(np.ones(one_tuple(shape)), requires_grad=requires_grad, dtype=dtype)


def zeros_like(t, requires_grad=False):
    return zeros(t.shape, dtype=t.dtype, requires_grad=requires_grad)


def ones_like(t, requires_grad=False):
    return ones(t.shape, dtype=t.dtype, requires_grad=requires_grad)


def randn(*shape, dtype=float32, requires_grad=False):
    """Standard normal samples from the global generator (seed it with tinygen.manual_seed)."""
    return Tensor(generator().standard_normal(one_tuple(shape)), requires_grad=requires_grad,
                  dtype=dtype)


def rand(*shape, dtype=float32, requires_grad=False):
    """Uniform samples in [0, 1) from the global generator."""
    return Tensor(generator().random(one_tuple(shape)), requires_grad=requires_grad, dtype=dtype)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Evenly spaced values in [start, stop) as np.arange (integers stay int64 without dtype)."""
    values = np.arange(start, step=step) if stop is None else np.arange(start, stop, step)
    return Tensor(values, requires_grad=requires_grad, dtype=dtype)
