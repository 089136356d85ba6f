"""Toy distributions against their parameters and closed forms; mode_coverage on known samples."""
import math

import numpy as np
import pytest

import tinygen as tg
from tinygen.data import toy

N = 20_000


def trapezoid_mass(log_density, lo, hi, steps=20_001):
    """The integral of exp(log_density) over [lo, hi] by the trapezoid rule."""
    x = np.linspace(lo, hi, steps)
    p = np.exp(log_density(x))
    return float(np.sum((p[1:] + p[:-1]) / 2) * (x[1] - x[0]))


def grid_mass(log_density, lo, hi, steps):
    """The integral of exp(log_density) over the square [lo, hi]^2 by a midpoint grid sum."""
    h = (hi - lo) / steps
    ticks = lo + h * (np.arange(steps) + 0.5)
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    points = np.stack([gx, gy], axis=-1)  # (steps, steps, 2)
    return float(np.exp(log_density(points)).sum() * h * h)


# ---- 1-D ---------------------------------------------------------------------------------------
def test_gaussian_sample_mean_and_std_match_parameters(rng):
    x = toy.Gaussian(mean=1.5, std=0.7).sample(N, rng)
    assert x.shape == (N,) and x.dtype == np.float64
    # standard errors: 0.7 / sqrt(N) = 0.005 for the mean, about 0.0035 for the std
    assert abs(x.mean() - 1.5) < 0.025
    assert abs(x.std() - 0.7) < 0.02


def test_gaussian_log_density_matches_closed_form_and_integrates_to_one():
    g = toy.Gaussian(mean=-1.0, std=2.0)
    x = np.array([-3.0, -1.0, 0.5])
    expected = -0.5 * ((x + 1.0) / 2.0) ** 2 - math.log(2.0 * math.sqrt(2.0 * math.pi))
    np.testing.assert_allclose(g.log_density(x), expected, rtol=1e-12)
    assert trapezoid_mass(g.log_density, -21.0, 19.0) == pytest.approx(1.0, abs=1e-6)


def test_mixture_1d_sample_moments_match_closed_form(rng):
    m = toy.GaussianMixture1D(means=(-2.0, 3.0), stds=(0.5, 1.0), weights=(0.3, 0.7))
    x = m.sample(N, rng)
    assert x.shape == (N,) and x.dtype == np.float64
    mean = 0.3 * -2.0 + 0.7 * 3.0
    var = 0.3 * (0.5**2 + 4.0) + 0.7 * (1.0 + 9.0) - mean**2
    assert abs(x.mean() - mean) < 0.05
    assert abs(x.std() - math.sqrt(var)) < 0.05
    # the share of samples on the right of the gap is the right component's weight
    assert abs(np.mean(x > 0.5) - 0.7) < 0.02


def test_mixture_1d_log_density_is_weighted_sum_of_gaussians_and_integrates_to_one():
    m = toy.GaussianMixture1D(means=(-2.0, 3.0), stds=(0.5, 1.0), weights=(0.3, 0.7))
    x = np.linspace(-5.0, 6.0, 7)
    expected = np.log(
        0.3 * np.exp(toy.Gaussian(-2.0, 0.5).log_density(x))
        + 0.7 * np.exp(toy.Gaussian(3.0, 1.0).log_density(x))
    )
    np.testing.assert_allclose(m.log_density(x), expected, rtol=1e-10)
    assert trapezoid_mass(m.log_density, -15.0, 15.0) == pytest.approx(1.0, abs=1e-6)


def test_mixture_1d_log_density_is_finite_far_from_every_mode():
    # logsumexp: exp(-0.5 * 200^2) underflows to 0, the log does not
    value = toy.GaussianMixture1D().log_density(np.array([400.0]))[0]
    assert np.isfinite(value) and value < -1e4


def test_mixture_1d_rejects_bad_parameters():
    with pytest.raises(ValueError, match="same non-zero length"):
        toy.GaussianMixture1D(means=(0.0, 1.0), stds=(1.0,), weights=(0.5, 0.5))
    with pytest.raises(ValueError, match="sum to 1"):
        toy.GaussianMixture1D(weights=(0.5, 0.6))
    with pytest.raises(ValueError, match="stds must be positive"):
        toy.GaussianMixture1D(stds=(0.5, 0.0))


