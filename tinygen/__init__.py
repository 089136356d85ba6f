"""tinygen: generative deep learning from scratch in NumPy.

    import tinygen as tg
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    x.grad                  # tensor([2., 4., 6.])

On a GPU (with the [cuda] extra): tg.randn(3, device="cuda"), model.to("cuda"); see
tinygen/devices.py. The engine, nn, optim and the backend switch load with `import tinygen`.
The larger submodules (data, models, metrics, plot, train) load on first use, as
`tg.data.load_mnist(...)`, so that importing tinygen stays quick and never pulls in matplotlib or
compiles a kernel.
"""
import importlib

# autograd first: it defines Function, which tensor.py (and through it ops/) needs.
from . import autograd  # noqa: F401  (isort: skip)
from . import backend, devices, nn, optim
from .autograd import enable_grad, grad, is_grad_enabled, no_grad
from .checkpoint import load, save
from .creation import arange, ones, ones_like, rand, randn, zeros, zeros_like
from .devices import Device, device
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph_text import graph
from .ops import concatenate, matmul, maximum, minimum, stack, where
from .random import manual_seed
from .tensor import Tensor, as_tensor, float32, float64, tensor

__version__ = "0.1.0"

_LOADED_ON_FIRST_USE = ("data", "models", "metrics", "plot", "train")

__all__ = [
    "Tensor", "tensor", "as_tensor", "float32", "float64",
    "grad", "no_grad", "enable_grad", "is_grad_enabled",
    "zeros", "ones", "zeros_like", "ones_like", "randn", "rand", "arange", "manual_seed",
    "concatenate", "stack", "where", "maximum", "minimum", "matmul",
    "gradcheck", "gradgradcheck", "GradcheckError", "graph", "nn", "optim", "save", "load",
    "backend", "devices", "Device", "device", *_LOADED_ON_FIRST_USE,
]


def __getattr__(name):
    """tg.data, tg.models, tg.metrics, tg.plot, tg.train: imported the first time they are named."""
    if name in _LOADED_ON_FIRST_USE:
        return importlib.import_module(f".{name}", __name__)  # also sets tinygen.<name>
    raise AttributeError(f"module 'tinygen' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LOADED_ON_FIRST_USE))
