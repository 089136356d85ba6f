"""Reductions with NumPy's names: axis (None, int or tuple, negatives allowed) and keepdims.

Sum and Max are primitives; mean, min, var and logsumexp are composed from them.
"""
import numpy as np

from ..autograd import Function
from ..tensor import as_tensor
from .shape import normalize_axis


def _kept_shape(shape, axes):
    """The shape a reduction over `axes` has with keepdims=True (1 where an axis was reduced)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, a, axes, keepdims):
        self.in_shape = a.shape
        self.axes = axes
        return np.sum(a, axis=axes, keepdims=keepdims)

    def backward(self, grad):
        # d(sum x)/dx_i = 1: every input element receives the gradient of the sum it went into.
        grad = grad.reshape(_kept_shape(self.in_shape, self.axes))
        return grad.broadcast_to(self.in_shape)


class Max(Function):
    def forward(self, a, axes, keepdims):
        self.in_shape = a.shape
        self.axes = axes
        if a.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {a.shape}")
        return np.max(a, axis=axes, keepdims=keepdims)

    def backward(self, grad):
        (a,) = self.inputs
        kept = _kept_shape(self.in_shape, self.axes)
        # The maximum element gets the gradient; k tied maxima get 1/k each (as torch.amax).
        is_max = a.data == self.output.data.reshape(kept)
        share = is_max / is_max.sum(axis=self.axes, keepdims=True)
        share = as_tensor(share.astype(grad.dtype))
        return grad.reshape(kept).broadcast_to(self.in_shape) * share


def _count(shape, axes):
    return int(np.prod([shape[i] for i in axes])) if axes else 1


def sum(a, axis=None, keepdims=False):
    """Sum over axis (all axes when None)."""
    return Sum.apply(a, axes=normalize_axis(axis, a.ndim, "sum"), keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    """Mean over axis: sum / count."""
    axes = normalize_axis(axis, a.ndim, "mean")
    return sum(a, axes, keepdims) * (1.0 / _count(a.shape, axes))


def max(a, axis=None, keepdims=False):
    """Largest value over axis; the gradient goes to the maximum (shared equally among ties)."""
    return Max.apply(a, axes=normalize_axis(axis, a.ndim, "max"), keepdims=keepdims)


def min(a, axis=None, keepdims=False):
    """Smallest value over axis: -max(-a)."""
    return -max(-a, axis, keepdims)


def var(a, axis=None, keepdims=False, ddof=0):
    """Variance over axis, sum((a - mean)^2) / (n - ddof); ddof=0 as NumPy (torch.var uses 1)."""
    axes = normalize_axis(axis, a.ndim, "var")
    n = _count(a.shape, axes)
    if n - ddof <= 0:
        raise ValueError(f"var: {n} values with ddof={ddof} leave no degrees of freedom")
    centred = a - mean(a, axes, keepdims=True)
    return sum(centred * centred, axes, keepdims) * (1.0 / (n - ddof))


def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) over axis, computed as m + log(sum(exp(a - m))) with m = max(a) so that
    exp never overflows. m is a constant: the formula equals logsumexp for any m."""
    axes = normalize_axis(axis, a.ndim, "logsumexp")
    m = np.max(a.data, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # all -inf along an axis: shift by 0 (result is -inf)
    m = as_tensor(m.astype(a.dtype, copy=False))
    result = sum((a - m).exp(), axes, keepdims=True).log() + m
    if keepdims:
        return result
    return result.reshape(tuple(n for i, n in enumerate(a.shape) if i not in axes))