# ---- 2-D with a density ------------------------------------------------------------------------
def test_ring_modes_lie_on_the_circle_evenly_spaced():
    ring = toy.Ring(n_modes=8, radius=2.0)
    assert ring.modes.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(ring.modes, axis=1), 2.0, rtol=1e-12)
    angles = np.arctan2(ring.modes[:, 1], ring.modes[:, 0]) % (2 * np.pi)
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(8) / 8, atol=1e-12)


def test_ring_samples_sit_near_modes_with_the_right_spread(rng):
    ring = toy.Ring()
    x = ring.sample(N, rng)
    assert x.shape == (N, 2) and x.dtype == np.float64
    nearest = np.argmin(np.linalg.norm(x[:, None] - ring.modes, axis=-1), axis=1)
    offsets = x - ring.modes[nearest]
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=0.001)
    np.testing.assert_allclose(offsets.std(axis=0), 0.02, rtol=0.03)
    # every mode gets about 1/8 of the samples
    np.testing.assert_allclose(np.bincount(nearest, minlength=8) / N, 1 / 8, atol=0.01)


def test_ring_log_density_integrates_to_one():
    ring = toy.Ring(std=0.1)  # wide enough for a 600 x 600 grid to resolve each mode
    assert grid_mass(ring.log_density, -3.0, 3.0, 600) == pytest.approx(1.0, abs=1e-4)


def test_ring_log_density_at_a_mode_is_that_of_one_component_over_k():
    ring = toy.Ring(std=0.02)
    expected = -math.log(8) - math.log(2 * math.pi * 0.02**2)  # other modes add ~exp(-5000)
    assert ring.log_density(ring.modes[3]) == pytest.approx(expected, rel=1e-12)
    assert ring.log_density(ring.modes).shape == (8,)


def test_grid_modes_are_centred_with_the_given_spacing():
    grid = toy.Grid()
    assert grid.modes.shape == (25, 2)
    ticks = np.unique(grid.modes[:, 0])
    np.testing.assert_allclose(ticks, [-4.0, -2.0, 0.0, 2.0, 4.0])
    np.testing.assert_allclose(grid.modes.mean(axis=0), 0.0, atol=1e-12)
    assert len({tuple(m) for m in grid.modes}) == 25


def test_grid_samples_sit_near_modes_with_the_right_spread(rng):
    grid = toy.Grid()
    x = grid.sample(N, rng)
    assert x.shape == (N, 2)
    nearest = np.argmin(np.linalg.norm(x[:, None] - grid.modes, axis=-1), axis=1)
    offsets = x - grid.modes[nearest]
    np.testing.assert_allclose(offsets.std(axis=0), 0.05, rtol=0.03)
    np.testing.assert_allclose(np.bincount(nearest, minlength=25) / N, 1 / 25, atol=0.01)


def test_grid_log_density_integrates_to_one():
    grid = toy.Grid(n=3, spacing=1.0, std=0.2)
    assert grid_mass(grid.log_density, -3.0, 3.0, 600) == pytest.approx(1.0, abs=1e-4)


def test_log_density_2d_rejects_points_that_are_not_2d():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        toy.Ring().log_density(np.zeros((4, 3)))


# ---- 2-D without a density ---------------------------------------------------------------------
def test_two_moons_without_noise_lie_on_their_two_circles(rng):
    x = toy.TwoMoons(noise=0.0).sample(2000, rng)
    assert x.shape == (2000, 2)
    r = np.linalg.norm(x[:, None] - toy.TwoMoons.centres, axis=-1)  # (2000, 2)
    on_circle = np.isclose(r, 1.0, atol=1e-12)
    assert np.all(on_circle.any(axis=1))
    # the upper moon is the upper half of its circle, the lower moon the lower half of its own
    upper = on_circle[:, 0]
    assert np.all(x[upper, 1] >= toy.TwoMoons.centres[0, 1] - 1e-12)
    assert np.all(x[~upper, 1] <= toy.TwoMoons.centres[1, 1] + 1e-12)
    assert abs(upper.mean() - 0.5) < 0.05


def test_two_moons_are_centred_at_zero(rng):
    x = toy.TwoMoons().sample(N, rng)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.02)


def test_spiral_without_noise_lies_on_the_curve(rng):
    spiral = toy.Spiral(noise=0.0, turns=1.5, radius=2.0)
    x = spiral.sample(2000, rng)
    assert x.shape == (2000, 2)
    r = np.linalg.norm(x, axis=1)
    assert r.max() <= 2.0 + 1e-12
    theta = r / 2.0 * (2 * np.pi * 1.5)  # r = radius * theta / theta_max
    np.testing.assert_allclose(np.cos(theta) * r, x[:, 0], atol=1e-9)
    np.testing.assert_allclose(np.sin(theta) * r, x[:, 1], atol=1e-9)


