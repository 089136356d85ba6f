"""Convolution kernels for the CPU with Numba: channels-last window matrices around BLAS products.

Same maths and signatures as numpy_conv.py (read that first); NCHW arrays in and out. What differs
is the layout inside. A convolution is one matrix product between the weight and a matrix of input
windows; BLAS does the product near the machine's peak, so the time to win is in building that
matrix and in scattering the input gradient back, which in NumPy's channel-first layout cost as
much as the product itself. Here the input is moved once to a zero-padded channels-last copy
    xp[n, h, w, c]       (N, H + 2 ph, W + 2 pw, C)
and the window matrix has one row per output pixel (n, p, q) and one column per (i, j, c):
    cols[(n, p, q), (i, j, c)] = xp[n, p*sh + i, q*sw + j, c]       (N*OH*OW, kH*kW*C)
so every window row is kH runs of kW*C contiguous floats (one block copy each), and the
input-gradient's scatter-add moves the same blocks back. With the weight as
W[o, (i, j, c)] = w[o, c, i, j] the three kernels are three products:
    conv2d               y_cf  = W     @ cols^T     (O, N*OH*OW), then planes copied to NCHW
    conv2d_grad_input    cols  = gy_cl @ W          then added back into the image (col2im)
    conv2d_grad_weight   W'    = gy_cf @ cols       (O, kH*kW*C), then reordered to (O, C, kH, kW)
where gy_cl[(n, p, q), o] = gy[n, o, p, q] is gy moved channels-last and gy_cf[o, (n, p, q)] the
same values channel-first: both are copies of gy, made in one parallel pass, and much smaller
than the window matrix. cols^T is not a copy: NumPy hands it to BLAS with a transpose flag.

The loops are parallel over images or planes, so that no two threads write the same element (the
scatter-add included: each image's gradient belongs to one thread). The padded channels-last copy
of an image lives only inside the task that uses it (tens of KB: it stays in the core's cache).
The window matrix and the copies of gy live in workspace buffers reused from call to call
(allocating ~10 MB per call costs page faults every time); what a kernel returns is always a
fresh array.

Compiled on first use with cache=True, so a later process loads the machine code from disk.
Nothing compiles at import.
"""
import os
import threading

import numba
import numpy as np
from numba import njit, prange

# Numba's default OpenMP thread pool spins after each parallel loop, and so do OpenBLAS's threads
# after each product: alternating the two on a laptop's few cores, each call waits for the other
# pool to yield (bench/conv.py measured 2.5x slower DCGAN steps). The workqueue pool sleeps at
# once. A threading layer the user chose (NUMBA_THREADING_LAYER) is left alone.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

from ..threads import numba_thread_count  # noqa: E402
from . import numpy_conv  # noqa: E402  (after the threading layer is chosen)
from .sizes import output_size  # noqa: E402

# OMP_NUM_THREADS caps numba's threads too, unless NUMBA_NUM_THREADS says otherwise (threads.py).
# Set only when it lowers the count: setting starts numba's thread pool, otherwise left to the
# first parallel loop.
if numba_thread_count(numba.config.NUMBA_NUM_THREADS) < numba.config.NUMBA_NUM_THREADS:
    numba.set_num_threads(numba_thread_count(numba.config.NUMBA_NUM_THREADS))

# Layers whose window row is short (C*kH*kW below this: one input channel and a 4x4 kernel, as in
# the DCGAN's first and last layers) run NumPy's channel-first kernels. With so few columns the
# product is cheap and the time is all data movement, where NumPy's kH*kW whole-batch strided
# copies beat row-by-row channels-last copies of kW*C floats (bench/conv_thin.py measured the
# crossing point; see ARCHITECTURE.md, which also tells of direct loops tried for them).
THIN_WINDOW = 128


# ---------------------------------------------------------------------------------------------
# Data movement: the parallel loops. Each writes every element of its output.
# ---------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _to_channels_last(a, out):
    """out[n, h, w, c] = a[n, c, h, w]: NCHW -> NHWC, one image per task."""
    n, c, h, w = a.shape
    for b in prange(n):
        for r in range(h):
            for col in range(w):
                for ch in range(c):
                    out[b, r, col, ch] = a[b, ch, r, col]


