"""Layers with PyTorch's names, parameter shapes, default initialisation and state_dict keys.

Each layer holds its Parameters and calls a function of tinygen.nn.functional in forward.
"""
import math

import numpy as np

from ..ops.conv import conv_settings
from ..ops.pairs import positive_pair, whole_factor_pair
from ..ops.shape import normalize_axis
from . import functional as F
from . import init
from .module import Module, Parameter


def _reset_uniform(weight, bias, fan_in):
    """PyTorch's default: weight ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Linear(Module):
    """y = x W^T + b.  weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.zeros((out_features, in_features)))
        self.register_parameter("bias", Parameter(np.zeros(out_features)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_uniform(self.weight, self.bias, self.in_features)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Conv2d(Module):
    """2-D convolution.  weight (out_channels, in_channels, kH, kW), bias (out_channels,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size, self.stride, self.padding, _ = conv_settings(
            "Conv2d", stride, padding, kernel_size=kernel_size)
        self.weight = Parameter(np.zeros((out_channels, in_channels) + self.kernel_size))
        self.register_parameter("bias", Parameter(np.zeros(out_channels)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        _reset_uniform(self.weight, self.bias, fan_in)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class ConvTranspose2d(Module):
    """2-D transposed convolution.
    weight (in_channels, out_channels, kH, kW), bias (out_channels,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, bias=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size, self.stride, self.padding, self.output_padding = conv_settings(
            "ConvTranspose2d", stride, padding, output_padding, kernel_size)
        self.weight = Parameter(np.zeros((in_channels, out_channels) + self.kernel_size))
        self.register_parameter("bias", Parameter(np.zeros(out_channels)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch reads fan_in from the weight's second axis, which here is out_channels.
        fan_in = self.out_channels * self.kernel_size[0] * self.kernel_size[1]
        _reset_uniform(self.weight, self.bias, fan_in)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, "
                f"output_padding={self.output_padding}, bias={self.bias is not None}")


class AvgPool2d(Module):
    """The mean over each kernel_size window, windows stride apart (stride defaults to
    kernel_size; no padding, floor output size): AvgPool2d(2) halves an image."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = positive_pair(kernel_size, "kernel_size", "AvgPool2d")
        self.stride = (self.kernel_size if stride is None
                       else positive_pair(stride, "stride", "AvgPool2d"))

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=0"


class Upsample(Module):
    """Nearest-neighbour upsampling by a whole scale_factor: Upsample(scale_factor=2) turns each
    pixel into a 2 x 2 block. Only mode="nearest" is implemented."""

    def __init__(self, scale_factor, mode="nearest"):
        super().__init__()
        if mode != "nearest":
            raise ValueError(f"Upsample: only mode='nearest' is implemented, got mode={mode!r}")
        whole_factor_pair(scale_factor, "Upsample")  # a clear error now rather than at forward
        self.scale_factor = scale_factor
        self.mode = mode

    def forward(self, x):
        return F.upsample_nearest(x, self.scale_factor)

    def extra_repr(self):
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d; they differ only in the input shapes they accept."""

    input_ndims = ()
    input_layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        if affine:
            self.weight = Parameter(np.ones(num_features))
            self.bias = Parameter(np.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
        # How many training batches it has seen: an int64 0-d buffer, saved as PyTorch saves it.
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x):
        if x.ndim not in self.input_ndims:
            raise ValueError(
                f"{type(self).__name__}: expected input {self.input_layout}, got shape {x.shape}"
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): input has {x.shape[1]} channels "
                f"(shape {x.shape})"
            )
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked.data += 1  # in place: the 0-d array keeps its dtype
            if momentum is None:
                # the cumulative average of all batches: running = mean of the batch statistics
                momentum = 1 / int(self.num_batches_tracked.data)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs, per channel C."""

    input_ndims = (2, 3)
    input_layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) inputs, per channel C."""

    input_ndims = (4,)
    input_layout = "(N, C, H, W)"


class Dropout(Module):
    """Zero each element with probability p in training (scaling the rest by 1 / (1 - p))."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Flatten axes start_dim..end_dim into one: (N, C, H, W) -> (N, C * H * W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis dim into unflattened_size:
    Unflatten(1, (1, 28, 28)) maps (N, 784) to (N, 1, 28, 28)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, x):
        (dim,) = normalize_axis(self.dim, x.ndim, "Unflatten")
        if int(np.prod(self.unflattened_size)) != x.shape[dim]:
            raise ValueError(
                f"Unflatten: axis {self.dim} of shape {x.shape} has {x.shape[dim]} elements, "
                f"which cannot be split into {self.unflattened_size}"
            )
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Softplus(Module):
    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return F.softplus(x, self.beta)

    def extra_repr(self):
        return f"beta={self.beta}"


class Identity(Module):
    def forward(self, x):
        return x