@pytest.mark.parametrize("dist", [toy.TwoMoons(), toy.Spiral()], ids=["moons", "spiral"])
def test_implicit_distributions_have_no_density(dist):
    assert not hasattr(dist, "log_density")


# ---- sampling conventions ----------------------------------------------------------------------
ALL = [toy.Gaussian(), toy.GaussianMixture1D(), toy.Ring(), toy.Grid(), toy.TwoMoons(),
       toy.Spiral()]


@pytest.mark.parametrize("dist", ALL, ids=lambda d: type(d).__name__)
def test_same_seed_gives_same_samples_and_none_uses_the_global_generator(dist):
    a = dist.sample(50, np.random.default_rng(3))
    np.testing.assert_array_equal(a, dist.sample(50, np.random.default_rng(3)))
    tg.manual_seed(5)
    b = dist.sample(50)
    tg.manual_seed(5)
    np.testing.assert_array_equal(b, dist.sample(50))


@pytest.mark.parametrize("dist", ALL, ids=lambda d: type(d).__name__)
def test_sample_rejects_bad_n_and_bad_rng(dist):
    with pytest.raises(ValueError, match="non-negative integer"):
        dist.sample(-1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        dist.sample(3, 0)


# ---- mode_coverage -----------------------------------------------------------------------------
def test_mode_coverage_of_exact_mode_samples_covers_everything():
    grid = toy.Grid()
    samples = np.repeat(grid.modes, 4, axis=0)  # 4 copies of each mode
    result = toy.mode_coverage(samples, grid.modes, grid.std)
    assert result["n_modes_covered"] == 25
    assert result["high_quality_fraction"] == 1.0
    np.testing.assert_array_equal(result["counts"], np.full(25, 4))
    assert result["covered"].all()


def test_mode_coverage_of_true_ring_samples_covers_all_modes(rng):
    ring = toy.Ring()
    result = toy.mode_coverage(ring.sample(2500, rng), ring.modes, ring.std)
    assert result["n_modes_covered"] == 8
    # P(|N(0, I_2)| < 3) = 1 - exp(-9/2) = 0.9889
    assert abs(result["high_quality_fraction"] - (1 - math.exp(-4.5))) < 0.01


def test_mode_coverage_of_samples_from_one_mode_covers_one(rng):
    ring = toy.Ring()
    samples = ring.modes[2] + ring.std * rng.standard_normal((500, 2))
    result = toy.mode_coverage(samples, ring.modes, ring.std)
    assert result["n_modes_covered"] == 1
    assert result["covered"][2] and result["counts"].sum() == result["counts"][2]


def test_mode_coverage_of_far_away_noise_has_quality_zero(rng):
    ring = toy.Ring()
    samples = 50.0 + rng.standard_normal((500, 2))
    result = toy.mode_coverage(samples, ring.modes, ring.std)
    assert result["high_quality_fraction"] == 0.0
    assert result["n_modes_covered"] == 0
    np.testing.assert_array_equal(result["counts"], np.zeros(8))


def test_mode_coverage_threshold_and_min_count_are_respected():
    modes = np.array([[0.0, 0.0], [10.0, 0.0]])
    # distances in stds: 2.9 and 3.1 from mode 0; 0 from mode 1 (twice)
    samples = np.array([[2.9, 0.0], [0.0, 3.1], [10.0, 0.0], [10.0, 0.0]])
    result = toy.mode_coverage(samples, modes, std=1.0)
    np.testing.assert_array_equal(result["counts"], [1, 2])
    assert result["high_quality_fraction"] == 0.75
    assert toy.mode_coverage(samples, modes, std=1.0, min_count=2)["n_modes_covered"] == 1


def test_mode_coverage_in_1d_uses_each_modes_own_std():
    m = toy.GaussianMixture1D(means=(-2.0, 2.0), stds=(0.1, 1.0), weights=(0.5, 0.5))
    # 0.5 is 25 stds from mode 0 and 1.5 stds from mode 1; -1.5 is 5 stds / 3.5 stds away
    result = toy.mode_coverage(np.array([0.5, -1.5]), m.modes, m.stds)
    np.testing.assert_array_equal(result["counts"], [0, 1])
    assert result["high_quality_fraction"] == 0.5


def test_mode_coverage_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match="same D"):
        toy.mode_coverage(np.zeros((5, 3)), toy.Ring().modes, 0.02)
