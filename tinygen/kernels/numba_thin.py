"""Direct loops for thin convolutions: layers with few input channels (numba backend).

The DCGAN's first layer, Conv2d(1, 64, 4, 2, 1), and its last, ConvTranspose2d(64, 1, 4, 2, 1),
have a window of C*kH*kW = 16 values. For them a whole-batch window matrix is mostly data to
move, and the product behind it is tiny, so numba_conv.py's channels-last kernels lose to
NumPy's (bench/conv_thin.py), and NumPy's lose time too: their output leaves the product
channel-first, (O, N, OH, OW), and a strided copy puts it in NCHW order (issue 25's profile: a
quarter of the thin layers' time). Here each image is handled by one task, start to finish:

    cols_b[(c, i, j), (p, q)] = x_padded[b, c, p*sh + i, q*sw + j]     (C*kH*kW, OH*OW), in cache
    conv2d              y[b, o, :]  = sum_k  W[o, k] cols_b[k, :]            (NCHW at once)
    conv2d_grad_input   cols_b[k, :] = sum_o W[o, k] gy[b, o, :],  then added back onto gx[b]

with W[o, (c, i, j)] = w[o, c, i, j] (a reshape, no copy). The inner loops run along a row of
OH*OW output pixels, contiguous in memory, which LLVM vectorises. Images are independent, so the
loops are parallel over images and no two tasks write the same element.

The weight gradient, W'[o, k] = sum_b sum_t gy[b, o, t] cols_b[k, t], stays with NumPy's kernel
(numba_conv.py calls numpy_conv.conv2d_grad_weight for thin layers): one product of the whole
batch's window matrix, whose output (O, C*kH*kW) is small and needs no reordering. Two direct
loops written for it (partial sums per task, along OH*OW or along O) took 2.3-2.6 ms per call
in the DCGAN step at batch 64, against about 0.7 ms for NumPy's.
"""
import numpy as np
from numba import njit, prange

from .sizes import output_size


@njit(cache=True)
def _image_windows(x_b, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    """cols[(c, i, j), (p, q)] = x_b[c, p*sh + i - ph, q*sw + j - pw], 0 in the padding."""
    c, h, w = x_b.shape
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                k = (ci * kh + i) * kw + j
                for p in range(oh):
                    r = p * sh + i - ph
                    for q in range(ow):
                        s = q * sw + j - pw
                        inside = 0 <= r < h and 0 <= s < w
                        cols[k, p * ow + q] = x_b[ci, r, s] if inside else 0.0


@njit(cache=True)
def _add_image_windows(cols, kh, kw, sh, sw, ph, pw, oh, ow, gx_b):
    """The adjoint of _image_windows: gx_b = 0, then every window entry added onto its pixel."""
    c, h, w = gx_b.shape
    gx_b[...] = 0.0
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                k = (ci * kh + i) * kw + j
                for p in range(oh):
                    r = p * sh + i - ph
                    if 0 <= r < h:
                        for q in range(ow):
                            s = q * sw + j - pw
                            if 0 <= s < w:
                                gx_b[ci, r, s] += cols[k, p * ow + q]


@njit(parallel=True, cache=True, error_model="numpy")
def _conv2d(x, weights, kh, kw, sh, sw, ph, pw, oh, ow, y):
    """y (N, O, OH*OW) = x * w, one image per task; weights is W (O, C*kH*kW)."""
    o, window = weights.shape
    for b in prange(x.shape[0]):
        cols = np.empty((window, oh * ow), dtype=y.dtype)
        _image_windows(x[b], kh, kw, sh, sw, ph, pw, oh, ow, cols)
        for f in range(o):
            row = y[b, f]
            row[:] = 0.0
            for k in range(window):
                w_fk = weights[f, k]
                for t in range(oh * ow):
                    row[t] += w_fk * cols[k, t]


@njit(parallel=True, cache=True, error_model="numpy")
def _conv2d_grad_input(gy, weights, kh, kw, sh, sw, ph, pw, oh, ow, gx):
    """gx (N, C, H, W) from gy (N, O, OH*OW), one image per task; weights is W (O, C*kH*kW)."""
    o, window = weights.shape
    for b in prange(gy.shape[0]):
        cols = np.zeros((window, oh * ow), dtype=gx.dtype)
        for f in range(o):
            g_row = gy[b, f]
            for k in range(window):
                w_fk = weights[f, k]
                for t in range(oh * ow):
                    cols[k, t] += w_fk * g_row[t]
        _add_image_windows(cols, kh, kw, sh, sw, ph, pw, oh, ow, gx[b])


# ---- the two kernels, with numpy_conv's signatures --------------------------------------------
def conv2d(x, w, stride, padding):
    """y = x * w.  x (N, C, H, W), w (O, C, kH, kW) -> y (N, O, OH, OW)."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    dtype = np.result_type(x.dtype, w.dtype)  # as NumPy's product would give
    oh, ow = output_size(h, kh, stride[0], padding[0]), output_size(wd, kw, stride[1], padding[1])
    y = np.empty((n, o, oh * ow), dtype=dtype)
    _conv2d(_ready(x, dtype), _ready(w, dtype).reshape(o, -1), kh, kw, *stride, *padding,
            oh, ow, y)
    return y.reshape(n, o, oh, ow)


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    """dL/dx from dL/dy.  gy (N, O, OH, OW), w (O, C, kH, kW) -> (N, C, H, W)."""
    n, o, oh, ow = gy.shape
    kh, kw = w.shape[2:]
    dtype = np.result_type(gy.dtype, w.dtype)
    gx = np.empty(x_shape, dtype=dtype)
    _conv2d_grad_input(_ready(gy, dtype).reshape(n, o, -1), _ready(w, dtype).reshape(o, -1),
                       kh, kw, *stride, *padding, oh, ow, gx)
    return gx


def _ready(a, dtype):
    """a as a C-contiguous array of dtype (no copy when it already is one)."""
    return np.ascontiguousarray(a, dtype=dtype)
