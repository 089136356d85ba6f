"""Convolution kernels in NumPy: the readable reference every other backend is tested against.

Plain arrays in, plain arrays out; no autograd here. NCHW layout, weight (C_out, C_in, kH, kW),
stride and padding as (vertical, horizontal) pairs of ints. With
    y[n, o, p, q] = sum_{c, i, j} x_padded[n, c, p * sh + i, q * sw + j] * w[o, c, i, j]
the three kernels are
    conv2d              x, w  -> y         (the forward)
    conv2d_grad_input   gy, w -> gx        (dL/dx; also the forward of the transposed convolution)
    conv2d_grad_weight  x, gy -> gw        (dL/dw)
Each is one matrix product on an "im2col" matrix whose rows are the flattened input windows.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def output_size(size, kernel, stride, padding):
    """Output length of a convolution along one axis: floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x, padding):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def im2col(x, kernel, stride, padding):
    """The windows of x as rows of a matrix.

    x (N, C, H, W) -> (N * OH * OW, C * kH * kW), rows ordered (n, p, q), columns (c, i, j).
    """
    kh, kw = kernel
    sh, sw = stride
    windows = sliding_window_view(_pad(x, padding), (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw]  # (N, C, OH, OW, kH, kW), a view
    n, c, oh, ow = windows.shape[:4]
    # The reshape copies the windows into one contiguous matrix (what BLAS wants).
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)


def col2im(cols, x_shape, kernel, stride, padding):
    """The adjoint of im2col: add every window's row back onto the pixels it was read from.

    cols (N * OH * OW, C * kH * kW) -> (N, C, H, W). One vectorised add per kernel offset (i, j).
    """
    n, c, h, w = x_shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    oh = output_size(h, kh, sh, ph)
    ow = output_size(w, kw, sw, pw)
    cols = cols.reshape(n, oh, ow, c, kh, kw)
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # Offset (i, j) of window (p, q) reads pixel (p * sh + i, q * sw + j).
            rows = slice(i, i + sh * (oh - 1) + 1, sh)
            columns = slice(j, j + sw * (ow - 1) + 1, sw)
            padded[:, :, rows, columns] += cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(padded[:, :, ph:ph + h, pw:pw + w])


def conv2d(x, w, stride, padding):
    """y = x * w.  x (N, C, H, W), w (O, C, kH, kW) -> y (N, O, OH, OW)."""
    n = x.shape[0]
    o, _, kh, kw = w.shape
    oh = output_size(x.shape[2], kh, stride[0], padding[0])
    ow = output_size(x.shape[3], kw, stride[1], padding[1])
    cols = im2col(x, (kh, kw), stride, padding)  # (N*OH*OW, C*kH*kW)
    y = cols @ w.reshape(o, -1).T  # (N*OH*OW, O)
    return np.ascontiguousarray(y.reshape(n, oh, ow, o).transpose(0, 3, 1, 2))


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    """dL/dx from dL/dy.  gy (N, O, OH, OW), w (O, C, kH, kW), x_shape (N, C, H, W) -> (N, C, H, W).

    dL/dx[n, c, h, v] = sum over (o, p, q, i, j) with p*sh + i = h + ph, q*sw + j = v + pw of
    gy[n, o, p, q] w[o, c, i, j]. x_shape is needed because with stride > 1 several input sizes
    give the same output size.
    """
    n, o, oh, ow = gy.shape
    kh, kw = w.shape[2:]
    gy_rows = gy.transpose(0, 2, 3, 1).reshape(n * oh * ow, o)
    cols = gy_rows @ w.reshape(o, -1)  # (N*OH*OW, C*kH*kW)
    return col2im(cols, x_shape, (kh, kw), stride, padding)


def conv2d_grad_weight(x, gy, w_shape, stride, padding):
    """dL/dw from dL/dy.  x (N, C, H, W), gy (N, O, OH, OW) -> (O, C, kH, kW).

    dL/dw[o, c, i, j] = sum_{n, p, q} gy[n, o, p, q] x_padded[n, c, p*sh + i, q*sw + j].
    """
    o = w_shape[0]
    cols = im2col(x, w_shape[2:], stride, padding)  # (N*OH*OW, C*kH*kW)
    gy_rows = gy.transpose(1, 0, 2, 3).reshape(o, -1)  # (O, N*OH*OW)
    return (gy_rows @ cols).reshape(w_shape)
