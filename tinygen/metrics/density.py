"""Densities on a 1-D grid: kernel density estimates of samples, a GAN's optimal discriminator
D* = p_data / (p_data + p_model) and the Jensen-Shannon divergence (lessons 10 and 11)."""
import math

import numpy as np

from ..devices import host_array
from .arrays import check_same_shape


def _grid_density(name, p, what):
    """p as a float64 vector (K,) of non-negative, finite values; raises otherwise."""
    p = host_array(p, np.float64)
    if p.ndim != 1 or len(p) == 0:
        raise ValueError(f"{name}: {what} must be a vector (K,), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name}: {what} must be finite and non-negative")
    return p


def _kde_inputs(samples, grid, bandwidth, who):
    """samples and grid as flat arrays, once there are samples and the bandwidth is positive."""
    s = host_array(samples, np.float64).ravel()
    x = host_array(grid, np.float64).ravel()
    if len(s) == 0:
        raise ValueError(f"{who}: samples is empty")
    if not bandwidth > 0:
        raise ValueError(f"{who}: bandwidth must be positive, got {bandwidth!r}")
    return s, x


def gaussian_kde_1d(samples, grid, bandwidth, chunk=4096):
    """A Gaussian kernel density estimate of samples (M,), evaluated on grid (K,) -> (K,).

    p_hat(x) = (1/M) sum_i N(x; s_i, bandwidth^2): each sample spreads one M-th of the mass as a
    Gaussian of standard deviation `bandwidth`. The samples are taken `chunk` at a time, so that
    memory stays at chunk x K numbers.
    """
    s, x = _kde_inputs(samples, grid, bandwidth, "gaussian_kde_1d")
    total = np.zeros_like(x)
    for start in range(0, len(s), chunk):
        z = (x[None, :] - s[start:start + chunk, None]) / bandwidth  # (chunk, K)
        total += np.exp(-0.5 * z**2).sum(axis=0)
    return total / (len(s) * bandwidth * math.sqrt(2.0 * math.pi))


def binned_gaussian_kde_1d(samples, grid, bandwidth):
    """gaussian_kde_1d made fast for an evenly spaced grid (K,) -> (K,), by binning first.

    Each sample is moved to its nearest grid point (by at most half a step, negligible when the
    step is much smaller than the bandwidth), and the counts are smoothed with the Gaussian kernel
    cut at 6 bandwidths: one convolution of K numbers instead of M x K kernel evaluations.
    Samples beyond the grid's ends are left out, but still count in the 1 / M.
    """
    s, x = _kde_inputs(samples, grid, bandwidth, "binned_gaussian_kde_1d")
    step = (x[-1] - x[0]) / (len(x) - 1) if len(x) > 1 else 0.0
    if not step > 0 or not np.allclose(np.diff(x), step, rtol=1e-6, atol=0):
        raise ValueError("binned_gaussian_kde_1d: grid must be evenly spaced and increasing")
    index = np.rint((s - x[0]) / step).astype(np.int64)
    counts = np.bincount(index[(index >= 0) & (index < len(x))], minlength=len(x))
    half_width = int(math.ceil(6 * bandwidth / step))
    offsets = np.arange(-half_width, half_width + 1) * step
    kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2) / (bandwidth * math.sqrt(2.0 * math.pi))
    smoothed = np.convolve(counts, kernel)[half_width:half_width + len(x)]  # centred on x
    return smoothed / len(s)


def optimal_discriminator(p_data, p_model):
    """D*(x) = p_data(x) / (p_data(x) + p_model(x)), elementwise over a grid (K,) -> (K,).

    The discriminator that maximises the GAN value function against a fixed generator of density
    p_model. Where both densities are 0 no point is ever seen and D* is undefined; it is 1/2 there.
    """
    p = _grid_density("optimal_discriminator", p_data, "p_data")
    q = _grid_density("optimal_discriminator", p_model, "p_model")
    check_same_shape("optimal_discriminator", p, q, "p_data", "p_model")
    total = p + q
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.5)


def jensen_shannon(p, q, dx=1.0):
    """JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, in nats.

    p and q are densities on an evenly spaced grid of step dx (K,), and the integrals are the sums
    times dx; with dx = 1 they are probability vectors. 0 log 0 counts as 0. The result lies in
    [0, log 2] when p and q each integrate to 1: 0 when they are equal, log 2 when they never
    overlap.
    """
    p = _grid_density("jensen_shannon", p, "p")
    q = _grid_density("jensen_shannon", q, "q")
    check_same_shape("jensen_shannon", p, q, "p", "q")
    if not dx > 0:
        raise ValueError(f"jensen_shannon: dx must be positive, got {dx!r}")
    m = (p + q) / 2

    def kl_to_m(a):
        inside = a > 0  # where a > 0, m >= a / 2 > 0 too
        return float(np.sum(a[inside] * np.log(a[inside] / m[inside])) * dx)

    return 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q)
