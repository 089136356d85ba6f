"""Fused kernels for the CPU with Numba: batch norm and leaky relu, one op where composites take 10.

tinygen/nn/functional.py writes batch norm from primitives (mean, var, sub, div, mul, add), which
is readable and differentiable to any order, but costs ~8 passes over the activations forward and
~20 backward; in a DCGAN step that was a quarter of the time. These kernels do the same maths in
one or two parallel passes. Arrays are seen as (N, C, L): L = H*W for BatchNorm2d, 1 for (N, C).
Statistics are accumulated in float64, whatever the input dtype.

    batch_norm_train(x, weight, bias, eps)      -> y, mean, var     (biased var, as in the forward)
        y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
    batch_norm_train_backward(g, x, mean, var, weight, eps) -> gx, gweight, gbias
        x_hat = (x - mean) / sqrt(var + eps),  M = N * L
        gbias = sum g,  gweight = sum g x_hat,
        gx = weight / sqrt(var + eps) * (g - gbias / M - x_hat * gweight / M)
    scale_shift(x, scale, shift)                -> x * scale_c + shift_c   (evaluation mode)
    leaky_relu(x, negative_slope)               -> y = x * slope, slope = 1 where x > 0, else
                                                   negative_slope
    leaky_relu_backward(g, x, negative_slope)   -> g * slope

The ops that call them (tinygen/ops/fused.py) fall back to composites when a graph of the
gradient is needed, so second derivatives stay exact.
"""
import numpy as np
from numba import njit, prange

# Let LLVM reorder the additions of a sum, so that the loops over a channel's values vectorise
# (3-4x faster on the DCGAN's activations). Only the order of rounding changes: no flag that
# assumes away NaN or infinity is set.
SUMS_IN_ANY_ORDER = {"reassoc", "contract"}


@njit(parallel=True, cache=True, fastmath=SUMS_IN_ANY_ORDER)
def _train_forward(x, weight, bias, eps, y, mean, var):
    n, c, length = x.shape
    count = n * length
    for ch in prange(c):
        total = 0.0
        for b in range(n):
            for k in range(length):
                total += x[b, ch, k]
        mu = total / count
        squares = 0.0
        for b in range(n):
            for k in range(length):
                d = x[b, ch, k] - mu
                squares += d * d
        sigma2 = squares / count
        scale = weight[ch] / np.sqrt(sigma2 + eps)
        shift = bias[ch] - mu * scale
        for b in range(n):
            for k in range(length):
                y[b, ch, k] = x[b, ch, k] * scale + shift
        mean[ch] = mu
        var[ch] = sigma2


@njit(parallel=True, cache=True, fastmath=SUMS_IN_ANY_ORDER)
def _train_backward(g, x, mean, var, weight, eps, gx, gweight, gbias):
    n, c, length = x.shape
    count = n * length
    for ch in prange(c):
        inv_std = 1.0 / np.sqrt(var[ch] + eps)
        mu = mean[ch]
        sum_g = 0.0
        sum_g_xhat = 0.0
        for b in range(n):
            for k in range(length):
                sum_g += g[b, ch, k]
                sum_g_xhat += g[b, ch, k] * (x[b, ch, k] - mu) * inv_std
        scale = weight[ch] * inv_std
        mean_g = sum_g / count
        mean_g_xhat = sum_g_xhat / count
        for b in range(n):
            for k in range(length):
                x_hat = (x[b, ch, k] - mu) * inv_std
                gx[b, ch, k] = scale * (g[b, ch, k] - mean_g - x_hat * mean_g_xhat)
        gweight[ch] = sum_g_xhat
        gbias[ch] = sum_g


COLUMNS = 256  # channels per task in the (N, C) kernels below


