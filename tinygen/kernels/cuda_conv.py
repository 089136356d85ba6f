"""Convolution kernels for NVIDIA GPUs with numba.cuda: each is one tiled "implicit GEMM".

Same maths, layout and signatures as numpy_conv.py (read that first). There a convolution is one
matrix product with the im2col matrix, whose columns are the flattened input windows:
    y (O x N*OH*OW) = w (O x C*kH*kW) . cols (C*kH*kW x N*OH*OW)
    cols[(c, i, j), (n, p, q)] = x[n, c, p*sh + i - ph, q*sw + j - pw], or 0 in the zero padding.
On a GPU we never build cols: it holds every pixel up to kH*kW times, and writing it to global
memory only to read it back spends memory and bandwidth that the product does not need. Instead
the matrix product asks for an entry of cols when it needs one, and that entry is read from x on
the spot: the im2col matrix is only "implicit". The three kernels are three such products:
    forward       Y  (O x N*OH*OW) = W   (O x C*kH*kW) . cols
    grad_weight   GW (O x C*kH*kW) = GY  (O x N*OH*OW) . cols^T
    grad_input    GX (C x N*H*W)   = W^T (C x O*kH*kW) . G
where G is the transposed convolution written as a gather,
    G[(o, i, j), (n, h, v)] = gy[n, o, (h + ph - i) / sh, (v + pw - j) / sw]
when both divisions are exact and land inside gy, else 0: each input pixel collects the outputs
its windows fed, so every output element is written by one thread, with no atomics and no races.

All three run the same tiled matrix product, out (M x P) = A (M x K) . B (K x P), and differ only
in how they read an entry of A or B (from which array, with which index arithmetic) and where they
write an entry of out. The tiling is the textbook one (CUDA C++ Programming Guide, "Shared Memory"):
  * a block of TILE x TILE threads owns a TILE x TILE tile of out, one element per thread;
  * it walks along K in steps of TILE. At each step every thread copies one entry of A and one of
    B into two TILE x TILE tiles in shared memory (fast on-chip memory that the block shares), all
    threads wait (cuda.syncthreads), and each thread adds the TILE products of its row of the A
    tile with its column of the B tile to a running sum kept in a register;
  * at the end each thread writes its one sum to global memory, once.
Out-of-range entries (tiles sticking out past M, K or P) are loaded as 0, so they add nothing.

Where the arrays are. Each function takes host arrays (NumPy) or device arrays (CuPy arrays: they
have __cuda_array_interface__ and NumPy's __array_function__), both inputs on the same side, and
returns its result on that side. Device arrays are used where they are, with no copies: the result
is allocated with np.empty(..., like=x), which NumPy hands to CuPy when x is a CuPy array, and
numba.cuda reads and writes CuPy arrays through their __cuda_array_interface__. Host arrays
(TINYGEN_BACKEND=cuda with tensors on the CPU) are copied to the GPU and the result back at every
call, which for small layers can cost more than the kernel; under numba's CUDA simulator (which
runs on the CPU) they are given to the kernels as they are.

Two methods for device arrays, chosen by the environment variable TINYGEN_GPU_CONV or
use_conv_method(name):
    implicit_gemm   the tiled kernels above: no window matrix in memory, a product written here.
    im2col          numpy_conv.py's functions, run on the device arrays themselves: that NumPy code,
                    given CuPy arrays, runs as CuPy through NumPy's dispatch protocols, so the
                    im2col matrix is built in GPU memory (each pixel up to kH*kW times) and the
                    product is one cuBLAS call.
Which of the two is faster on a real GPU is still to be measured by bench/gpu_check.sh: the default,
im2col, is provisional. Host arrays always take implicit_gemm, the teaching path.

numba compiles a kernel on first use for each dtype it meets (float32, float64); shared tiles take
their dtype from the output array.
"""
import math
import os

import numpy as np
from numba import config, cuda

