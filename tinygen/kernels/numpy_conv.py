"""Convolution kernels in NumPy: the readable reference every other backend is tested against.

Plain arrays in, plain arrays out; no autograd here. NCHW layout, weight (C_out, C_in, kH, kW),
stride and padding as (vertical, horizontal) pairs of ints. With
    y[n, o, p, q] = sum_{c, i, j} x_padded[n, c, p * sh + i, q * sw + j] * w[o, c, i, j]
the three kernels are
    conv2d              x, w  -> y         (the forward)
    conv2d_grad_input   gy, w -> gx        (dL/dx; also the forward of the transposed convolution)
    conv2d_grad_weight  x, gy -> gw        (dL/dw)
Each is one matrix product with an "im2col" matrix whose columns are the flattened input
windows, laid out channel-first so that every copy and add below moves contiguous blocks.

Every array made here has its input's array type (np.zeros(..., like=x)): on NumPy arrays that is
NumPy, and the same code runs unchanged on CuPy arrays on a GPU through NumPy's dispatch protocols,
the matrix products in cuBLAS (cuda_conv.py's "im2col" method).
"""
import numpy as np

from .sizes import output_size


def _window_slices(i, j, out_size, stride):
    """The rows and columns that kernel offset (i, j) reads across all windows: window (p, q)
    reads padded pixel (p * sh + i, q * sw + j)."""
    (oh, ow), (sh, sw) = out_size, stride
    return slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


def im2col(x, kernel, stride, padding):
    """The input windows as the columns of one matrix.

    x (N, C, H, W) -> (C * kH * kW, N * OH * OW): rows ordered (c, i, j), columns (n, p, q).
    One strided copy per kernel offset (i, j); no loop over pixels.
    """
    n, c, h, w = x.shape
    kh, kw = kernel
    ph, pw = padding
    oh = output_size(h, kh, stride[0], ph)
    ow = output_size(w, kw, stride[1], pw)
    padded = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype, like=x)
    padded[:, :, ph:ph + h, pw:pw + w] = x.transpose(1, 0, 2, 3)
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype, like=x)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, (oh, ow), stride)
            cols[:, i, j] = padded[:, :, rows, columns]
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kernel, stride, padding):
    """The adjoint of im2col: add every window's entries back onto the pixels they were read from.

    cols (C * kH * kW, N * OH * OW) -> (N, C, H, W). One strided add per kernel offset (i, j).
    """
    n, c, h, w = x_shape
    kh, kw = kernel
    ph, pw = padding
    oh = output_size(h, kh, stride[0], ph)
    ow = output_size(w, kw, stride[1], pw)
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    padded = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype, like=cols)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, (oh, ow), stride)
            padded[:, :, rows, columns] += cols[:, i, j]
    return np.ascontiguousarray(padded[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3),
                                like=padded)


def conv2d(x, w, stride, padding):
    """y = x * w.  x (N, C, H, W), w (O, C, kH, kW) -> y (N, O, OH, OW)."""
    n = x.shape[0]
    o, _, kh, kw = w.shape
    oh = output_size(x.shape[2], kh, stride[0], padding[0])
    ow = output_size(x.shape[3], kw, stride[1], padding[1])
    cols = im2col(x, (kh, kw), stride, padding)  # (C*kH*kW, N*OH*OW)
    y = w.reshape(o, -1) @ cols  # (O, N*OH*OW)
    return np.ascontiguousarray(y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3), like=y)


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    """dL/dx from dL/dy.  gy (N, O, OH, OW), w (O, C, kH, kW), x_shape (N, C, H, W) -> (N, C, H, W).

    dL/dx[n, c, h, v] = sum over (o, p, q, i, j) with p*sh + i = h + ph, q*sw + j = v + pw of
    gy[n, o, p, q] w[o, c, i, j]. x_shape is needed because with stride > 1 several input sizes
    give the same output size.
    """
    o = gy.shape[1]
    gy_rows = gy.transpose(1, 0, 2, 3).reshape(o, -1)  # (O, N*OH*OW)
    cols = w.reshape(o, -1).T @ gy_rows  # (C*kH*kW, N*OH*OW)
    return col2im(cols, x_shape, w.shape[2:], stride, padding)


def conv2d_grad_weight(x, gy, w_shape, stride, padding):
    """dL/dw from dL/dy.  x (N, C, H, W), gy (N, O, OH, OW) -> (O, C, kH, kW).

    dL/dw[o, c, i, j] = sum_{n, p, q} gy[n, o, p, q] x_padded[n, c, p*sh + i, q*sw + j].
    """
    o = w_shape[0]
    cols = im2col(x, w_shape[2:], stride, padding)  # (C*kH*kW, N*OH*OW)
    gy_rows = gy.transpose(1, 0, 2, 3).reshape(o, -1)  # (O, N*OH*OW)
    return (gy_rows @ cols.T).reshape(w_shape)
