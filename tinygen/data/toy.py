"""Toy distributions for the implicit-generative-model (GAN) lessons, and the mode metrics.

    ring = toy.Ring()                          # 8 Gaussians on a circle of radius 2
    x = ring.sample(2500, rng)                 # (2500, 2) float64
    ring.log_density(x)                        # (2500,)
    toy.mode_coverage(fake, ring.modes, ring.std)["n_modes_covered"]

Every distribution has `sample(n, rng=None)`: rng is a numpy Generator, and None means tinygen's
global generator (seeded by tinygen.manual_seed). 1-D distributions return shape (n,), 2-D ones
(n, 2), always float64: these are data, and the loader or the lesson casts them when it wraps them.
Those with a closed-form density have `log_density(x)`; TwoMoons and Spiral are known only through
their samples, as a GAN's generator is, and have no `log_density`.

The Ring and Grid settings (8 modes on a circle of radius 2 with std 0.02; a 5 x 5 grid with
spacing 2 and std 0.05) are those of Srivastava et al. 2017 (VEEGAN), after Metz et al. 2017
(unrolled GAN) and Dumoulin et al. 2017 (ALI).
"""
import math

import numpy as np

from .. import random as _random

_LOG_2PI = math.log(2.0 * math.pi)


# ---- checks shared by every distribution ---------------------------------------------------------
def _generator(rng, who):
    """The generator to draw from: rng itself, or tinygen's global one when rng is None."""
    if rng is None:
        return _random.generator()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{who}.sample: rng must be a numpy.random.Generator (np.random.default_rng(seed)) "
            f"or None, got {type(rng).__name__}"
        )
    return rng


def _count(n, who):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{who}.sample: n must be a non-negative integer, got {n!r}")
    return int(n)


def _positive(value, name, who):
    if not value > 0:
        raise ValueError(f"{who}: {name} must be positive, got {value!r}")
    return float(value)


def _points_2d(x, who):
    """x as a float64 array of 2-D points, shape (..., 2)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(f"{who}.log_density: x must have shape (..., 2), got {x.shape}")
    return x


def _logsumexp(a, axis):
    """log(sum(exp(a), axis)) without overflow: shift by the maximum first."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def _isotropic_mixture_log_density(x, modes, std):
    """log p(x) of an equal-weight mixture of N(mode_k, std^2 I) in 2-D; x (..., 2) -> (...)."""
    sq = np.sum((x[..., None, :] - modes) ** 2, axis=-1)  # (..., K)
    log_k = -0.5 * sq / std**2 - math.log(len(modes))
    return _logsumexp(log_k, axis=-1) - _LOG_2PI - 2.0 * math.log(std)


def _isotropic_mixture_sample(n, rng, modes, std):
    """n points from an equal-weight mixture of N(mode_k, std^2 I): (n, 2)."""
    k = rng.integers(len(modes), size=n)
    return modes[k] + std * rng.standard_normal((n, 2))


