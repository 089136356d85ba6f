"""How well an autoencoder reconstructs (mean squared error per pixel, PSNR), and the Jacobian
norm a contractive autoencoder penalises."""
import math

import numpy as np

from ..autograd import grad
from ..devices import host_array
from ..tensor import Tensor, as_tensor
from .arrays import check_same_shape


def mse_per_pixel(x, r):
    """Mean of (x - r)^2 over every element; x, r of the same shape (N, ...)."""
    x = host_array(x, np.float64)
    r = host_array(r, np.float64)
    check_same_shape("mse_per_pixel", x, r, "x", "r")
    return float(np.mean((x - r) ** 2))


def psnr(x, r, max_value=1.0):
    """Peak signal-to-noise ratio in dB of the whole set: 10 log10(max_value^2 / mse_per_pixel).

    x, r: (N, ...) of the same shape. The MSE is averaged over the whole set first (not a mean of
    per-image PSNRs), so MSE 0.0168 per pixel gives 17.75 dB. Identical sets give inf.
    """
    mse = mse_per_pixel(x, r)
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(max_value**2 / mse)


def jacobian_frobenius_sq(encode, x):
    """Per-sample squared Frobenius norm of the encoder's Jacobian ||dz/dx||_F^2 -> (N,) float64.

    encode: a callable Tensor (N, D) -> Tensor (N, K); x: (N, D) array or Tensor. Exact: one
    backward pass per code unit k gives the rows dz_k/dx of every sample at once, which assumes
    samples do not interact (true for any encoder without batch statistics; put BatchNorm in eval).
    """
    data = host_array(x)
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    x = Tensor(data, requires_grad=True, dtype=data.dtype)
    z = encode(x)
    if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[0] != x.shape[0]:
        shape = getattr(z, "shape", type(z).__name__)
        raise ValueError(f"jacobian_frobenius_sq: encode must return a Tensor (N, K), got {shape}")
    total = np.zeros(x.shape[0])
    if not z.requires_grad:
        return total  # z does not depend on x
    for k in range(z.shape[1]):
        unit = np.zeros(z.shape, dtype=z.dtype)
        unit[:, k] = 1
        # ||J||_F^2 = sum_k ||dz_k/dx||^2
        (g,) = grad(z, x, grad_outputs=as_tensor(unit), retain_graph=True, allow_unused=True)
        if g is not None:
            rows = g.data.reshape(x.shape[0], -1).astype(np.float64)
            total += np.sum(rows**2, axis=1)
    return total