@njit(parallel=True, cache=True)
def _windows(x, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    """cols[(n, p, q), (i, j, c)] = xp[n, p*sh + i, q*sw + j, c]: the window matrix, where xp is
    x (N, C, H, W) zero-padded and channels-last.

    One task per image: it first copies its image into a padded channels-last buffer of its own
    (tens of KB, so it stays in the core's cache), in which a window's row i is one contiguous
    run of kW*C floats, then copies those runs into the image's rows of cols."""
    n, c, h, w = x.shape
    run = kw * c  # one window row: kw pixels of c channels
    for b in prange(n):
        xp = np.zeros((h + 2 * ph, (w + 2 * pw) * c), dtype=x.dtype)  # (row, (column, channel))
        for r in range(h):
            for col in range(w):
                for ch in range(c):
                    xp[r + ph, (col + pw) * c + ch] = x[b, ch, r, col]
        for p in range(oh):
            for q in range(ow):
                row = (b * oh + p) * ow + q
                start = q * sw * c
                for i in range(kh):
                    cols[row, i * run:(i + 1) * run] = xp[p * sh + i, start:start + run]


@njit(parallel=True, cache=True)
def _add_windows_back(cols, kh, kw, sh, sw, ph, pw, oh, ow, gx):
    """gx[n, c, h, w] = sum of the entries cols[(n, p, q), (i, j, c)] with p*sh + i = h + ph and
    q*sw + j = w + pw: the adjoint of _windows (col2im), written to NCHW gx.

    One task per image, so that each image's pixels are added to by one thread only (no races):
    it adds its windows into a zeroed padded channels-last buffer of its own, then copies the
    inside of that buffer to gx in NCHW order."""
    n, c, h, w = gx.shape
    for b in prange(n):
        gxp = np.zeros((h + 2 * ph, w + 2 * pw, c), dtype=gx.dtype)
        for p in range(oh):
            for q in range(ow):
                row = (b * oh + p) * ow + q
                for i in range(kh):
                    r = p * sh + i
                    for j in range(kw):
                        col = q * sw + j
                        base = (i * kw + j) * c
                        for ch in range(c):
                            gxp[r, col, ch] += cols[row, base + ch]
        for r in range(h):
            for col in range(w):
                for ch in range(c):
                    gx[b, ch, r, col] = gxp[r + ph, col + pw, ch]


@njit(parallel=True, cache=True)
def _swap_first_axes(a, out):
    """out[j, i] = a[i, j] for 3-D a (A, B, P): e.g. NC(HW) <-> CN(HW), one plane at a time."""
    n0, n1 = a.shape[0], a.shape[1]
    for plane in prange(n0 * n1):
        i = plane // n1
        j = plane % n1
        out[j, i] = a[i, j]


# ---------------------------------------------------------------------------------------------
# Workspace: one growing buffer per role, per thread, reused across calls.
# ---------------------------------------------------------------------------------------------

_workspace = threading.local()


def _buffer(role, shape, dtype):
    """An uninitialised array of this shape and dtype, backed by the role's reusable buffer.

    The buffer grows to the largest request seen (its size is that of the biggest layer run so
    far) and is never returned to callers: kernels copy their results out of it."""
    size = int(np.prod(shape))
    key = (role, np.dtype(dtype).str)
    held = getattr(_workspace, "buffers", None)
    if held is None:
        held = _workspace.buffers = {}
    flat = held.get(key)
    if flat is None or flat.size < size:
        flat = held[key] = np.empty(size, dtype=dtype)
    return flat[:size].reshape(shape)


def clear_workspace():
    """Free the reusable buffers of this thread (they grow back on the next call), and the
    window matrices given back for reuse."""
    _workspace.buffers = {}
    with _returned_windows_lock:
        _returned_windows.clear()


# Window matrices that a convolution kept for its weight gradient (conv2d_keeping_windows) come
# back here once that gradient is computed (ops/conv.py gives them back when backward releases
# the op), and the next forward of the same size takes one instead of a fresh array: a fresh
# 12.8 MB matrix (D2 at batch 64) costs ~3,000 page faults at every step. At most
# RETURNED_WINDOWS_LIMIT_BYTES are held; beyond that a returned matrix is simply dropped.
RETURNED_WINDOWS_LIMIT_BYTES = 256 * 2**20
_returned_windows = []  # arrays no one else holds
_returned_windows_lock = threading.Lock()  # two threads never take the same one


def give_back_windows(cols):
    """Take back a window matrix from conv2d_keeping_windows once no one will read it again."""
    with _returned_windows_lock:
        held = sum(a.nbytes for a in _returned_windows)
        if held + cols.nbytes <= RETURNED_WINDOWS_LIMIT_BYTES:
            _returned_windows.append(cols)


def _fresh_windows(shape, dtype):
    """An array of the caller's own for a window matrix: a returned one of this shape and dtype
    if there is one, else a new one."""
    with _returned_windows_lock:
        for i, cols in enumerate(_returned_windows):
            if cols.shape == shape and cols.dtype == dtype:
                return _returned_windows.pop(i)
    return np.empty(shape, dtype)


# ---------------------------------------------------------------------------------------------
# The three kernels.
# ---------------------------------------------------------------------------------------------

def _channels_last_rows(a, role):
    """a (N, C, H, W) -> a workspace array (N*H*W, C): one row of C channels per pixel."""
    n, c, h, w = a.shape
    out = _buffer(role, (n, h, w, c), a.dtype)
    _to_channels_last(np.ascontiguousarray(a), out)
    return out.reshape(n * h * w, c)


def _window_matrix(x, kernel, stride, padding, fresh=False):
    """x (N, C, H, W) -> cols (N*OH*OW, kH*kW*C) (see the module docstring): a workspace array,
    or with fresh=True one of its own that the caller may keep."""
    n, c, h, w = x.shape
    kh, kw = kernel
    oh = output_size(h, kh, stride[0], padding[0])
    ow = output_size(w, kw, stride[1], padding[1])
    shape = (n * oh * ow, kh * kw * c)
    cols = _fresh_windows(shape, x.dtype) if fresh else _buffer("cols", shape, x.dtype)
    _windows(np.ascontiguousarray(x), kh, kw, stride[0], stride[1], padding[0], padding[1],
             oh, ow, cols)
    return cols


def _weight_matrix(w):
    """w (O, C, kH, kW) -> W (O, kH*kW*C), columns ordered (i, j, c) like the window matrix."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)


def _swapped(a, role=None):
    """(A, B, ...) -> contiguous (B, A, ...); a fresh array, or a workspace one when role is set."""
    a = np.ascontiguousarray(a)
    shape = (a.shape[1], a.shape[0]) + a.shape[2:]
    out = np.empty(shape, a.dtype) if role is None else _buffer(role, shape, a.dtype)
    _swap_first_axes(a.reshape(a.shape[0], a.shape[1], -1), out.reshape(shape[0], shape[1], -1))
    return out


def conv2d(x, w, stride, padding):
    """y = x * w.  x (N, C, H, W), w (O, C, kH, kW) -> y (N, O, OH, OW)."""
    o, c, kh, kw = w.shape
    if c * kh * kw < THIN_WINDOW:
        return numpy_conv.conv2d(x, w, stride, padding)
    cols = _window_matrix(x, (kh, kw), stride, padding)  # (N*OH*OW, kH*kW*C)
    return _conv2d_from_windows(cols, w, x.shape, stride, padding)


def _conv2d_from_windows(cols, w, x_shape, stride, padding):
    n = x_shape[0]
    o, _, kh, kw = w.shape
    oh = output_size(x_shape[2], kh, stride[0], padding[0])
    ow = output_size(x_shape[3], kw, stride[1], padding[1])
    y_channel_first = _weight_matrix(w) @ cols.T  # (O, N*OH*OW), BLAS
    return _swapped(y_channel_first.reshape(o, n, oh, ow))  # (N, O, OH, OW)


def conv2d_keeping_windows(x, w, stride, padding):
    """conv2d, and its window matrix for conv2d_grad_weight_from_windows: -> y, cols.

    cols is an array of the caller's own (N*OH*OW x kH*kW*C values), or None for a thin layer
    (NumPy's kernels run those). Saving it spares the weight gradient one pass over x."""
    c, kh, kw = w.shape[1:]
    if c * kh * kw < THIN_WINDOW:
        return numpy_conv.conv2d(x, w, stride, padding), None
    cols = _window_matrix(x, (kh, kw), stride, padding, fresh=True)
    return _conv2d_from_windows(cols, w, x.shape, stride, padding), cols


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    """dL/dx from dL/dy.  gy (N, O, OH, OW), w (O, C, kH, kW) -> (N, C, H, W)."""
    n, o, oh, ow = gy.shape
    c = x_shape[1]
    kh, kw = w.shape[2:]
    if c * kh * kw < THIN_WINDOW:
        return numpy_conv.conv2d_grad_input(gy, w, x_shape, stride, padding)
    ph, pw = padding
    dtype = np.result_type(gy.dtype, w.dtype)  # as NumPy's product would give
    gy_channels_last = _channels_last_rows(gy, "gy")  # (N*OH*OW, O)
    cols = _buffer("cols", (n * oh * ow, kh * kw * c), dtype)
    np.matmul(gy_channels_last, _weight_matrix(w), out=cols)  # (N*OH*OW, kH*kW*C), BLAS
    gx = np.empty(x_shape, dtype=dtype)
    _add_windows_back(cols, kh, kw, stride[0], stride[1], ph, pw, oh, ow, gx)
    return gx


def conv2d_grad_weight(x, gy, w_shape, stride, padding):
    """dL/dw from dL/dy.  x (N, C, H, W), gy (N, O, OH, OW) -> (O, C, kH, kW)."""
    o, c, kh, kw = w_shape
    if c * kh * kw < THIN_WINDOW:
        return numpy_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding)
    cols = _window_matrix(x, (kh, kw), stride, padding)  # (N*OH*OW, kH*kW*C)
    return conv2d_grad_weight_from_windows(cols, gy, w_shape)


def conv2d_grad_weight_from_windows(cols, gy, w_shape):
    """dL/dw from the window matrix of x (conv2d_keeping_windows) and dL/dy -> (O, C, kH, kW)."""
    o, c, kh, kw = w_shape
    gy_channel_first = _swapped(gy, "gy").reshape(o, -1)  # (O, N*OH*OW)
    gw = gy_channel_first @ cols  # (O, kH*kW*C), BLAS
    return np.ascontiguousarray(gw.reshape(o, kh, kw, c).transpose(0, 3, 1, 2))


# The numba backend's fused kernels: tinygen/ops/fused.py looks for the first five,
# tinygen.optim.Adam and tinygen.ema for the last two.
from .numba_fused import (  # noqa: E402, F401
    batch_norm_train,
    batch_norm_train_backward,
    leaky_relu,
    leaky_relu_backward,
    scale_shift,
)
from .numba_optim import adam_update, ema_update  # noqa: E402, F401