from . import numpy_conv
from .cuda_fused import numba_view  # a device array as numba sees it, without a GPU-wide wait
from .cuda_simulator import make_shared_arrays_thread_safe
from .sizes import output_size

make_shared_arrays_thread_safe()  # numba's simulator races on shared arrays (see that module)

TILE = 16  # blocks of TILE x TILE = 256 threads; two tiles of 1 KiB (float32) in shared memory

CONV_METHODS = ("im2col", "implicit_gemm")  # how device arrays are convolved (see above)


def use_conv_method(name):
    """Convolve device arrays with method `name` from now on: "im2col" or "implicit_gemm"."""
    global conv_method
    if name not in CONV_METHODS:
        raise ValueError(f"unknown GPU convolution method {name!r} (TINYGEN_GPU_CONV); "
                         f"choose one of {', '.join(CONV_METHODS)}")
    conv_method = name


conv_method = os.environ.get("TINYGEN_GPU_CONV") or "im2col"  # the method in use
use_conv_method(conv_method)  # a ValueError here for a misspelt TINYGEN_GPU_CONV


def _on_device(a):
    """True for an array in GPU memory (a CuPy array, ...), False for a NumPy array."""
    return hasattr(a, "__cuda_array_interface__")


def _im2col_on_device(first):
    """True when a call goes to numpy_conv: its input is on the device and im2col is chosen."""
    return conv_method == "im2col" and _on_device(first)


# ---- index arithmetic shared by the readers ---------------------------------------------------

@cuda.jit(device=True)
def _unflatten(index, middle, last):
    """The row-major flat index of a (?, middle, last) block -> its three coordinates."""
    return index // (middle * last), (index // last) % middle, index % last


@cuda.jit(device=True)
def _window_entry(x, k, col, kernel, out_size, stride, padding):
    """cols[k, col] = x[n, c, p*sh + i - ph, q*sw + j - pw], k = (c, i, j), col = (n, p, q); 0 in
    the zero padding. The im2col entry, read straight from the image."""
    c, i, j = _unflatten(k, kernel[0], kernel[1])
    n, p, q = _unflatten(col, out_size[0], out_size[1])
    r = p * stride[0] + i - padding[0]
    s = q * stride[1] + j - padding[1]
    if 0 <= r < x.shape[2] and 0 <= s < x.shape[3]:
        return x[n, c, r, s]
    return x.dtype.type(0)


# ---- how each product reads A and B and writes out ---------------------------------------------
# Every reader takes (first input, second input, output, row, column, stride, padding), so that
# one kernel can call any of them; each uses only what it needs.

@cuda.jit(device=True)
def _forward_a(x, w, y, o, k, stride, padding):
    """W[o, k] = w[o, c, i, j], k = (c, i, j): the weight as an O x C*kH*kW matrix."""
    c, i, j = _unflatten(k, w.shape[2], w.shape[3])
    return w[o, c, i, j]


@cuda.jit(device=True)
def _forward_b(x, w, y, k, col, stride, padding):
    """cols[k, col], col = (n, p, q) runs over the output pixels."""
    return _window_entry(x, k, col, (w.shape[2], w.shape[3]), (y.shape[2], y.shape[3]),
                         stride, padding)


@cuda.jit(device=True)
def _write_channel_major(out, channel, col, value):
    """out[n, channel, h, v] = value, col = (n, h, v): NCHW out seen as a C x N*H*W matrix."""
    n, h, v = _unflatten(col, out.shape[2], out.shape[3])
    out[n, channel, h, v] = value


@cuda.jit(device=True)
def _grad_weight_a(x, gy, gw, o, t, stride, padding):
    """GY[o, t] = gy[n, o, p, q], t = (n, p, q): the output gradient as an O x N*OH*OW matrix."""
    n, p, q = _unflatten(t, gy.shape[2], gy.shape[3])
    return gy[n, o, p, q]


