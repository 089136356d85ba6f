"""Fused batch norm and leaky relu for NVIDIA GPUs with numba.cuda: numba_fused.py on the GPU.

Same maths, signatures and results as numba_fused.py (read that first). Arrays are seen as
(N, C, L): L = H*W for BatchNorm2d, 1 for (N, C). Statistics are accumulated in float64, whatever
the input dtype.

Leaky relu and scale_shift are elementwise: one thread per element of the flat array. A grid has
at most MAX_BLOCKS blocks of THREADS threads, so each thread walks the array in steps of the grid's
size G (a "grid-stride loop": thread k does elements k, k + G, k + 2G, ...), and any array size
works with any grid.

Batch norm needs a sum over each channel's M = N*L values: one block per channel (blockIdx.x is
the channel). Each of the block's THREADS threads first adds up its share of the channel in a
register (values t, t + THREADS, t + 2 THREADS, ... for thread t), and then the block adds up its
THREADS partial sums with a tree reduction in shared memory (on-chip memory the block shares):
    partial[t] = my sum                                      every thread fills its slot
    for half = THREADS/2, THREADS/4, ..., 1:
        partial[t] += partial[t + half]   for t < half       fold the upper half onto the lower
        cuda.syncthreads()                                   wait for the whole block
    partial[0] is the channel's sum
That is log2(THREADS) steps of parallel additions instead of THREADS - 1 additions one after the
other. The forward reduces twice, as numba_fused does: the sum of x for the mean, then the sum of
(x - mean)^2 for the variance (two passes, which avoid the cancellation of E[x^2] - mean^2); then
each thread writes its share of y. The backward reduces sum g and sum g x_hat, then writes gx.

Where the arrays are, as in cuda_conv.py: device arrays (CuPy) in, device arrays out, with no
copies (the outputs come from np.empty(..., like=x)); host arrays are copied to the GPU and the
results back at every call, except under numba's CUDA simulator, where they go to the kernels as
they are.
"""
import math

import numpy as np
from numba import config, cuda, float64

from .cuda_simulator import make_shared_arrays_thread_safe

make_shared_arrays_thread_safe()  # numba's simulator races on shared arrays (see that module)

THREADS = 256  # threads per block; a power of two, as the tree reduction halves it at each step
MAX_BLOCKS = 1024  # blocks per elementwise grid at most; larger arrays loop (grid-stride)


# ---- the block-wide sum --------------------------------------------------------------------------

@cuda.jit(device=True)
def _block_sum(partial, value):
    """The sum of `value` over the block's threads, returned to every thread: a tree reduction in
    the shared array `partial`, one slot per thread."""
    t = cuda.threadIdx.x
    partial[t] = value
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:
        if t < half:
            partial[t] += partial[t + half]  # fold the upper half onto the lower
        cuda.syncthreads()  # all of this step's sums are written before the next step reads them
        half //= 2
    total = partial[0]
    cuda.syncthreads()  # every thread has read the total before partial is filled again
    return total


@cuda.jit(device=True)
def _position(k, length):
    """The k-th value of a channel -> its (n, p) in the (N, C, L) array, p < L."""
    return k // length, k % length


# ---- batch norm: one block per channel -----------------------------------------------------------

@cuda.jit
def _train_forward(x, weight, bias, eps, y, mean, var):
    """Block c normalises channel c of x (N, C, L): y[:, c], mean[c], var[c]."""
    partial = cuda.shared.array(THREADS, float64)
    c = cuda.blockIdx.x
    t = cuda.threadIdx.x
    n, _, length = x.shape
    count = n * length
    mine = float64(0.0)
    for k in range(t, count, cuda.blockDim.x):
        b, p = _position(k, length)
        mine += x[b, c, p]
    mu = _block_sum(partial, mine) / count  # mean = sum x / M
    mine = float64(0.0)
    for k in range(t, count, cuda.blockDim.x):
        b, p = _position(k, length)
        d = x[b, c, p] - mu
        mine += d * d
    sigma2 = _block_sum(partial, mine) / count  # var = sum (x - mean)^2 / M, the biased one
    scale = weight[c] / math.sqrt(sigma2 + eps)  # y = (x - mean) / sqrt(var + eps) * w + b
    shift = bias[c] - mu * scale  # = x * scale + shift
    for k in range(t, count, cuda.blockDim.x):
        b, p = _position(k, length)
        y[b, c, p] = x[b, c, p] * scale + shift
    if t == 0:
        mean[c] = mu
        var[c] = sigma2


