"""Activation functions, composed from the primitive ops where that is stable and exact."""
from .. import ops


def relu(x):
    """max(x, 0)."""
    return ops.relu(x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, negative_slope * x elsewhere (the slope at 0 is negative_slope, as PyTorch)."""
    return ops.where(x.data > 0, x, x * negative_slope)


def sigmoid(x):
    """1 / (1 + e^-x)."""
    return ops.sigmoid(x)


def tanh(x):
    return ops.tanh(x)


def softplus(x):
    """log(1 + e^x), a smooth relu."""
    return ops.softplus(x)


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return -ops.softplus(-x)