@njit(parallel=True, cache=True, fastmath=SUMS_IN_ANY_ORDER)
def _train_forward_columns(x, weight, bias, eps, y, mean, var):
    """_train_forward for x (N, C): a task owns a block of columns and walks down the rows, so
    that memory is read in order (one column at a time would jump a whole row per value)."""
    n, c = x.shape
    for block in prange((c + COLUMNS - 1) // COLUMNS):
        c0 = block * COLUMNS
        c1 = min(c, c0 + COLUMNS)
        total = np.zeros(c1 - c0)
        for b in range(n):
            for ch in range(c0, c1):
                total[ch - c0] += x[b, ch]
        mu = total / n
        squares = np.zeros(c1 - c0)
        for b in range(n):
            for ch in range(c0, c1):
                d = x[b, ch] - mu[ch - c0]
                squares[ch - c0] += d * d
        sigma2 = squares / n
        scale = weight[c0:c1] / np.sqrt(sigma2 + eps)
        shift = bias[c0:c1] - mu * scale
        for b in range(n):
            for ch in range(c0, c1):
                y[b, ch] = x[b, ch] * scale[ch - c0] + shift[ch - c0]
        for ch in range(c0, c1):
            mean[ch] = mu[ch - c0]
            var[ch] = sigma2[ch - c0]


@njit(parallel=True, cache=True, fastmath=SUMS_IN_ANY_ORDER)
def _train_backward_columns(g, x, mean, var, weight, eps, gx, gweight, gbias):
    """_train_backward for x (N, C), by blocks of columns as _train_forward_columns."""
    n, c = x.shape
    for block in prange((c + COLUMNS - 1) // COLUMNS):
        c0 = block * COLUMNS
        c1 = min(c, c0 + COLUMNS)
        inv_std = 1.0 / np.sqrt(var[c0:c1].astype(np.float64) + eps)
        sum_g = np.zeros(c1 - c0)
        sum_g_xhat = np.zeros(c1 - c0)
        for b in range(n):
            for ch in range(c0, c1):
                k = ch - c0
                sum_g[k] += g[b, ch]
                sum_g_xhat[k] += g[b, ch] * (x[b, ch] - mean[ch]) * inv_std[k]
        scale = weight[c0:c1] * inv_std
        mean_g = sum_g / n
        mean_g_xhat = sum_g_xhat / n
        for b in range(n):
            for ch in range(c0, c1):
                k = ch - c0
                x_hat = (x[b, ch] - mean[ch]) * inv_std[k]
                gx[b, ch] = scale[k] * (g[b, ch] - mean_g[k] - x_hat * mean_g_xhat[k])
        for ch in range(c0, c1):
            gweight[ch] = sum_g_xhat[ch - c0]
            gbias[ch] = sum_g[ch - c0]


@njit(parallel=True, cache=True)
def _scale_shift(x, scale, shift, y):
    n, c, length = x.shape
    for task in prange(n * c):
        b = task // c
        ch = task % c
        for k in range(length):
            y[b, ch, k] = x[b, ch, k] * scale[ch] + shift[ch]


@njit(parallel=True, cache=True)
def _leaky_relu(x, negative_slope, y):
    """y = x where x > 0, negative_slope * x elsewhere; x and y flat."""
    chunk = 16384
    for start in prange((x.size + chunk - 1) // chunk):
        for k in range(start * chunk, min(x.size, (start + 1) * chunk)):
            y[k] = x[k] if x[k] > 0 else negative_slope * x[k]


@njit(parallel=True, cache=True)
def _leaky_relu_backward(g, x, negative_slope, gx):
    """gx = g where x > 0, negative_slope * g elsewhere; all flat."""
    chunk = 16384
    for start in prange((x.size + chunk - 1) // chunk):
        for k in range(start * chunk, min(x.size, (start + 1) * chunk)):
            gx[k] = g[k] if x[k] > 0 else negative_slope * g[k]


def _as_ncl(a):
    """(N, C, ...) -> contiguous (N, C, L)."""
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def batch_norm_train(x, weight, bias, eps):
    """Normalise x (N, C, ...) with its batch statistics; -> y (like x), mean (C,), var (C,)."""
    x3 = _as_ncl(x)
    y = np.empty(x3.shape, dtype=x.dtype)
    mean = np.empty(x.shape[1], dtype=x.dtype)
    var = np.empty(x.shape[1], dtype=x.dtype)
    weight, bias = weight.astype(x.dtype, copy=False), bias.astype(x.dtype, copy=False)
    if x3.shape[2] == 1:  # (N, C): by blocks of columns
        _train_forward_columns(x3[:, :, 0], weight, bias, float(eps), y[:, :, 0], mean, var)
    else:
        _train_forward(x3, weight, bias, float(eps), y, mean, var)
    return y.reshape(x.shape), mean, var


def batch_norm_train_backward(g, x, mean, var, weight, eps):
    """Gradients of batch_norm_train's y: g (like x) -> gx (like x), gweight (C,), gbias (C,)."""
    x3 = _as_ncl(x)
    g3 = _as_ncl(g.astype(x.dtype, copy=False))
    gx = np.empty(x3.shape, dtype=x.dtype)
    gweight = np.empty(x.shape[1], dtype=x.dtype)
    gbias = np.empty(x.shape[1], dtype=x.dtype)
    weight = weight.astype(x.dtype, copy=False)
    if x3.shape[2] == 1:
        _train_backward_columns(g3[:, :, 0], x3[:, :, 0], mean, var, weight, float(eps),
                                gx[:, :, 0], gweight, gbias)
    else:
        _train_backward(g3, x3, mean, var, weight, float(eps), gx, gweight, gbias)
    return gx.reshape(x.shape), gweight, gbias


def scale_shift(x, scale, shift):
    """x (N, C, ...) * scale[c] + shift[c], in one pass."""
    y = np.empty(x.shape, dtype=x.dtype)
    x3 = _as_ncl(x)
    _scale_shift(x3, scale.astype(x.dtype, copy=False), shift.astype(x.dtype, copy=False),
                 y.reshape(x3.shape))
    return y


def leaky_relu(x, negative_slope):
    """y = x where x > 0, negative_slope * x elsewhere (one pass; y is like x)."""
    x = np.ascontiguousarray(x)
    y = np.empty(x.shape, dtype=x.dtype)
    _leaky_relu(x.reshape(-1), x.dtype.type(negative_slope), y.reshape(-1))
    return y


def leaky_relu_backward(g, x, negative_slope):
    """dL/dx of leaky_relu from dL/dy = g: g times the slope (1 where x > 0, else the negative
    slope)."""
    x = np.ascontiguousarray(x)
    g = np.ascontiguousarray(g, dtype=x.dtype)
    gx = np.empty(x.shape, dtype=x.dtype)
    _leaky_relu_backward(g.reshape(-1), x.reshape(-1), x.dtype.type(negative_slope),
                         gx.reshape(-1))
    return gx
