"""2-D convolution and transposed convolution: one pair of ops, each the other's gradient.

Three kernels do all the work (in the backend tinygen.backend selects; see tinygen/kernels/):
    conv2d(x, w)                 y = x * w
    conv2d_grad_input(gy, w)     dL/dx   = the transposed convolution of gy with w
    conv2d_grad_weight(x, gy)    dL/dw
All three are bilinear, so the gradient of each is again one of the three. Writing every backward
with these ops (never with raw arrays) makes conv gradients differentiable to any order.
"""
from collections import namedtuple

from ..autograd import Function, is_grad_enabled
from ..backend import kernel
from ..kernels.sizes import output_size
from ..tensor import Tensor
from .elementwise import add_in_place
from .pairs import as_pair

ConvSettings = namedtuple("ConvSettings", "kernel_size stride padding output_padding")


def conv_settings(op_name, stride, padding, output_padding=0, kernel_size=1):
    """Check a convolution's settings and give them as pairs of ints: kernel_size and stride
    positive, padding non-negative, output_padding smaller than stride (for the transposed one).
    The layers call it when they are built, the functions on every call."""
    kernel_size = as_pair(kernel_size, "kernel_size", op_name)
    stride = as_pair(stride, "stride", op_name)
    padding = as_pair(padding, "padding", op_name)
    output_padding = as_pair(output_padding, "output_padding", op_name)
    if min(kernel_size) < 1:
        raise ValueError(f"{op_name}: kernel_size must be positive, got {kernel_size}")
    if min(stride) < 1:
        raise ValueError(f"{op_name}: stride must be positive, got {stride}")
    if output_padding[0] >= stride[0] or output_padding[1] >= stride[1]:
        raise ValueError(
            f"{op_name}: output_padding {output_padding} must be smaller than stride {stride}"
        )
    return ConvSettings(kernel_size, stride, padding, output_padding)


# A backend may also export conv2d_keeping_windows / conv2d_grad_weight_from_windows (numba does):
# the forward then keeps its window matrix of x for the weight gradient, as PyTorch saves tensors
# for backward, so that the gradient skips rebuilding it (bench/dcgan_step.py: see
# ARCHITECTURE.md). The matrix holds about kH*kW / (sH*sW) times as many values as x (4x for the
# DCGAN's 4x4 stride-2 layers); above this size it is not kept.
SAVED_WINDOWS_LIMIT_BYTES = 64 * 2**20


def _window_bytes(x, w, stride, padding):
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    oh = output_size(h, kh, stride[0], padding[0])
    ow = output_size(wd, kw, stride[1], padding[1])
    return n * oh * ow * c * kh * kw * x.itemsize


def _plus_bias(y, bias):
    """y + bias[c] for a fresh (N, C, H, W) output y of a kernel, in place where it can be."""
    return y if bias is None else add_in_place(y, bias.reshape(1, -1, 1, 1))


def _bias_gradient(grad):
    """dL/db of y = ... + b[c]: the gradient summed over the images and the pixels."""
    return grad.sum(axis=(0, 2, 3))


class Conv2d(Function):
    def forward(self, x, w, bias=None, *, stride, padding):
        self.stride, self.padding = stride, padding
        self.saved_windows = None  # or (the kernel that uses them, window matrix of x)
        self.give_back_windows = None  # and the backend's taker of spent windows, if it has one
        keeping_windows = kernel("conv2d_keeping_windows", x)  # optional: numba has it
        keeps = (keeping_windows is not None and is_grad_enabled() and self.needs_input_grad[1]
                 and _window_bytes(x, w, stride, padding) <= SAVED_WINDOWS_LIMIT_BYTES)
        if not keeps:
            return _plus_bias(kernel("conv2d", x)(x, w, stride, padding), bias)
        y, windows = keeping_windows(x, w, stride, padding)
        if windows is not None:  # None: a thin layer, which the backend ran without windows
            self.saved_windows = (kernel("conv2d_grad_weight_from_windows", x), windows)
            self.give_back_windows = kernel("give_back_windows", x)
        return _plus_bias(y, bias)

    def release(self):
        """After the backward: the window matrix goes back to the backend, which hands it to
        the next forward of the same size instead of allocating a new one."""
        saved, give_back = self.saved_windows, self.give_back_windows
        super().release()
        if saved is not None and give_back is not None:
            give_back(saved[1])

    def backward(self, grad):
        x, w = self.inputs[:2]
        # y = conv(x, w) + b:  dL/dx = conv_grad_input(dL/dy, w),  dL/dw = conv_grad_weight(x,
        # dL/dy),  dL/db = dL/dy summed over images and pixels
        grad_x = grad_w = grad_b = None
        if self.needs_input_grad[0]:
            grad_x = ConvGradInput.apply(grad, w, x_shape=x.shape, stride=self.stride,
                                         padding=self.padding)
        if self.needs_input_grad[1]:
            grad_w = ConvGradWeight.apply(x, grad, w_shape=w.shape, stride=self.stride,
                                          padding=self.padding, saved_windows=self.saved_windows)
        if len(self.inputs) == 3 and self.needs_input_grad[2]:
            grad_b = _bias_gradient(grad)
        return grad_x, grad_w, grad_b


