"""Tensor factories: zeros, ones, randn, rand, arange (float32 unless dtype says otherwise).

device= puts the result on a device ("cuda"): the values are made on the host and copied there
once. Random draws come from the one global generator on the host, so a seed gives the same
numbers on every device (tinygen.manual_seed).
"""
import numpy as np

from .ops.shape import one_tuple  # zeros(2, 3) or zeros((2, 3))
from .random import generator
from .tensor import Tensor, float32


def zeros(*shape, dtype=float32, requires_grad=False, device=None):
    return Tensor(np.zeros(one_tuple(shape)), requires_grad=requires_grad, dtype=dtype,
                  device=device)


def ones(*shape, dtype=float32, requires_grad=False, device=None):
    return Tensor(np.ones(one_tuple(shape)), requires_grad=requires_grad, dtype=dtype,
                  device=device)


def zeros_like(t, requires_grad=False):
    """Zeros of t's shape and dtype, on t's device (made there: np.zeros_like dispatches)."""
    return Tensor._wrap(np.zeros_like(_array(t)), False).requires_grad_(requires_grad)


def ones_like(t, requires_grad=False):
    """Ones of t's shape and dtype, on t's device."""
    return Tensor._wrap(np.ones_like(_array(t)), False).requires_grad_(requires_grad)


def _array(t):
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def randn(*shape, dtype=float32, requires_grad=False, device=None):
    """Standard normal samples from the global generator (seed it with tinygen.manual_seed)."""
    return Tensor(generator().standard_normal(one_tuple(shape)), requires_grad=requires_grad,
                  dtype=dtype, device=device)


def rand(*shape, dtype=float32, requires_grad=False, device=None):
    """Uniform samples in [0, 1) from the global generator."""
    return Tensor(generator().random(one_tuple(shape)), requires_grad=requires_grad, dtype=dtype,
                  device=device)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False, device=None):
    """Evenly spaced values in [start, stop) as np.arange (integers stay int64 without dtype)."""
    values = np.arange(start, step=step) if stop is None else np.arange(start, stop, step)
    return Tensor(values, requires_grad=requires_grad, dtype=dtype, device=device)
