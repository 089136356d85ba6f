"""Convolution kernels for the CPU with Numba: parallel im2col / col2im, and BLAS for the product.

Same maths and signatures as numpy_conv.py (read that first). A convolution is a matrix product
between the weight and the "im2col" matrix of input windows; BLAS already does the product at close
to the machine's peak, so what Numba speeds up is everything around it, which in NumPy costs as
much as the product itself:
  * building the im2col matrix: one parallel pass that reads each input pixel once per window
    that holds it, instead of NumPy's strided copies of padded temporaries;
  * col2im (the input-gradient's scatter-add): parallel over (image, channel) planes, so that no
    two threads ever add into the same pixel;
  * the NCHW <-> channel-first transposes around the product.
Compiled on first use with cache=True, so a second process loads the machine code from disk.
"""
import os

import numba
import numpy as np
from numba import njit, prange

# Numba's default OpenMP thread pool spins after each parallel loop, and so do OpenBLAS's threads
# after each product: alternating the two on a laptop's few cores, each call waits for the other
# pool to yield (bench/conv.py measured 2.5x slower DCGAN steps). The workqueue pool sleeps at
# once. A threading layer the user chose (NUMBA_THREADING_LAYER) is left alone.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

from .numpy_conv import output_size


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    """cols[c, i, j, n, p, q] = x[n, c, p*sh + i - ph, q*sw + j - pw], 0 outside the image."""
    n, c, h, w = x.shape
    for row in prange(c * kh * kw):  # one im2col row (channel, kernel offset) per task
        ch = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        for b in range(n):
            for p in range(oh):
                r = p * sh + i - ph
                for q in range(ow):
                    col = q * sw + j - pw
                    if 0 <= r < h and 0 <= col < w:
                        cols[ch, i, j, b, p, q] = x[b, ch, r, col]
                    else:
                        cols[ch, i, j, b, p, q] = 0


@njit(parallel=True, cache=True)
def _col2im(cols, sh, sw, ph, pw, gx):
    """gx[n, c, p*sh + i - ph, q*sw + j - pw] += cols[c, i, j, n, p, q] (gx starts at zero)."""
    c, kh, kw, n, oh, ow = cols.shape
    h, w = gx.shape[2], gx.shape[3]
    for plane in prange(n * c):  # each (image, channel) plane belongs to one task: no races
        b = plane // c
        ch = plane % c
        for i in range(kh):
            for j in range(kw):
                for p in range(oh):
                    r = p * sh + i - ph
                    if r < 0 or r >= h:
                        continue
                    for q in range(ow):
                        col = q * sw + j - pw
                        if 0 <= col < w:
                            gx[b, ch, r, col] += cols[ch, i, j, b, p, q]


@njit(parallel=True, cache=True)
def _channels_first(a, out):
    """out[c, n, ...] = a[n, c, ...] for 4-D a (N, C, H, W): the transpose, in parallel."""
    n, c = a.shape[0], a.shape[1]
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        out[ch, b] = a[b, ch]


def _to_channels_first(a):
    """(N, C, H, W) -> contiguous (C, N, H, W)."""
    out = np.empty((a.shape[1], a.shape[0]) + a.shape[2:], dtype=a.dtype)
    _channels_first(np.ascontiguousarray(a), out)
    return out


def im2col(x, kernel, stride, padding):
    """x (N, C, H, W) -> (C * kH * kW, N * OH * OW), as numpy_conv.im2col."""
    n, c, h, w = x.shape
    kh, kw = kernel
    oh = output_size(h, kh, stride[0], padding[0])
    ow = output_size(w, kw, stride[1], padding[1])
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), kh, kw, stride[0], stride[1], padding[0], padding[1],
            oh, ow, cols)
    return cols.reshape(c * kh * kw, n * oh * ow)


def conv2d(x, w, stride, padding):
    """y = x * w.  x (N, C, H, W), w (O, C, kH, kW) -> y (N, O, OH, OW)."""
    n = x.shape[0]
    o, _, kh, kw = w.shape
    oh = output_size(x.shape[2], kh, stride[0], padding[0])
    ow = output_size(x.shape[3], kw, stride[1], padding[1])
    cols = im2col(x, (kh, kw), stride, padding)  # (C*kH*kW, N*OH*OW)
    y = w.reshape(o, -1) @ cols  # (O, N*OH*OW), BLAS
    return _to_channels_first(y.reshape(o, n, oh, ow))  # (N, O, OH, OW)


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    """dL/dx from dL/dy.  gy (N, O, OH, OW), w (O, C, kH, kW) -> (N, C, H, W)."""
    n, o, oh, ow = gy.shape
    c, kh, kw = w.shape[1:]
    gy_rows = _to_channels_first(gy).reshape(o, n * oh * ow)
    cols = np.ascontiguousarray(w.reshape(o, -1).T) @ gy_rows  # (C*kH*kW, N*OH*OW), BLAS
    gx = np.zeros(x_shape, dtype=cols.dtype)
    _col2im(cols.reshape(c, kh, kw, n, oh, ow), stride[0], stride[1], padding[0], padding[1], gx)
    return gx


def conv2d_grad_weight(x, gy, w_shape, stride, padding):
    """dL/dw from dL/dy.  x (N, C, H, W), gy (N, O, OH, OW) -> (O, C, kH, kW)."""
    o = w_shape[0]
    cols = im2col(x, w_shape[2:], stride, padding)  # (C*kH*kW, N*OH*OW)
    gy_rows = _to_channels_first(gy).reshape(o, -1)  # (O, N*OH*OW)
    return (gy_rows @ cols.T).reshape(w_shape)  # BLAS
