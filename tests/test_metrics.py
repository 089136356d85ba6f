"""tinygen.metrics against closed forms and independent references: planted low-rank structure,
known rotations, brute-force pair counts, finite differences, and analytic Jacobians."""
import math

import numpy as np
import pytest

import tinygen as tg
from tinygen import metrics as M
from tinygen.nn import functional as F


# ---- PCA -----------------------------------------------------------------------------------------
def low_rank_data(rng, n=500, d=20, k=3, noise=0.01):
    """Data near a k-dimensional subspace (basis (d, k), orthonormal columns) plus an offset."""
    basis, _ = np.linalg.qr(rng.standard_normal((d, k)))
    codes = rng.standard_normal((n, k)) * np.array([5.0, 3.0, 2.0])[:k]
    offset = rng.standard_normal(d)
    return codes @ basis.T + offset + noise * rng.standard_normal((n, d)), basis


def test_pca_components_orthonormal_and_span_planted_subspace(rng):
    x, basis = low_rank_data(rng)
    mean, comps, var = M.pca(x, 3)
    assert mean.shape == (20,) and comps.shape == (3, 20) and var.shape == (3,)
    np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-12)
    assert np.all(np.diff(var) <= 0)
    assert M.principal_angles(comps.T, basis).max() < 0.01


def test_pca_explained_variance_equals_np_var_of_codes(rng):
    x, _ = low_rank_data(rng)
    mean, comps, var = M.pca(x, 3)
    codes = M.pca_project(x, mean, comps)
    np.testing.assert_allclose(var, np.var(codes, axis=0), rtol=1e-10)
    np.testing.assert_allclose(codes.mean(axis=0), 0, atol=1e-10)


def test_pca_reconstruction_error_is_sum_of_discarded_eigenvalues(rng):
    x = rng.standard_normal((300, 8)) @ rng.standard_normal((8, 8))
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False, ddof=0)))[::-1]
    for k in (1, 4, 7):
        mean, comps, _ = M.pca(x, k)
        r = M.pca_reconstruct(M.pca_project(x, mean, comps), mean, comps)
        error = np.mean(np.sum((x - r) ** 2, axis=1))
        np.testing.assert_allclose(error, eigenvalues[k:].sum(), rtol=1e-9)


def test_pca_of_tall_data_by_covariance_equals_the_svd_of_wide_data(rng):
    # N > D takes the covariance's eigenvectors, N <= D the SVD: the same answer either way.
    x = rng.standard_normal((40, 6)) @ np.diag([6.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    tall = M.pca(x, 3)
    Xc = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)  # the reference, signed as pca signs
    signs = np.sign(vt[np.arange(3), np.argmax(np.abs(vt[:3]), axis=1)])
    np.testing.assert_allclose(tall[1], vt[:3] * signs[:, None], atol=1e-10)
    np.testing.assert_allclose(tall[2], s[:3] ** 2 / 40, rtol=1e-10)
    wide = M.pca(x[:5], 3)  # 5 rows, 6 columns: the SVD path
    np.testing.assert_allclose(wide[2], np.linalg.svd(x[:5] - x[:5].mean(axis=0),
                                                      compute_uv=False)[:3] ** 2 / 5, rtol=1e-10)


def test_pca_accepts_tensors_and_rejects_bad_k(rng):
    x = rng.standard_normal((10, 4))
    mean, comps, _ = M.pca(tg.tensor(x, dtype=tg.float64), 2)
    np.testing.assert_allclose(mean, x.mean(axis=0))
    with pytest.raises(ValueError, match="k must be"):
        M.pca(x, 5)


# ---- principal angles ----------------------------------------------------------------------------
def test_principal_angles_identical_subspaces_are_zero(rng):
    a = rng.standard_normal((10, 3))
    mix = rng.standard_normal((3, 3))  # another basis of the same column space
    np.testing.assert_allclose(M.principal_angles(a, a @ mix), 0, atol=1e-6)


def test_principal_angles_orthogonal_subspaces_are_right_angles():
    eye = np.eye(6)
    np.testing.assert_allclose(M.principal_angles(eye[:, :2], eye[:, 2:5]), math.pi / 2)


@pytest.mark.parametrize("t", [0.1, 0.7, 1.3])
def test_principal_angles_rotation_in_a_plane_gives_the_angle(t):
    # span{e0, e1} against span{e0, cos t e1 + sin t e2}: angles 0 and t
    eye = np.eye(5)
    a = eye[:, :2]
    b = np.stack([eye[:, 0], math.cos(t) * eye[:, 1] + math.sin(t) * eye[:, 2]], axis=1)
    np.testing.assert_allclose(M.principal_angles(a, b), [0, t], atol=1e-7)


# ---- MSE and PSNR --------------------------------------------------------------------------------
def test_psnr_of_known_mse():
    x = np.zeros((4, 10))
    r = np.full((4, 10), math.sqrt(0.0168))
    assert M.mse_per_pixel(x, r) == pytest.approx(0.0168)
    assert M.psnr(x, r) == pytest.approx(10 * math.log10(1 / 0.0168))
    assert M.psnr(x, r) == pytest.approx(17.75, abs=0.01)
    assert M.psnr(x, 2 * r, max_value=2.0) == pytest.approx(M.psnr(x, r))
    assert M.psnr(x, x) == math.inf


# ---- AUROC ---------------------------------------------------------------------------------------
def brute_force_auroc(scores, labels):
    pos = scores[labels == 1]
    neg = scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_brute_force_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=200).astype(float)  # many ties
    labels = (rng.random(200) < 0.3 + 0.05 * scores).astype(int)
    assert M.auroc(scores, labels) == pytest.approx(brute_force_auroc(scores, labels), abs=1e-12)


