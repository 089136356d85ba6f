"""tinygen: generative deep learning from scratch in NumPy.

    import tinygen
    x = tinygen.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    x.grad                  # tensor([2., 4., 6.])
"""
# autograd first: it defines Function, which tensor.py (and through it ops/) needs.
from . import autograd  # noqa: F401  (isort: skip)
from .autograd import enable_grad, grad, is_grad_enabled, no_grad
from .creation import arange, ones, ones_like, rand, randn, zeros, zeros_like
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph_text import graph
from .ops import concatenate, matmul, maximum, minimum, stack, where
from .random import manual_seed
from .tensor import Tensor, as_tensor, float32, float64, tensor
from . import backend, nn, optim  # noqa: E402
from .checkpoint import load, save  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "as_tensor", "float32", "float64", "grad", "no_grad", "enable_grad", "is_grad_enabled",
    "zeros", "ones", "zeros_like", "ones_like", "randn", "rand", "arange", "manual_seed",
    "concatenate", "stack", "where", "maximum", "minimum", "matmul",
    "gradcheck", "gradgradcheck", "GradcheckError", "graph", "nn", "optim", "save", "load",
    "backend",
]
