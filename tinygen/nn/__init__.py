"""Neural-network building blocks with PyTorch's names: Module, layers, init, functional."""
from . import functional, init  # noqa: F401
from .layers import (  # noqa: F401
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Softplus,
    Tanh,
    Unflatten,
    Upsample,
)
from .module import Module, ModuleList, Parameter, Sequential  # noqa: F401
from .spectral_norm import spectral_norm  # noqa: F401
