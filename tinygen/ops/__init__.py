"""Differentiable ops: each is a Function, with forward (arrays) and backward (Tensors) together."""
from .conv import conv2d, conv_transpose2d  # noqa: F401
from .elementwise import (  # noqa: F401
    abs,
    add,
    cast,
    clip,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    softplus,
    sqrt,
    sub,
    tanh,
    where,
)
from .linear import linear  # noqa: F401
from .matmul import matmul  # noqa: F401
from .pool import avg_pool2d, upsample_nearest  # noqa: F401
from .reduce import logsumexp, max, mean, min, sum, var  # noqa: F401
from .shape import (  # noqa: F401
    broadcast_to,
    concatenate,
    flatten,
    getitem,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from .to_device import to_device  # noqa: F401