# ---- 1-D ---------------------------------------------------------------------------------------
class Gaussian:
    """N(mean, std^2) on the real line; samples have shape (n,)."""

    def __init__(self, mean=0.0, std=1.0):
        self.mean = float(mean)
        self.std = _positive(std, "std", "Gaussian")

    def sample(self, n, rng=None):
        """n draws: (n,) float64."""
        n = _count(n, "Gaussian")
        return self.mean + self.std * _generator(rng, "Gaussian").standard_normal(n)

    def log_density(self, x):
        """log N(x; mean, std^2), elementwise: any shape -> the same shape."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return -0.5 * z**2 - math.log(self.std) - 0.5 * _LOG_2PI

    def __repr__(self):
        return f"Gaussian(mean={self.mean}, std={self.std})"


class GaussianMixture1D:
    """sum_k w_k N(means_k, stds_k^2) on the real line; samples have shape (n,).

    `modes` is means as a (K,) array, `stds` (K,), `weights` (K,) summing to 1.
    """

    def __init__(self, means=(-2.0, 2.0), stds=(0.5, 0.5), weights=(0.5, 0.5)):
        self.means = np.asarray(means, dtype=np.float64).reshape(-1)
        self.stds = np.asarray(stds, dtype=np.float64).reshape(-1)
        self.weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        k = len(self.means)
        if k == 0 or len(self.stds) != k or len(self.weights) != k:
            raise ValueError(
                "GaussianMixture1D: means, stds and weights must have the same non-zero length, "
                f"got {len(self.means)}, {len(self.stds)} and {len(self.weights)}"
            )
        if np.any(self.stds <= 0):
            raise ValueError(f"GaussianMixture1D: stds must be positive, got {self.stds}")
        if np.any(self.weights < 0) or not math.isclose(self.weights.sum(), 1.0, abs_tol=1e-8):
            raise ValueError(
                "GaussianMixture1D: weights must be non-negative and sum to 1, "
                f"got {self.weights} (sum {self.weights.sum()})"
            )
        self.modes = self.means

    def sample(self, n, rng=None):
        """n draws: pick a component by weight, then draw from it; (n,) float64."""
        n = _count(n, "GaussianMixture1D")
        rng = _generator(rng, "GaussianMixture1D")
        k = rng.choice(len(self.means), size=n, p=self.weights)
        return self.means[k] + self.stds[k] * rng.standard_normal(n)

    def log_density(self, x):
        """log sum_k w_k N(x; mean_k, std_k^2), elementwise: any shape -> the same shape."""
        x = np.asarray(x, dtype=np.float64)
        z = (x[..., None] - self.means) / self.stds  # (..., K)
        with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf, which is right
            log_w = np.log(self.weights)
        log_k = log_w - 0.5 * z**2 - np.log(self.stds) - 0.5 * _LOG_2PI
        return _logsumexp(log_k, axis=-1)

    def __repr__(self):
        return (
            f"GaussianMixture1D(means={self.means.tolist()}, stds={self.stds.tolist()}, "
            f"weights={self.weights.tolist()})"
        )


# ---- 2-D ---------------------------------------------------------------------------------------
class Ring:
    """An equal-weight mixture of n_modes Gaussians N(mode_k, std^2 I) evenly spaced on a circle.

    `modes` (n_modes, 2): mode k sits at angle 2 pi k / n_modes, at distance `radius` from 0.
    """

    def __init__(self, n_modes=8, radius=2.0, std=0.02):
        if isinstance(n_modes, bool) or not isinstance(n_modes, (int, np.integer)) or n_modes < 1:
            raise ValueError(f"Ring: n_modes must be a positive integer, got {n_modes!r}")
        self.n_modes = int(n_modes)
        self.radius = _positive(radius, "radius", "Ring")
        self.std = _positive(std, "std", "Ring")
        angles = 2.0 * math.pi * np.arange(self.n_modes) / self.n_modes
        self.modes = self.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (K, 2)

    def sample(self, n, rng=None):
        """n points: (n, 2) float64."""
        n = _count(n, "Ring")
        return _isotropic_mixture_sample(n, _generator(rng, "Ring"), self.modes, self.std)

    def log_density(self, x):
        """log p(x) for points x of shape (..., 2): shape (...)."""
        return _isotropic_mixture_log_density(_points_2d(x, "Ring"), self.modes, self.std)

    def __repr__(self):
        return f"Ring(n_modes={self.n_modes}, radius={self.radius}, std={self.std})"


class Grid:
    """An equal-weight mixture of n * n Gaussians N(mode_k, std^2 I) on a square grid centred at 0.

    `modes` (n * n, 2): coordinates (i - (n - 1) / 2) * spacing for i = 0 .. n - 1 on each axis,
    so the default 5 x 5 grid has modes at -4, -2, 0, 2, 4.
    """

    def __init__(self, n=5, spacing=2.0, std=0.05):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Grid: n must be a positive integer, got {n!r}")
        self.n = int(n)
        self.spacing = _positive(spacing, "spacing", "Grid")
        self.std = _positive(std, "std", "Grid")
        ticks = (np.arange(self.n) - (self.n - 1) / 2.0) * self.spacing
        gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
        self.modes = np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1)  # (n * n, 2)

    def sample(self, n, rng=None):
        """n points: (n, 2) float64."""
        n = _count(n, "Grid")
        return _isotropic_mixture_sample(n, _generator(rng, "Grid"), self.modes, self.std)

    def log_density(self, x):
        """log p(x) for points x of shape (..., 2): shape (...)."""
        return _isotropic_mixture_log_density(_points_2d(x, "Grid"), self.modes, self.std)

    def __repr__(self):
        return f"Grid(n={self.n}, spacing={self.spacing}, std={self.std})"


class TwoMoons:
    """Two interleaved half circles of radius 1 (scikit-learn's make_moons), plus Gaussian noise.

    The upper moon is (cos t, sin t), the lower (1 - cos t, 1/2 - sin t), t ~ U[0, pi], each moon
    drawn with probability 1/2; everything is shifted by (-1/2, -1/4) so that the mean is 0.
    """

    # centres of the two circles the moons lie on, after the shift
    centres = np.array([[-0.5, -0.25], [0.5, 0.25]])

    def __init__(self, noise=0.05):
        if not noise >= 0:
            raise ValueError(f"TwoMoons: noise must be non-negative, got {noise!r}")
        self.noise = float(noise)

    def sample(self, n, rng=None):
        """n points: (n, 2) float64."""
        n = _count(n, "TwoMoons")
        rng = _generator(rng, "TwoMoons")
        t = rng.uniform(0.0, math.pi, size=n)
        lower = rng.random(n) < 0.5
        sign = np.where(lower, -1.0, 1.0)[:, None]  # the lower moon is the upper one turned round
        arc = sign * np.stack([np.cos(t), np.sin(t)], axis=1)  # (n, 2)
        x = self.centres[lower.astype(int)] + arc
        return x + self.noise * rng.standard_normal((n, 2))

    def __repr__(self):
        return f"TwoMoons(noise={self.noise})"


class Spiral:
    """An Archimedean spiral r = radius * theta / theta_max, theta in [0, theta_max], plus noise.

    theta_max = 2 pi turns. theta = theta_max * sqrt(u), u ~ U[0, 1], so that points are close to
    uniform along the curve (arc length grows like theta^2).
    """

    def __init__(self, noise=0.05, turns=1.5, radius=2.0):
        if not noise >= 0:
            raise ValueError(f"Spiral: noise must be non-negative, got {noise!r}")
        self.noise = float(noise)
        self.turns = _positive(turns, "turns", "Spiral")
        self.radius = _positive(radius, "radius", "Spiral")

    def sample(self, n, rng=None):
        """n points: (n, 2) float64."""
        n = _count(n, "Spiral")
        rng = _generator(rng, "Spiral")
        theta_max = 2.0 * math.pi * self.turns
        theta = theta_max * np.sqrt(rng.random(n))
        r = self.radius * theta / theta_max
        x = r[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (n, 2)
        return x + self.noise * rng.standard_normal((n, 2))

    def __repr__(self):
        return f"Spiral(noise={self.noise}, turns={self.turns}, radius={self.radius})"


# ---- mode metrics ------------------------------------------------------------------------------
def mode_coverage(samples, modes, std, threshold=3.0, min_count=1):
    """How many modes of a Gaussian mixture a set of samples reaches, and how many samples are good.

    samples (N, D) or (N,) for 1-D; modes (K, D) or (K,); std a number or (K,), one per mode.

    Each sample is assigned to its nearest mode, distance measured in that mode's standard
    deviations. It is *high quality* if that distance is below `threshold` (3 standard deviations,
    as in Srivastava et al. 2017, VEEGAN, after Metz et al. 2017). A mode is *covered* when at
    least `min_count` high-quality samples are assigned to it. The default, 1, is the convention of
    VEEGAN's table and of PacGAN's released evaluation code (Lin et al. 2018), which counts the
    modes with a non-zero count; pass a larger min_count (for instance 1% of N) to stop a few
    stray samples from counting a mode as covered.

    Returns a dict:
        n_modes_covered        int, the number of covered modes
        high_quality_fraction  float in [0, 1], the high-quality share of all N samples
        counts                 (K,) int array, the high-quality samples assigned to each mode
        covered                (K,) bool array, counts >= min_count
    """
    samples = np.asarray(samples, dtype=np.float64)
    modes = np.asarray(modes, dtype=np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    if modes.ndim == 1:
        modes = modes[:, None]
    if samples.ndim != 2 or modes.ndim != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(
            "mode_coverage: samples (N, D) and modes (K, D) must have the same D, "
            f"got shapes {samples.shape} and {modes.shape}"
        )
    if len(modes) == 0:
        raise ValueError("mode_coverage: modes is empty")
    std = np.broadcast_to(np.asarray(std, dtype=np.float64), (len(modes),))
    if np.any(std <= 0):
        raise ValueError(f"mode_coverage: std must be positive, got {std}")
    if not threshold > 0:
        raise ValueError(f"mode_coverage: threshold must be positive, got {threshold!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise ValueError(f"mode_coverage: min_count must be a positive integer, got {min_count!r}")

    dist = np.sqrt(np.sum((samples[:, None, :] - modes) ** 2, axis=-1)) / std  # (N, K), in stds
    nearest = np.argmin(dist, axis=1)  # (N,)
    good = dist[np.arange(len(samples)), nearest] < threshold  # (N,)
    counts = np.bincount(nearest[good], minlength=len(modes))  # (K,)
    covered = counts >= min_count
    return {
        "n_modes_covered": int(covered.sum()),
        "high_quality_fraction": float(good.mean()) if len(samples) else 0.0,
        "counts": counts,
        "covered": covered,
    }
