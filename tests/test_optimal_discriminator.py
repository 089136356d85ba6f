"""The GAN's optimal discriminator and the Jensen-Shannon divergence on a 1-D grid
(tinygen.metrics.optimal_discriminator, jensen_shannon, gaussian_kde_1d and its binned version),
against hand-computed values and the identity V(D*, G) = -log 4 + 2 JSD(p_data || p_g) that
lesson 11 derives."""
import math

import numpy as np
import pytest

from tinygen import metrics as M

GRID = np.linspace(-12.0, 12.0, 4801)
DX = GRID[1] - GRID[0]


def normal_density(x, mean, std):
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2.0 * math.pi))


def value_function(p_data, p_model, d):
    """V(D, G) = integral of p_data log D + p_model log(1 - D), as a sum over GRID.

    D is kept 1e-15 away from 0 and 1: where one density is 1e-30 times the other, D* rounds to
    exactly 0 or 1, and the term it weighs (at most 1e-30 * 35) would otherwise be 0 * inf.
    """
    d = np.clip(d, 1e-15, 1 - 1e-15)
    return float(np.sum(p_data * np.log(d) + p_model * np.log1p(-d)) * DX)


# ---- the Jensen-Shannon divergence ---------------------------------------------------------------
def test_jsd_of_hand_computed_probability_vectors():
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4): KL(p || m) = log 4/3, KL(q || m) = (1/2) log 4/3
    assert M.jensen_shannon([1.0, 0.0], [0.5, 0.5]) == pytest.approx(0.75 * math.log(4 / 3))
    assert M.jensen_shannon([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.75 * math.log(4 / 3))


def test_jsd_is_zero_for_equal_densities_and_log_2_for_disjoint_ones():
    p = normal_density(GRID, -1.0, 0.7)
    assert M.jensen_shannon(p, p, DX) == pytest.approx(0.0, abs=1e-12)
    left, right = np.where(GRID < 0, 1.0 / 12, 0.0), np.where(GRID > 0, 1.0 / 12, 0.0)
    assert M.jensen_shannon(left, right, DX) == pytest.approx(math.log(2), rel=1e-3)


def test_jsd_grows_as_two_gaussians_move_apart_and_stays_below_log_2():
    p = normal_density(GRID, 0.0, 1.0)
    values = [M.jensen_shannon(p, normal_density(GRID, shift, 1.0), DX)
              for shift in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)]
    assert np.all(np.diff(values) > 0)
    assert 0.0 <= values[0] < 1e-12 and values[-1] < math.log(2)
    assert values[-1] > 0.99 * math.log(2)


def test_jsd_rejects_bad_inputs():
    with pytest.raises(ValueError, match="non-negative"):
        M.jensen_shannon([0.5, -0.1], [0.5, 0.5])
    with pytest.raises(ValueError, match="shape"):
        M.jensen_shannon([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="dx"):
        M.jensen_shannon([1.0], [1.0], dx=0.0)


# ---- the optimal discriminator -------------------------------------------------------------------
def test_optimal_discriminator_is_the_share_of_the_data():
    d = M.optimal_discriminator([3.0, 1.0, 2.0, 0.0, 0.0], [1.0, 1.0, 0.0, 5.0, 0.0])
    np.testing.assert_allclose(d, [0.75, 0.5, 1.0, 0.0, 0.5])  # 0/0 is taken as 1/2


def test_optimal_discriminator_maximises_the_value_function():
    p_data = normal_density(GRID, -1.0, 1.0)
    p_model = 0.3 * normal_density(GRID, 2.0, 0.5) + 0.7 * normal_density(GRID, 0.0, 2.0)
    d_star = M.optimal_discriminator(p_data, p_model)
    best = value_function(p_data, p_model, d_star)
    rng = np.random.default_rng(0)
    for _ in range(5):  # any other D, however close, does worse
        wiggle = 0.05 * np.sin(rng.uniform(0.5, 3.0) * GRID + rng.uniform(0, 2 * np.pi))
        other = np.clip(d_star + wiggle, 1e-9, 1 - 1e-9)
        assert value_function(p_data, p_model, other) < best
    assert value_function(p_data, p_model, np.full_like(GRID, 0.5)) < best


def test_value_at_the_optimal_discriminator_is_minus_log_4_plus_twice_the_jsd():
    p_data = normal_density(GRID, -1.0, 1.0)
    for p_model in (normal_density(GRID, 1.5, 0.8), normal_density(GRID, -1.0, 1.0)):
        d_star = M.optimal_discriminator(p_data, p_model)
        value = value_function(p_data, p_model, d_star)
        jsd = M.jensen_shannon(p_data, p_model, DX)
        assert value == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-9)
    # at p_model = p_data: D* = 1/2 everywhere, JSD = 0 and V = -log 4
    np.testing.assert_allclose(d_star, 0.5)
    assert value == pytest.approx(-math.log(4), abs=1e-9)


