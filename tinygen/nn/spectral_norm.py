"""Spectral normalisation (Miyato et al. 2018): a layer's weight divided by its largest singular
value, so that the layer is 1-Lipschitz; as torch.nn.utils.spectral_norm does it.

    W_sn = W / sigma(W),   sigma(W) = max_{|v| = 1} |W v| = u^T W v   (u, v: top singular vectors)

W is read as a matrix (h, -1): axis `dim` first (0; 1 for ConvTranspose2d, whose weight is
(in, out, kH, kW)), the other axes flattened. u and v come from power iteration,
    v <- W^T u / |W^T u|,   u <- W v / |W v|,
n_power_iterations steps per training-mode forward, each forward going on from the last u, kept as
a buffer (saved, not learned). Weights change little from one step to the next, so one step per
forward keeps u near the top singular vector. The gradient treats u and v as constants, as PyTorch
does: d sigma / dW = u v^T, so the backward of W / sigma applied to G is (G - <G, W_sn> u v^T) /
sigma, which autograd derives from the composite spectral_normalize.
"""
import numpy as np

from ..autograd import no_grad
from ..random import generator
from ..tensor import as_tensor
from .layers import ConvTranspose2d
from .module import Parameter

INITIAL_POWER_ITERATIONS = 15  # at wrapping time, so that sigma is sensible from the first call


def weight_matrix(weight, dim=0):
    """A weight array as the matrix spectral normalisation sees: (weight.shape[dim], -1)."""
    return np.moveaxis(weight, dim, 0).reshape(weight.shape[dim], -1)


def power_iteration(matrix, u, n_iterations, eps=1e-12):
    """n_iterations (>= 1) steps of v <- W^T u / |W^T u|, u <- W v / |W v|, norms floored at eps.
    Returns (u, v)."""
    for _ in range(n_iterations):
        v = _normalize(matrix.T @ u, eps)
        u = _normalize(matrix @ v, eps)
    return u, v


def _normalize(x, eps):
    return x / max(np.linalg.norm(x), eps)


def spectral_normalize(weight, u, v, dim=0):
    """weight / sigma with sigma = u^T W v, W = weight as a (weight.shape[dim], -1) matrix.

    u and v are NumPy vectors, constants of the graph: the gradient flows through weight alone,
    through the numerator and through sigma (d sigma / dW = u v^T).
    """
    rest = weight.shape[:dim] + weight.shape[dim + 1:]
    uv = np.moveaxis(np.outer(u, v).reshape((weight.shape[dim],) + rest), 0, dim)  # as weight
    sigma = (weight * as_tensor(uv.astype(weight.dtype))).sum()  # <W, u v^T> = u^T W v
    return weight / sigma


class SpectralNorm:
    """The forward that spectral_norm gives a layer: weight = weight_orig / sigma, then the
    layer's own forward. In training mode u and v first take n_power_iterations steps.

    (tinygen's Module has no forward hooks, so this object takes the place of the layer's
    `forward`; the normalised weight is a plain attribute, recomputed at every call.)
    """

    def __init__(self, layer_forward, name, dim, n_power_iterations, eps):
        self.layer_forward = layer_forward  # the bound forward it wraps; its __self__ is the layer
        self.name = name
        self.dim = dim
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    @property
    def layer(self):
        """The layer whose forward this is."""
        return self.layer_forward.__self__

    def __call__(self, *args, **kwargs):
        weight = self.compute_weight(do_power_iteration=self.layer.training)
        object.__setattr__(self.layer, self.name, weight)
        return self.layer_forward(*args, **kwargs)

    def tensors(self):
        """The layer's (weight_orig, weight_u, weight_v)."""
        return tuple(getattr(self.layer, self.name + suffix) for suffix in ("_orig", "_u", "_v"))

    def compute_weight(self, do_power_iteration):
        """weight_orig / sigma, after updating the buffers u and v in place if asked to."""
        weight, u, v = self.tensors()
        if do_power_iteration and self.n_power_iterations > 0:
            matrix = weight_matrix(weight.data, self.dim)
            u.data[...], v.data[...] = power_iteration(matrix, u.data, self.n_power_iterations,
                                                       self.eps)
        return spectral_normalize(weight, u.data, v.data, self.dim)

    def sigma(self):
        """The current estimate u^T W v of the largest singular value (no power iteration)."""
        weight, u, v = self.tensors()
        return float(u.data @ weight_matrix(weight.data, self.dim) @ v.data)


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Spectrally normalise module's weight, in place, as torch.nn.utils.spectral_norm; returns it.

    The learned parameter becomes `weight_orig`; `weight_u` (h,) and `weight_v` (-1,) are buffers
    (PyTorch's state_dict keys, so a spectrally normalised torch layer loads the state_dict with
    strict=True); `weight` is recomputed as weight_orig / sigma at every forward. dim: the axis of
    the matrix's rows, by default 0, or 1 for ConvTranspose2d as in PyTorch. u starts as a random
    unit vector, followed by 15 power-iteration steps (as torch's parametrizations.spectral_norm).
    """
    if n_power_iterations < 0:
        raise ValueError(f"spectral_norm: n_power_iterations must be >= 0, got "
                         f"{n_power_iterations}")
    if hasattr(module, name + "_orig"):
        raise RuntimeError(f"spectral_norm: {type(module).__name__}.{name} is already "
                           "spectrally normalised")
    weight = getattr(module, name, None)
    if not isinstance(weight, Parameter):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    matrix = weight_matrix(weight.data, dim)
    u = _normalize(generator().standard_normal(matrix.shape[0]), eps).astype(weight.dtype)
    u, v = power_iteration(matrix, u, INITIAL_POWER_ITERATIONS, eps)
    delattr(module, name)
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", u.astype(weight.dtype))
    module.register_buffer(name + "_v", v.astype(weight.dtype))
    normalization = SpectralNorm(module.forward, name, dim, n_power_iterations, eps)
    object.__setattr__(module, "forward", normalization)
    with no_grad():
        object.__setattr__(module, name, normalization.compute_weight(False))
    return module