@cuda.jit
def _train_backward(g, x, mean, var, weight, eps, gx, gweight, gbias):
    """Block c: the gradients of channel c, gx[:, c], gweight[c], gbias[c]."""
    partial = cuda.shared.array(THREADS, float64)
    c = cuda.blockIdx.x
    t = cuda.threadIdx.x
    n, _, length = x.shape
    count = n * length
    mu = mean[c]
    inv_std = 1.0 / math.sqrt(var[c] + eps)
    my_g = float64(0.0)
    my_g_xhat = float64(0.0)  # x_hat = (x - mean) / sqrt(var + eps)
    for k in range(t, count, cuda.blockDim.x):
        b, p = _position(k, length)
        my_g += g[b, c, p]
        my_g_xhat += g[b, c, p] * (x[b, c, p] - mu) * inv_std
    sum_g = _block_sum(partial, my_g)  # gbias = sum g
    sum_g_xhat = _block_sum(partial, my_g_xhat)  # gweight = sum g x_hat
    scale = weight[c] * inv_std
    mean_g = sum_g / count
    mean_g_xhat = sum_g_xhat / count
    for k in range(t, count, cuda.blockDim.x):
        b, p = _position(k, length)
        x_hat = (x[b, c, p] - mu) * inv_std
        # gx = weight / sqrt(var + eps) * (g - mean(g) - x_hat mean(g x_hat))
        gx[b, c, p] = scale * (g[b, c, p] - mean_g - x_hat * mean_g_xhat)
    if t == 0:
        gweight[c] = sum_g_xhat
        gbias[c] = sum_g


# ---- elementwise: one thread per element, grid-stride -------------------------------------------