@cuda.jit(device=True)
def _grad_weight_b(x, gy, gw, t, k, stride, padding):
    """cols^T[t, k] = cols[k, t]: t = (n, p, q) runs over output pixels, k = (c, i, j)."""
    return _window_entry(x, k, t, (gw.shape[2], gw.shape[3]), (gy.shape[2], gy.shape[3]),
                         stride, padding)


@cuda.jit(device=True)
def _write_weight(gw, o, k, value):
    """gw[o, c, i, j] = value, k = (c, i, j)."""
    c, i, j = _unflatten(k, gw.shape[2], gw.shape[3])
    gw[o, c, i, j] = value


@cuda.jit(device=True)
def _grad_input_a(gy, w, gx, c, k, stride, padding):
    """W^T[c, k] = w[o, c, i, j], k = (o, i, j): the weight as a C x O*kH*kW matrix."""
    o, i, j = _unflatten(k, w.shape[2], w.shape[3])
    return w[o, c, i, j]


@cuda.jit(device=True)
def _grad_input_b(gy, w, gx, k, col, stride, padding):
    """G[k, col] = gy[n, o, p, q] where p*sh + i = h + ph and q*sw + j = v + pw, k = (o, i, j),
    col = (n, h, v); 0 where no output window put kernel offset (i, j) on pixel (h, v)."""
    o, i, j = _unflatten(k, w.shape[2], w.shape[3])
    n, h, v = _unflatten(col, gx.shape[2], gx.shape[3])
    r = h + padding[0] - i  # = p * sh
    s = v + padding[1] - j  # = q * sw
    if r >= 0 and s >= 0 and r % stride[0] == 0 and s % stride[1] == 0:
        p = r // stride[0]
        q = s // stride[1]
        if p < gy.shape[2] and q < gy.shape[3]:
            return gy[n, o, p, q]
    return gy.dtype.type(0)


# ---- the one tiled matrix product ---------------------------------------------------------------

def _implicit_gemm(read_a, read_b, write):
    """A kernel for out (M x P) = A (M x K) . B (K x P), where A, B and out exist only through
    read_a(first, second, out, m, k, ...), read_b(first, second, out, k, p, ...) and
    write(out, m, p, value). Launch it on TILE x TILE blocks covering the M x P output."""

    @cuda.jit
    def kernel(first, second, out, stride, padding, sizes):
        m_size, k_size, p_size = sizes
        a_tile = cuda.shared.array((TILE, TILE), out.dtype)
        b_tile = cuda.shared.array((TILE, TILE), out.dtype)
        ty = cuda.threadIdx.y
        tx = cuda.threadIdx.x  # x runs fastest across threads: neighbours touch neighbouring pixels
        row = cuda.blockIdx.y * TILE + ty  # this thread's output element out[row, col]
        col = cuda.blockIdx.x * TILE + tx
        total = out.dtype.type(0)
        for k0 in range(0, k_size, TILE):
            # Each thread fetches one entry of each tile from global memory: A[row, k0 + tx] and
            # B[k0 + ty, col]; entries past the edges are 0.
            if row < m_size and k0 + tx < k_size:
                a_tile[ty, tx] = read_a(first, second, out, row, k0 + tx, stride, padding)
            else:
                a_tile[ty, tx] = 0
            if k0 + ty < k_size and col < p_size:
                b_tile[ty, tx] = read_b(first, second, out, k0 + ty, col, stride, padding)
            else:
                b_tile[ty, tx] = 0
            cuda.syncthreads()  # both tiles complete before anyone reads them
            # Shared memory is where the saving is: each entry fetched above is read here by the
            # TILE threads of its row (A) or column (B), so global memory is read TILE times
            # less than by a thread that fetched all K entries of its row and column itself.
            for t in range(TILE):
                total += a_tile[ty, t] * b_tile[t, tx]
            cuda.syncthreads()  # everyone done reading before the next step overwrites the tiles
        if row < m_size and col < p_size:
            write(out, row, col, total)

    return kernel


