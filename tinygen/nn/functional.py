"""Functions of tensors with no state of their own: activations, linear, conv, pooling and
upsampling, dropout, batch norm, and (from tinygen/nn/losses.py) the losses. The layers in
tinygen/nn/layers.py call these."""

from .. import ops
from ..ops import fused as fused_ops
from ..ops.conv import conv2d, conv_transpose2d  # noqa: F401  (re-exported)
from ..ops.pool import avg_pool2d, upsample_nearest  # noqa: F401  (re-exported)
from ..random import generator
from ..tensor import as_tensor
from .losses import (  # noqa: F401  (re-exported)
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_nll,
    gaussian_nll_loss,
    kl_normal,
    l1_loss,
    mse_loss,
)


# ---- activations ---------------------------------------------------------------------------------
def relu(x):
    """max(x, 0)."""
    return ops.relu(x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, negative_slope * x elsewhere (the slope at 0 is negative_slope, as PyTorch).

    Written as x times a constant slope per element (1 or negative_slope): the gradient is that
    slope.
    """
    if fused_ops.has_fused_kernels("leaky_relu", x):  # one pass each way (numba, cuda)
        return fused_ops.leaky_relu(x, negative_slope)
    return x * as_tensor(fused_ops.leaky_relu_slope(x.data, negative_slope))


def sigmoid(x):
    """1 / (1 + e^-x)."""
    return ops.sigmoid(x)


def tanh(x):
    return ops.tanh(x)


def softplus(x, beta=1.0):
    """log(1 + e^(beta x)) / beta, a smooth relu."""
    if beta == 1:
        return ops.softplus(x)
    return ops.softplus(x * beta) / beta


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return -ops.softplus(-x)


# ---- layers as functions -------------------------------------------------------------------------
def linear(x, weight, bias=None):
    """x W^T + b.  x (..., in), weight (out, in), bias (out,) -> (..., out)."""
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input shape {x.shape} has {x.shape[-1] if x.ndim else 0} features "
            f"but weight {weight.shape} expects {weight.shape[1]}"
        )
    return ops.linear(x, weight, bias)


def interpolate(x, scale_factor, mode="nearest"):
    """Resize (N, C, H, W) images by a whole scale_factor; only mode="nearest" is implemented
    (upsample_nearest: each pixel copied into a scale_factor x scale_factor block)."""
    if mode != "nearest":
        raise ValueError(f"interpolate: only mode='nearest' is implemented, got mode={mode!r}")
    return upsample_nearest(x, scale_factor)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) ("inverted" dropout,
    so that the expected value is unchanged and evaluation needs no rescaling)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = generator().random(x.shape) >= p  # drawn on the host, the same on every device
    scale = as_tensor((keep / (1 - p)).astype(x.dtype), device=x.device)
    return x * scale


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel (axis 1) to zero mean and unit variance, then scale and shift.

    x (N, C) or (N, C, L) or (N, C, H, W). In training, the batch's statistics are used (its biased
    variance) and the running ones move towards them:
        running = (1 - momentum) running + momentum batch_statistic,
    with the unbiased variance n / (n - 1) var for running_var, as PyTorch keeps it. Otherwise the
    running statistics are used. y = (x - mean) / sqrt(var + eps) * weight + bias.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be at least 2-D (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(
                f"batch_norm: {name} has shape {t.shape}, "
                f"expected ({channels},) for input {x.shape}"
            )
    count = x.data.size // channels  # values per channel
    if training and count < 2:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, "
            f"got input shape {x.shape}"
        )
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    if not fused_ops.has_fused_kernels("batch_norm_train", x):  # the composite (numpy)
        y, mean, var = _batch_norm_composite(x, running_mean, running_var, weight, bias,
                                             training, eps)
    elif training:
        y, mean, var = fused_ops.batch_norm_train(x, weight, bias, eps)
    else:
        # (x - mean) / sqrt(var + eps) * weight + bias = x * scale + shift, per channel
        scale = (running_var + eps) ** -0.5
        if weight is not None:
            scale = scale * weight
        shift = -running_mean * scale
        if bias is not None:
            shift = shift + bias
        y = fused_ops.scale_shift(x, scale, shift)
    if training and running_mean is not None and running_var is not None:
        _update_running(running_mean, mean, momentum)
        _update_running(running_var, var * (count / (count - 1)), momentum)
    return y


def _batch_norm_composite(x, running_mean, running_var, weight, bias, training, eps):
    """Batch norm from primitives: -> y, and in training the batch's mean and biased var (C,)."""
    channels = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))  # every axis but the channels
    channel_shape = (1, channels) + (1,) * (x.ndim - 2)
    if training:
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
    else:
        mean = running_mean.reshape(channel_shape)
        var = running_var.reshape(channel_shape)
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(channel_shape)
    if bias is not None:
        y = y + bias.reshape(channel_shape)
    return y, mean.data.reshape(channels), var.data.reshape(channels)


def _update_running(running, batch_value, momentum):
    """running <- (1 - momentum) running + momentum batch_value, in place (outside the graph)."""
    running.data[...] = (1 - momentum) * running.data + momentum * batch_value