def test_auroc_perfect_inverted_and_random():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert M.auroc(scores, labels) == 1.0
    assert M.auroc(-scores, labels) == 0.0
    assert M.auroc(np.ones(5), labels) == 0.5
    rng = np.random.default_rng(0)
    assert M.auroc(rng.random(20000), rng.integers(0, 2, 20000)) == pytest.approx(0.5, abs=0.02)


def test_auroc_rejects_one_class_input():
    with pytest.raises(ValueError, match="both classes"):
        M.auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        M.auroc([0.1, 0.2], [0, 2])


# ---- cross-entropy and the linear probe ----------------------------------------------------------
def test_cross_entropy_matches_numpy_formula_and_gradcheck(rng):
    logits = rng.standard_normal((6, 4)) * 3
    labels = rng.integers(0, 4, size=6)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(6), labels].mean()
    t = tg.tensor(logits, dtype=tg.float64, requires_grad=True)
    assert F.cross_entropy(t, labels).item() == pytest.approx(expected, rel=1e-12)
    assert tg.gradcheck(lambda a: F.cross_entropy(a, labels), [t])


def test_cross_entropy_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        F.cross_entropy(tg.zeros(2, 3), np.array([0, 3]))


def separable_problem(rng, n, d=5, classes=3):
    centres = rng.standard_normal((classes, d)) * 4
    labels = rng.integers(0, classes, size=n)
    return centres[labels] + rng.standard_normal((n, d)) * 0.5 + 10, labels


def test_linear_probe_separates_linearly_separable_classes():
    x, y = separable_problem(np.random.default_rng(1), 450)
    x_train, y_train, x_test, y_test = x[:300], y[:300], x[300:], y[300:]
    state = tg.random.generator().bit_generator.state
    accuracy, layer = M.linear_probe(x_train, y_train, x_test, y_test, epochs=10,
                                     return_layer=True)
    assert accuracy > 0.9
    assert tg.random.generator().bit_generator.state == state  # the global generator is untouched
    # The returned layer takes raw features (the standardisation is folded into it).
    with tg.no_grad():
        predictions = layer(tg.tensor(x_test)).data.argmax(axis=1)
    assert np.mean(predictions == y_test) == pytest.approx(accuracy, abs=0.01)
    assert M.linear_probe(x_train, y_train, x_test, y_test, epochs=10) == accuracy


# ---- data completion -----------------------------------------------------------------------------
def test_masks_shapes_and_observed_fractions():
    half = M.bottom_half_mask(3)
    assert half.shape == (3, 784) and half.dtype == bool
    assert half.mean() == 0.5
    assert half.reshape(3, 28, 28)[:, :14].all() and not half.reshape(3, 28, 28)[:, 14:].any()
    block = M.random_block_mask(50, rng=0)
    assert block.shape == (50, 784) and block.dtype == bool
    np.testing.assert_array_equal((~block).sum(axis=1), 144)
    assert len({tuple(np.flatnonzero(~b)[:1]) for b in block}) > 1  # blocks move
    np.testing.assert_array_equal(M.random_block_mask(50, rng=0), block)


