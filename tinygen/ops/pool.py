"""Average pooling and nearest-neighbour upsampling: two linear ops, each the other's gradient.

Both are built on one pair of window ops on (N, C, H, W) arrays, for a kH x kW window moved s
pixels at a time:
    window_sum(x)      y[n, c, i, j] = the sum of x over the window whose corner is (s i, s j)
    window_spread(g)   its adjoint: each pixel of the (H, W) picture receives the sum of g over
                       the windows that contain it
avg_pool2d(x, k)          = window_sum(x) / (kH kW)
upsample_nearest(x, f)    = window_spread(x) with k = s = f: the windows tile the output without
                            overlapping, so every value is copied into its own f x f block

A linear map's gradient is its adjoint applied to the incoming gradient, so the backward of
window_sum is window_spread and the other way round. Both backwards are written with these ops on
Tensors, so the gradients can be differentiated again (gradients of gradients, to any order):
    upsample's backward  = a sum pool of the gradient (each block's gradients added up)
    avg_pool's backward  = the gradient spread back over each window, divided by kH kW
                           (for stride = kernel_size: upsampled, then divided)
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .pairs import positive_pair, whole_factor_pair


def pooled_size(size, kernel_size, stride):
    """Positions of a window of kernel_size moved stride at a time along size pixels (floor)."""
    return (size - kernel_size) // stride + 1


def _window_slice(offset, stride, count):
    """The pixels at offset, offset + stride, ..., count of them: where one window element sits
    in every window along an axis."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _window_offsets(kernel_size, stride, pooled):
    """For every element (a, b) of the window, the (rows, columns) slices of the picture that
    it covers in all the windows, in the order of the windows."""
    (kh, kw), (sh, sw), (oh, ow) = kernel_size, stride, pooled
    return [(_window_slice(a, sh, oh), _window_slice(b, sw, ow))
            for a in range(kh) for b in range(kw)]


def _as_blocks(shape, kernel_size, pooled):
    """(N, C, OH kH, OW kW) seen as (N, C, OH, kH, OW, kW): the windows when they tile the
    picture (stride = kernel_size), each window a block of its own."""
    (kh, kw), (oh, ow) = kernel_size, pooled
    return shape[:2] + (oh, kh, ow, kw)


class WindowSum(Function):
    """y = the sum of x over each kH x kW window (windows stride apart): sum pooling."""

    def forward(self, x, kernel_size, stride):
        self.kernel_size, self.stride = kernel_size, stride
        self.size = x.shape[2:]
        pooled = tuple(pooled_size(n, k, s) for n, k, s in zip(self.size, kernel_size, stride))
        if stride == kernel_size:  # windows side by side: a reshape and one sum
            covered = x[:, :, :pooled[0] * kernel_size[0], :pooled[1] * kernel_size[1]]
            return covered.reshape(_as_blocks(x.shape, kernel_size, pooled)).sum(axis=(3, 5))
        out = None
        for rows, cols in _window_offsets(kernel_size, stride, pooled):
            part = x[:, :, rows, cols]  # one element of every window: (N, C, OH, OW)
            out = part.copy() if out is None else out + part
        return out

    def backward(self, grad):
        return WindowSpread.apply(grad, kernel_size=self.kernel_size, stride=self.stride,
                                  size=self.size)


class WindowSpread(Function):
    """out (N, C, *size): every window receives g's value at its position (overlaps add up).
    The adjoint of WindowSum; with kernel_size = stride it copies each value into a block."""

    def forward(self, g, kernel_size, stride, size):
        self.kernel_size, self.stride = kernel_size, stride
        out = np.zeros(g.shape[:2] + tuple(size), dtype=g.dtype, like=g)  # on g's device
        if stride == kernel_size:  # windows side by side: every value copied into its block
            (kh, kw), (oh, ow) = kernel_size, g.shape[2:]
            blocks = np.broadcast_to(g[:, :, :, None, :, None],
                                     _as_blocks(g.shape, kernel_size, (oh, ow)))
            out[:, :, :oh * kh, :ow * kw] = blocks.reshape(g.shape[:2] + (oh * kh, ow * kw))
            return out
        for rows, cols in _window_offsets(kernel_size, stride, g.shape[2:]):
            out[:, :, rows, cols] += g
        return out

    def backward(self, grad):
        return WindowSum.apply(grad, kernel_size=self.kernel_size, stride=self.stride)


# ---- the functions tinygen.nn.functional exports -------------------------------------------------
def _check_images(x, op_name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op_name}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op_name}: input must be 4-D (N, C, H, W), got shape {x.shape}")


def avg_pool2d(x, kernel_size, stride=None):
    """The mean of x over each kH x kW window, windows stride apart (PyTorch's avg_pool2d, no
    padding).

    x (N, C, H, W) -> (N, C, OH, OW), OH = floor((H - kH) / stride) + 1: rows and columns that
    no window reaches are left out (and get zero gradient). stride defaults to kernel_size, so
    avg_pool2d(x, 2) halves an image, each output pixel the mean of a 2 x 2 block.
    """
    op = "avg_pool2d"
    _check_images(x, op)
    kernel_size = positive_pair(kernel_size, "kernel_size", op)
    stride = kernel_size if stride is None else positive_pair(stride, "stride", op)
    if x.shape[2] < kernel_size[0] or x.shape[3] < kernel_size[1]:
        raise ValueError(f"{op}: kernel_size {kernel_size} is larger than the input's "
                         f"{x.shape[2]} x {x.shape[3]} pixels (input shape {x.shape})")
    total = WindowSum.apply(x, kernel_size=kernel_size, stride=stride)
    return total * (1.0 / (kernel_size[0] * kernel_size[1]))


def upsample_nearest(x, scale_factor):
    """Nearest-neighbour upsampling by a whole factor: each pixel becomes an f x f block.

    x (N, C, H, W) -> (N, C, f H, f W) (a pair (fH, fW) scales the two axes differently). The
    same as PyTorch's F.interpolate(x, scale_factor=f, mode="nearest") for whole f.
    """
    op = "upsample_nearest"
    _check_images(x, op)
    factor = whole_factor_pair(scale_factor, op)
    size = (x.shape[2] * factor[0], x.shape[3] * factor[1])
    return WindowSpread.apply(x, kernel_size=factor, stride=factor, size=size)