class ConvGradInput(Function):
    """out = conv_grad_input(g, w) (+ b): the transposed convolution of g (shape of y) into
    x_shape; the bias, per output channel, only when it is a layer's forward."""

    def forward(self, g, w, bias=None, *, x_shape, stride, padding):
        self.stride, self.padding = stride, padding
        return _plus_bias(kernel("conv2d_grad_input", g)(g, w, x_shape, stride, padding), bias)

    def backward(self, grad):
        g, w = self.inputs[:2]
        # L = sum grad * out is bilinear in (g, w):  dL/dg = conv(grad, w),
        # dL/dw = conv_grad_weight(grad, g);  dL/db = grad summed over images and pixels
        grad_g = grad_w = grad_b = None
        if self.needs_input_grad[0]:
            grad_g = Conv2d.apply(grad, w, stride=self.stride, padding=self.padding)
        if self.needs_input_grad[1]:
            grad_w = ConvGradWeight.apply(grad, g, w_shape=w.shape, stride=self.stride,
                                          padding=self.padding)
        if len(self.inputs) == 3 and self.needs_input_grad[2]:
            grad_b = _bias_gradient(grad)
        return grad_g, grad_w, grad_b


class ConvGradWeight(Function):
    """out = conv_grad_weight(x, g): the correlation of x with g, shaped like the weight."""

    def forward(self, x, g, w_shape, stride, padding, saved_windows=None):
        self.stride, self.padding = stride, padding
        if saved_windows is not None:  # (its kernel, the window matrix of x) from the forward
            from_windows, windows = saved_windows
            return from_windows(windows, g, w_shape)
        return kernel("conv2d_grad_weight", x)(x, g, w_shape, stride, padding)

    def backward(self, grad):
        x, g = self.inputs
        # L = sum grad * out is bilinear in (x, g):  dL/dx = conv_grad_input(g, grad),
        # dL/dg = conv(x, grad)
        grad_x = grad_g = None
        if self.needs_input_grad[0]:
            grad_x = ConvGradInput.apply(g, grad, x_shape=x.shape, stride=self.stride,
                                         padding=self.padding)
        if self.needs_input_grad[1]:
            grad_g = Conv2d.apply(x, grad, stride=self.stride, padding=self.padding)
        return grad_x, grad_g


def _check_4d(name, t, op_name, layout):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op_name}: {name} must be a Tensor, got {type(t).__name__}")
    if t.ndim != 4:
        raise ValueError(f"{op_name}: {name} must be 4-D {layout}, got shape {t.shape}")


def _check_kernel(weight, op_name):
    if min(weight.shape) < 1:
        raise ValueError(f"{op_name}: weight has an empty dimension, shape {weight.shape}")


def _with_bias(inputs, bias, channels, op_name):
    """The op's inputs, with the bias (checked) when there is one."""
    if bias is None:
        return inputs
    if bias.shape != (channels,):
        raise ValueError(f"{op_name}: bias must have shape ({channels},), got {bias.shape}")
    return inputs + (bias,)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in PyTorch).

    x (N, C_in, H, W), weight (C_out, C_in, kH, kW), bias (C_out,) -> (N, C_out, OH, OW) with
    OH = floor((H + 2 padding - kH) / stride) + 1.
    """
    op = "conv2d"
    _check_4d("input", x, op, "(N, C, H, W)")
    _check_4d("weight", weight, op, "(C_out, C_in, kH, kW)")
    _check_kernel(weight, op)
    _, stride, padding, _ = conv_settings(op, stride, padding)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{op}: input has {x.shape[1]} channels but weight {weight.shape} expects "
            f"{weight.shape[1]} (input shape {x.shape})"
        )
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if padded[0] < weight.shape[2] or padded[1] < weight.shape[3]:
        raise ValueError(
            f"{op}: kernel {weight.shape[2:]} is larger than the padded input {padded} "
            f"(input shape {x.shape}, padding {padding})"
        )
    inputs = _with_bias((x, weight), bias, weight.shape[0], op)
    return Conv2d.apply(*inputs, stride=stride, padding=padding)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """2-D transposed convolution ("fractionally strided"), the gradient of conv2d w.r.t. its input.

    x (N, C_in, H, W), weight (C_in, C_out, kH, kW), bias (C_out,) -> (N, C_out, OH, OW) with
    OH = (H - 1) stride - 2 padding + kH + output_padding.
    """
    op = "conv_transpose2d"
    _check_4d("input", x, op, "(N, C, H, W)")
    _check_4d("weight", weight, op, "(C_in, C_out, kH, kW)")
    _check_kernel(weight, op)
    _, stride, padding, output_padding = conv_settings(op, stride, padding, output_padding)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(
            f"{op}: input has {x.shape[1]} channels but weight {weight.shape} expects "
            f"{weight.shape[0]} (input shape {x.shape})"
        )
    out_h = (x.shape[2] - 1) * stride[0] - 2 * padding[0] + weight.shape[2] + output_padding[0]
    out_w = (x.shape[3] - 1) * stride[1] - 2 * padding[1] + weight.shape[3] + output_padding[1]
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"{op}: output size ({out_h}, {out_w}) is not positive (input shape {x.shape}, "
            f"weight {weight.shape}, stride {stride}, padding {padding})"
        )
    out_shape = (x.shape[0], weight.shape[1], out_h, out_w)
    # The transposed convolution is the input-gradient of the convolution that maps out_shape to x.
    inputs = _with_bias((x, weight), bias, weight.shape[1], op)
    return ConvGradInput.apply(*inputs, x_shape=out_shape, stride=stride, padding=padding)