def test_complete_with_identity_keeps_observed_pixels_and_the_fill(rng):
    x = rng.random((4, 16)).astype(np.float32)
    observed = rng.random((4, 16)) < 0.5
    filled = M.complete(lambda a: a, x, observed, steps=3)
    np.testing.assert_array_equal(filled[observed], x[observed])
    fill = np.array([x[i][observed[i]].mean() for i in range(4)])
    np.testing.assert_allclose(filled, np.where(observed, x, fill[:, None]), rtol=1e-6)


def test_complete_with_a_perfect_reconstruction_is_exact(rng):
    x = rng.random((4, 784)).astype(np.float32)
    observed = M.bottom_half_mask(4)
    garbage = np.where(observed, x, 7.0)  # missing pixels of the input are never read
    filled = M.complete(lambda a: x, garbage, observed, steps=1)
    np.testing.assert_array_equal(filled, x)
    assert M.masked_mse(x, filled, ~observed) == 0


def test_complete_with_zero_steps_is_the_fill_and_negative_steps_raise(rng):
    x = rng.random((2, 16)).astype(np.float32)
    observed = rng.random((2, 16)) < 0.5
    never = M.complete(lambda a: pytest.fail("reconstruct called with steps=0"), x, observed,
                       steps=0, init=np.full(16, 0.25, dtype=np.float32))
    np.testing.assert_array_equal(never, np.where(observed, x, np.float32(0.25)))
    for steps in (-1, 2.5, True):
        with pytest.raises(ValueError, match="steps must be an integer >= 0"):
            M.complete(lambda a: a, x, observed, steps=steps)


def test_mean_image_fill_and_masked_mse(rng):
    x = rng.random((5, 9))
    observed = rng.random((5, 9)) < 0.5
    mean_image = x.mean(axis=0)
    filled = M.mean_image_fill(x, observed, mean_image)
    np.testing.assert_allclose(filled, np.where(observed, x, mean_image), rtol=1e-6)
    expected = np.mean(((x - mean_image) ** 2)[~observed])
    assert M.masked_mse(x, filled, ~observed) == pytest.approx(expected, rel=1e-6)


# ---- Jacobian norm -------------------------------------------------------------------------------
def test_jacobian_of_linear_encoder_is_frobenius_norm_of_weight(rng):
    w = rng.standard_normal((3, 7))
    x = rng.standard_normal((4, 7))
    wt = tg.tensor(w.T, dtype=tg.float64)
    norms = M.jacobian_frobenius_sq(lambda a: a @ wt, tg.tensor(x, dtype=tg.float64))
    np.testing.assert_allclose(norms, np.full(4, np.sum(w**2)), rtol=1e-12)


def test_jacobian_of_sigmoid_layer_matches_closed_form(rng):
    w = rng.standard_normal((3, 7))
    b = rng.standard_normal(3)
    x = rng.standard_normal((4, 7))
    wt = tg.tensor(w.T, dtype=tg.float64)
    bt = tg.tensor(b, dtype=tg.float64)
    norms = M.jacobian_frobenius_sq(lambda a: (a @ wt + bt).sigmoid(), x)
    z = 1 / (1 + np.exp(-(x @ w.T + b)))
    # dz_i/dx_j = z_i (1 - z_i) W_ij
    expected = np.sum((z * (1 - z)) ** 2 * np.sum(w**2, axis=1), axis=1)
    np.testing.assert_allclose(norms, expected, rtol=1e-12)


def test_ink_is_the_mean_intensity_per_image():
    images = np.zeros((2, 28, 28))
    images[1, 10:20, 10:12] = 1.0
    np.testing.assert_allclose(M.ink(images), [0.0, 20 / 784])


def test_slant_is_zero_for_a_vertical_bar_and_signed_for_leaning_bars():
    upright = np.zeros((28, 28))
    upright[4:24, 13] = 1.0
    right = np.zeros((28, 28))
    left = np.zeros((28, 28))
    for i, row in enumerate(range(4, 24)):  # the top row (4) is furthest right for `right`
        right[row, 18 - i // 4] = 1.0
        left[row, 9 + i // 4] = 1.0
    values = M.slant(np.stack([upright, right, left]))
    assert values[0] == pytest.approx(0.0, abs=1e-12)
    assert values[1] > 0.1 and values[2] < -0.1
    assert values[1] == pytest.approx(-values[2])