@cuda.jit
def _scale_shift(x, scale, shift, length, y):
    """y = x * scale[c] + shift[c] on the flat (N, C, L) arrays x and y; c = (k // L) % C."""
    for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = (k // length) % scale.shape[0]
        y[k] = x[k] * scale[c] + shift[c]


@cuda.jit
def _leaky_relu(x, negative_slope, y):
    """y = x where x > 0, negative_slope * x elsewhere; x and y flat."""
    for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[k] = x[k] if x[k] > 0 else negative_slope * x[k]


@cuda.jit
def _leaky_relu_backward(g, x, negative_slope, gx):
    """gx = g where x > 0, negative_slope * g elsewhere; all flat."""
    for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        gx[k] = g[k] if x[k] > 0 else negative_slope * g[k]


def _blocks(size):
    """Blocks of THREADS threads for an elementwise kernel over `size` elements: one thread per
    element, but no more than MAX_BLOCKS blocks (then each thread does several)."""
    return min(MAX_BLOCKS, math.ceil(size / THREADS))


# ---- where the arrays are ------------------------------------------------------------------------

def _on_device(a):
    """True for an array in GPU memory (a CuPy array, ...), False for a NumPy array."""
    return hasattr(a, "__cuda_array_interface__")


def _copies(x):
    """True when a call on x needs copies: x is a host array and the GPU is real."""
    return not _on_device(x) and not config.ENABLE_CUDASIM


def _as_ncl(a):
    """(N, C, ...) -> contiguous (N, C, L), where a is (like=: a copy of a device array stays
    there)."""
    a = np.ascontiguousarray(a, like=a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _flat(a):
    """a as a contiguous 1-d array, where a is."""
    return np.ascontiguousarray(a, like=a).reshape(-1)


def numba_view(a):
    """A device array as numba.cuda's view of the same memory, made without synchronizing the GPU.

    By the CUDA array interface's rule a consumer waits for the producer's stream before it uses
    an array; numba would then stop and wait for the GPU at every argument of every launch. CuPy
    and numba both queue their work on the one default stream, in the order it is given, so the
    wait buys nothing here (sync=False). Host arrays (in the simulator) stay as they are."""
    if _on_device(a) and not config.ENABLE_CUDASIM:
        return cuda.as_cuda_array(a, sync=False)
    return a


def _to_kernel(a, copies):
    """An input as a kernel takes it: copied to the GPU if `copies`, else where it is."""
    return cuda.to_device(a) if copies else numba_view(a)


def _new(shape, dtype, x, copies):
    """An output array: in GPU memory that _back copies to the host if `copies`, else beside x."""
    if copies:
        return cuda.device_array(shape, dtype=dtype)
    return np.empty(shape, dtype=dtype, like=x)


def _back(out, copies):
    """A kernel's output as the caller gets it: on the host if its inputs came from there."""
    return out.copy_to_host() if copies else out


def _batch_norm_outputs(x3, x, copies):
    """The three outputs of a batch-norm kernel: one shaped like x3 (N, C, L), two per channel."""
    channels = x3.shape[1]
    return (_new(x3.shape, x.dtype, x, copies), _new((channels,), x.dtype, x, copies),
            _new((channels,), x.dtype, x, copies))


# ---- the five kernels of tinygen.kernels.FusedKernels --------------------------------------------

def batch_norm_train(x, weight, bias, eps):
    """Normalise x (N, C, ...) with its batch statistics; -> y (like x), mean (C,), var (C,)."""
    copies = _copies(x)
    x3 = _as_ncl(x)
    y, mean, var = _batch_norm_outputs(x3, x, copies)
    if x3.size:
        weight, bias = weight.astype(x.dtype, copy=False), bias.astype(x.dtype, copy=False)
        _train_forward[x3.shape[1], THREADS](  # one block of THREADS threads per channel
            _to_kernel(x3, copies), _to_kernel(_flat(weight), copies),
            _to_kernel(_flat(bias), copies), float(eps),
            numba_view(y), numba_view(mean), numba_view(var))
    return _back(y, copies).reshape(x.shape), _back(mean, copies), _back(var, copies)


def batch_norm_train_backward(g, x, mean, var, weight, eps):
    """Gradients of batch_norm_train's y: g (like x) -> gx (like x), gweight (C,), gbias (C,)."""
    copies = _copies(x)
    x3 = _as_ncl(x)
    g3 = _as_ncl(g.astype(x.dtype, copy=False))
    gx, gweight, gbias = _batch_norm_outputs(x3, x, copies)
    if x3.size:
        mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
        weight = weight.astype(x.dtype, copy=False)
        _train_backward[x3.shape[1], THREADS](  # one block per channel
            _to_kernel(g3, copies), _to_kernel(x3, copies), _to_kernel(_flat(mean), copies),
            _to_kernel(_flat(var), copies), _to_kernel(_flat(weight), copies), float(eps),
            numba_view(gx), numba_view(gweight), numba_view(gbias))
    return _back(gx, copies).reshape(x.shape), _back(gweight, copies), _back(gbias, copies)


def scale_shift(x, scale, shift):
    """x (N, C, ...) * scale[c] + shift[c], in one pass."""
    copies = _copies(x)
    x3 = _as_ncl(x)
    y = _new((x3.size,), x.dtype, x, copies)
    if x3.size:
        scale, shift = scale.astype(x.dtype, copy=False), shift.astype(x.dtype, copy=False)
        _scale_shift[_blocks(x3.size), THREADS](
            _to_kernel(x3.reshape(-1), copies), _to_kernel(_flat(scale), copies),
            _to_kernel(_flat(shift), copies), x3.shape[2], numba_view(y))
    return _back(y, copies).reshape(x.shape)


def leaky_relu(x, negative_slope):
    """y = x where x > 0, negative_slope * x elsewhere (one pass; y is like x)."""
    copies = _copies(x)
    y = _new((x.size,), x.dtype, x, copies)
    if x.size:
        _leaky_relu[_blocks(x.size), THREADS](
            _to_kernel(_flat(x), copies), x.dtype.type(negative_slope), numba_view(y))
    return _back(y, copies).reshape(x.shape)


def leaky_relu_backward(g, x, negative_slope):
    """dL/dx of leaky_relu from dL/dy = g: g times the slope (1 where x > 0, else the negative
    slope)."""
    copies = _copies(x)
    gx = _new((x.size,), x.dtype, x, copies)
    if x.size:
        _leaky_relu_backward[_blocks(x.size), THREADS](
            _to_kernel(_flat(g.astype(x.dtype, copy=False)), copies),
            _to_kernel(_flat(x), copies), x.dtype.type(negative_slope),
            numba_view(gx))
    return _back(gx, copies).reshape(x.shape)