# ---- the kernel density estimate -----------------------------------------------------------------
def test_kde_of_one_sample_is_a_gaussian_of_the_bandwidth():
    np.testing.assert_allclose(M.gaussian_kde_1d([0.7], GRID, 0.3),
                               normal_density(GRID, 0.7, 0.3), rtol=1e-12)


def test_kde_integrates_to_one_with_the_samples_mean_and_variance_plus_h_squared():
    samples = np.random.default_rng(1).standard_normal(300) * 1.5 + 0.5
    h = 0.4
    p = M.gaussian_kde_1d(samples, GRID, h, chunk=7)  # several chunks, one of them short
    assert np.sum(p) * DX == pytest.approx(1.0, abs=1e-9)
    mean = np.sum(GRID * p) * DX
    assert mean == pytest.approx(samples.mean(), abs=1e-9)
    assert np.sum((GRID - mean) ** 2 * p) * DX == pytest.approx(samples.var() + h**2, rel=1e-9)
    np.testing.assert_allclose(M.gaussian_kde_1d(samples, GRID, h, chunk=1000), p, rtol=1e-12)


def test_kde_of_many_samples_is_close_to_their_density_in_jsd():
    p = normal_density(GRID, 0.0, 1.0)
    close = M.gaussian_kde_1d(np.random.default_rng(2).standard_normal(5000), GRID, 0.1)
    shifted = M.gaussian_kde_1d(np.random.default_rng(2).standard_normal(5000) + 1.0, GRID, 0.1)
    assert M.jensen_shannon(p, close, DX) < 0.005
    assert M.jensen_shannon(p, shifted, DX) > 0.05


def test_binned_kde_agrees_with_the_exact_one_when_the_step_is_small():
    samples = np.random.default_rng(3).standard_normal(2000) * 2.0
    exact = M.gaussian_kde_1d(samples, GRID, 0.2)
    binned = M.binned_gaussian_kde_1d(samples, GRID, 0.2)  # step 0.005, 40 times smaller than h
    assert np.max(np.abs(binned - exact)) < 1e-3 * exact.max()
    # a sample on a grid point is not moved: the exact Gaussian, cut at 6 h (6e-9 / h beyond)
    np.testing.assert_allclose(M.binned_gaussian_kde_1d([GRID[2000]], GRID, 0.3),
                               M.gaussian_kde_1d([GRID[2000]], GRID, 0.3), atol=3e-8)


def test_binned_kde_leaves_out_samples_beyond_the_grid_but_counts_them():
    inside = M.binned_gaussian_kde_1d([0.0], GRID, 0.3)
    half = M.binned_gaussian_kde_1d([0.0, 100.0], GRID, 0.3)
    np.testing.assert_allclose(half, inside / 2, atol=1e-15)


def test_kde_rejects_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        M.gaussian_kde_1d([], GRID, 0.1)
    with pytest.raises(ValueError, match="bandwidth"):
        M.gaussian_kde_1d([0.0], GRID, 0.0)
    with pytest.raises(ValueError, match="evenly spaced"):
        M.binned_gaussian_kde_1d([0.0], [0.0, 1.0, 3.0], 0.1)
    with pytest.raises(ValueError, match="bandwidth"):
        M.binned_gaussian_kde_1d([0.0], GRID, -1.0)