_forward = _implicit_gemm(_forward_a, _forward_b, _write_channel_major)
_grad_weight = _implicit_gemm(_grad_weight_a, _grad_weight_b, _write_weight)
_grad_input = _implicit_gemm(_grad_input_a, _grad_input_b, _write_channel_major)


def _launch(kernel, first, second, out_shape, stride, padding, sizes):
    """Run kernel on a grid of tiles covering the M x P output (sizes = (M, K, P)); -> the output.

    Device arrays (and host arrays in the simulator) go to the kernel as they are and the output is
    made beside them; host arrays on a real GPU are copied there, and the output back."""
    dtype = np.result_type(first.dtype, second.dtype)
    if math.prod(out_shape) == 0:
        return np.zeros(out_shape, dtype=dtype, like=first)
    m_size, _, p_size = sizes
    grid = (math.ceil(p_size / TILE), math.ceil(m_size / TILE))  # (columns, rows) of tiles
    stride = (int(stride[0]), int(stride[1]))
    padding = (int(padding[0]), int(padding[1]))
    if _on_device(first) or config.ENABLE_CUDASIM:
        out = np.empty(out_shape, dtype=dtype, like=first)
        # like=: a contiguous copy, when one is needed, stays on the device
        kernel[grid, (TILE, TILE)](numba_view(np.ascontiguousarray(first, like=first)),
                                   numba_view(np.ascontiguousarray(second, like=second)),
                                   numba_view(out), stride, padding, sizes)
        return out
    out = cuda.device_array(out_shape, dtype=dtype)
    kernel[grid, (TILE, TILE)](
        cuda.to_device(np.ascontiguousarray(first)), cuda.to_device(np.ascontiguousarray(second)),
        out, stride, padding, sizes,
    )
    return out.copy_to_host()


def conv2d(x, w, stride, padding):
    """y = x * w.  x (N, C, H, W), w (O, C, kH, kW) -> y (N, O, OH, OW)."""
    if _im2col_on_device(x):
        return numpy_conv.conv2d(x, w, stride, padding)
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape
    oh = output_size(h, kh, stride[0], padding[0])
    ow = output_size(width, kw, stride[1], padding[1])
    sizes = (o, c * kh * kw, n * oh * ow)  # Y (O x N*OH*OW) = W (O x C*kH*kW) . cols
    return _launch(_forward, x, w, (n, o, oh, ow), stride, padding, sizes)


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    """dL/dx from dL/dy.  gy (N, O, OH, OW), w (O, C, kH, kW), x_shape (N, C, H, W) -> x_shape."""
    if _im2col_on_device(gy):
        return numpy_conv.conv2d_grad_input(gy, w, x_shape, stride, padding)
    n, c, h, width = x_shape
    o, _, kh, kw = w.shape
    sizes = (c, o * kh * kw, n * h * width)  # GX (C x N*H*W) = W^T (C x O*kH*kW) . G
    return _launch(_grad_input, gy, w, tuple(x_shape), stride, padding, sizes)


def conv2d_grad_weight(x, gy, w_shape, stride, padding):
    """dL/dw from dL/dy.  x (N, C, H, W), gy (N, O, OH, OW) -> w_shape (O, C, kH, kW)."""
    if _im2col_on_device(x):
        return numpy_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding)
    n, o, oh, ow = gy.shape
    _, c, kh, kw = w_shape
    sizes = (o, n * oh * ow, c * kh * kw)  # GW (O x C*kH*kW) = GY (O x N*OH*OW) . cols^T
    return _launch(_grad_weight, x, gy, tuple(w_shape), stride, padding, sizes)


# The fused batch-norm and leaky-relu kernels on the GPU: tinygen/ops/fused.py looks for these.
from .cuda_fused import (  # noqa: E402, F401
    batch_norm_train,
    batch_norm_train_backward,
    leaky_relu,
    leaky_relu_backward,
    scale_shift,
)
