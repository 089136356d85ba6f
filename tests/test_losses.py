"""Losses against independent NumPy formulas (float64, every reduction), gradient-checked to first
and second order in every differentiable argument, at their numerical extremes, and against PyTorch
when it is installed."""
import math
import re

import numpy as np
import pytest

import tinygen as tg
from tinygen.nn import losses as L

REDUCTIONS = ["mean", "sum", "none", "batchmean"]


# ---- independent references (NumPy, float64) -----------------------------------------------------
def ref_reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss.sum() / loss.shape[0]


def ref_bce(p, y, w=1.0):
    with np.errstate(divide="ignore"):
        return -w * (y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100))


def ref_bce_with_logits(x, y, w=1.0, pw=1.0):
    # PyTorch's form: (1 - y) x + (1 + (pw - 1) y) log(1 + e^-x), log(1 + e^-x) written stably
    log1p_exp_minus_x = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))
    return w * ((1 - y) * x + (1 + (pw - 1) * y) * log1p_exp_minus_x)


def ref_gaussian_nll_loss(x, t, v, full=False, eps=1e-6):
    v = np.maximum(v, eps)
    return 0.5 * (np.log(v) + (x - t) ** 2 / v) + (0.5 * np.log(2 * np.pi) if full else 0.0)


def ref_minus_log_normal_pdf(t, m, logvar):
    sigma = np.sqrt(np.exp(logvar))
    pdf = np.exp(-((t - m) ** 2) / (2 * sigma ** 2)) / (sigma * np.sqrt(2 * np.pi))
    return -np.log(pdf)


def ref_kl_1d(mu, logvar):
    # KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2
    s1, m2, s2 = np.exp(0.5 * logvar), 0.0, 1.0
    return np.log(s2 / s1) + (s1 ** 2 + (mu - m2) ** 2) / (2 * s2 ** 2) - 0.5


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


# ---- data (B = 4, D = 3) -------------------------------------------------------------------------
_rng = np.random.default_rng(0)
X = _rng.standard_normal((4, 3))
Y = _rng.standard_normal((4, 3))
Y_APART = X + np.where(_rng.random((4, 3)) < 0.5, -1, 1) * _rng.uniform(0.2, 1.0, (4, 3))  # no ties
P = _rng.uniform(0.05, 0.95, (4, 3))
Y_SOFT = _rng.uniform(0.0, 1.0, (4, 3))
W = _rng.uniform(0.5, 2.0, (4, 3))
W_CLASS = _rng.uniform(0.5, 2.0, (3,))
PW_CLASS = _rng.uniform(0.5, 3.0, (3,))
VAR = _rng.uniform(0.3, 2.0, (4, 3))
VAR_ROW = _rng.uniform(0.3, 2.0, (4,))
LOGVAR = _rng.standard_normal((4, 3))
LOGVAR_FEATURE = _rng.standard_normal((3,))

# (id, tinygen loss of Tensors and a reduction, NumPy reference of arrays, input arrays). Every
# argument is differentiable, so each case is gradient-checked in all of them.
CASES = [
    ("mse", lambda x, y, r: L.mse_loss(x, y, r), lambda x, y: (x - y) ** 2, (X, Y)),
    ("l1", lambda x, y, r: L.l1_loss(x, y, r), lambda x, y: np.abs(x - y), (X, Y_APART)),
    ("bce", lambda p, y, r: L.binary_cross_entropy(p, y, reduction=r), ref_bce, (P, Y_SOFT)),
    ("bce_weight_per_class", lambda p, y, w, r: L.binary_cross_entropy(p, y, w, r), ref_bce,
     (P, Y_SOFT, W_CLASS)),
    ("bce_with_logits", lambda x, y, r: L.binary_cross_entropy_with_logits(x, y, reduction=r),
     ref_bce_with_logits, (3 * X, Y_SOFT)),
    ("bce_with_logits_weight_pos_weight",
     lambda x, y, w, pw, r: L.binary_cross_entropy_with_logits(x, y, w, r, pos_weight=pw),
     ref_bce_with_logits, (3 * X, Y_SOFT, W, PW_CLASS)),
    ("gaussian_nll_loss", lambda x, t, v, r: L.gaussian_nll_loss(x, t, v, reduction=r),
     ref_gaussian_nll_loss, (X, Y, VAR)),
    ("gaussian_nll_loss_full_var_per_row",
     lambda x, t, v, r: L.gaussian_nll_loss(x, t, v, full=True, reduction=r),
     lambda x, t, v: ref_gaussian_nll_loss(x, t, v[:, None], full=True), (X, Y, VAR_ROW)),
    ("gaussian_nll", lambda t, m, lv, r: L.gaussian_nll(t, m, lv, r), ref_minus_log_normal_pdf,
     (Y, X, LOGVAR)),
    ("gaussian_nll_logvar_per_feature", lambda t, m, lv, r: L.gaussian_nll(t, m, lv, r),
     ref_minus_log_normal_pdf, (Y, X, LOGVAR_FEATURE)),
    ("kl_normal", lambda mu, lv, r: L.kl_normal(mu, lv, r), ref_kl_1d, (X, LOGVAR)),
]
CASE_IDS = [c[0] for c in CASES]


def _f64(a, requires_grad=False):
    return tg.tensor(a, dtype="float64", requires_grad=requires_grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("fn, reference, arrays", [c[1:] for c in CASES], ids=CASE_IDS)
def test_loss_matches_numpy_formula(fn, reference, arrays, reduction):
    out = fn(*[_f64(a) for a in arrays], reduction)
    expected = ref_reduce(reference(*arrays), reduction)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fn, arrays", [(c[1], c[3]) for c in CASES], ids=CASE_IDS)
def test_gradient_in_every_argument_matches_finite_differences(fn, arrays):
    inputs = tuple(_f64(a, requires_grad=True) for a in arrays)
    assert tg.gradcheck(lambda *args: fn(*args, "none"), inputs, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("fn, arrays", [(c[1], c[3]) for c in CASES], ids=CASE_IDS)
def test_second_derivative_in_every_argument_matches_finite_differences(fn, arrays):
    inputs = tuple(_f64(a, requires_grad=True) for a in arrays)
    assert tg.gradgradcheck(lambda *args: fn(*args, "none"), inputs, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("reduction", ["mean", "sum", "batchmean"])
def test_reduced_loss_gradient_matches_finite_differences(reduction):
    inputs = (_f64(X, True), _f64(LOGVAR, True))
    assert tg.gradcheck(lambda mu, lv: L.kl_normal(mu, lv, reduction), inputs)
    assert tg.gradgradcheck(lambda mu, lv: L.kl_normal(mu, lv, reduction), inputs)


def test_third_derivative_of_kl_in_logvar_is_half_exp_logvar():
    # d^3/dlv^3 of -0.5 (1 + lv - mu^2 - e^lv) = 0.5 e^lv: losses differentiate to any order
    lv = _f64([-1.0, 0.0, 0.5], requires_grad=True)
    (d1,) = tg.grad(L.kl_normal(_f64(np.zeros(3)), lv, "sum"), lv, create_graph=True)
    (d2,) = tg.grad(d1.sum(), lv, create_graph=True)
    (d3,) = tg.grad(d2.sum(), lv)
    np.testing.assert_allclose(d3.data, 0.5 * np.exp(lv.data), rtol=1e-14)


def test_batchmean_of_a_0d_loss_is_its_sum():
    loss = L.kl_normal(_f64(1.5), 0.2, reduction="batchmean")
    assert loss.item() == pytest.approx(ref_kl_1d(1.5, 0.2), rel=1e-14)


# ---- binary cross-entropy on probabilities: PyTorch's floor of -100 per log term -----------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_at_probability_0_and_1_costs_100_per_wrong_element_without_nan(dtype):
    p = tg.tensor([0.0, 1.0, 0.0, 1.0, 0.0], dtype=dtype, requires_grad=True)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    with np.errstate(all="raise"):  # no log(0), no 0 / 0 anywhere, forward or backward
        loss = L.binary_cross_entropy(p, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_array_equal(loss.data, np.array([100, 100, 0, 0, 50], dtype=dtype))
    assert np.all(np.isfinite(p.grad.data))


def test_bce_gradient_at_0_and_1_is_that_of_the_floored_loss():
    # d/dp -[y max(log p, -100) + (1 - y) max(log(1 - p), -100)]: a floored term contributes 0,
    # an unfloored one its usual -y / p or (1 - y) / (1 - p). (PyTorch gives -y / 1e-12 at
    # p = 0 and -1e50 at p = 1e-50; the floored loss is flat there.)
    p = _f64([0.0, 1.0, 0.0, 1.0, 1e-50, 0.5], requires_grad=True)
    y = np.array([0.3, 0.3, 1.0, 0.0, 1.0, 0.2])
    L.binary_cross_entropy(p, y, reduction="sum").backward()
    np.testing.assert_allclose(p.grad.data, [0.7, -0.3, 0.0, 0.0, 0.0, 1.2], rtol=1e-15)


def test_bce_of_a_probability_below_e_to_minus_100_is_floored():
    loss = L.binary_cross_entropy(_f64([1e-50]), np.array([1.0]), reduction="sum")
    assert loss.item() == 100.0


@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan])
def test_bce_refuses_values_outside_the_unit_interval(bad):
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities "
                                         r"in \[0, 1\], but 1 value\(s\) lie outside"):
        L.binary_cross_entropy(_f64([0.5, bad]), np.array([0.0, 1.0]))


# ---- binary cross-entropy on logits -------------------------------------------------------------
X_EXTREME = np.array([1000.0, -1000.0, 1000.0, -1000.0, 1000.0, -1000.0, 0.0])
Y_EXTREME = np.array([1.0, 0.0, 0.0, 1.0, 0.25, 0.75, 0.5])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_at_1000_is_finite_and_its_gradient_exactly_sigmoid_minus_y(dtype):
    x = tg.tensor(X_EXTREME, dtype=dtype, requires_grad=True)
    y = Y_EXTREME.astype(dtype)
    loss = L.binary_cross_entropy_with_logits(x, y, reduction="none")
    # closed form: max(x, 0) - x y + log(1 + e^-|x|)
    x_, y_ = X_EXTREME, Y_EXTREME
    expected = np.maximum(x_, 0) - x_ * y_ + np.log1p(np.exp(-np.abs(x_)))
    np.testing.assert_allclose(loss.data, expected, rtol=1e-6 if dtype == "float32" else 1e-15)
    loss.sum().backward()
    np.testing.assert_array_equal(x.grad.data, _sigmoid(x.data) - y)


def test_bce_with_logits_mean_gradient_is_sigmoid_minus_y_over_n_with_weights():
    x = _f64(X_EXTREME, requires_grad=True)
    w = np.linspace(0.5, 2.0, X_EXTREME.size)
    L.binary_cross_entropy_with_logits(x, Y_EXTREME, weight=w).backward()
    expected = w * (_sigmoid(X_EXTREME) - Y_EXTREME) / X_EXTREME.size
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-15, atol=0)


def test_bce_with_logits_second_derivative_is_sigmoid_variance_even_at_extremes():
    # d^2/dx^2 [softplus(x) - x y] = s (1 - s), with s = sigmoid(x)
    x = _f64(X_EXTREME, requires_grad=True)
    loss = L.binary_cross_entropy_with_logits(x, Y_EXTREME, reduction="sum")
    (d1,) = tg.grad(loss, x, create_graph=True)
    (d2,) = tg.grad(d1.sum(), x)
    s = _sigmoid(X_EXTREME)
    np.testing.assert_array_equal(d2.data, s * (1 - s))


def test_bce_with_logits_and_pos_weight_stay_finite_at_extremes():
    x = _f64(X_EXTREME, requires_grad=True)
    pw = np.full(X_EXTREME.size, 3.0)
    loss = L.binary_cross_entropy_with_logits(x, Y_EXTREME, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(loss.data, ref_bce_with_logits(X_EXTREME, Y_EXTREME, pw=pw))
    loss.sum().backward()
    # d/dx = pw y (s - 1) + (1 - y) s
    s = _sigmoid(X_EXTREME)
    np.testing.assert_allclose(x.grad.data, pw * Y_EXTREME * (s - 1) + (1 - Y_EXTREME) * s)


def test_bce_with_logits_equals_bce_of_sigmoid_for_moderate_logits():
    x, y = _f64(3 * X), _f64(Y_SOFT)
    with_logits = L.binary_cross_entropy_with_logits(x, y, reduction="none")
    on_probabilities = L.binary_cross_entropy(x.sigmoid(), y, reduction="none")
    np.testing.assert_allclose(with_logits.data, on_probabilities.data, rtol=1e-12)


def test_pos_weight_of_one_changes_nothing():
    x, y = _f64(3 * X), _f64(Y_SOFT)
    plain = L.binary_cross_entropy_with_logits(x, y, reduction="none")
    weighted = L.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=np.ones(3))
    np.testing.assert_allclose(weighted.data, plain.data, rtol=1e-14)


# ---- Gaussian likelihoods ------------------------------------------------------------------------
def test_gaussian_nll_by_hand():
    # N(0; 0, 1): 0.5 log(2 pi); N(1; 0, e): 0.5 (log(2 pi) + 1 + 1/e)
    out = L.gaussian_nll(np.array([0.0, 1.0]), _f64([0.0, 0.0]), _f64([0.0, 1.0]), "none")
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(out.data, [half_log_2pi, half_log_2pi + 0.5 + 0.5 / math.e],
                               rtol=1e-15)


def test_gaussian_nll_loss_full_equals_gaussian_nll_with_var_exp_logvar():
    nll_loss = L.gaussian_nll_loss(_f64(X), Y, np.exp(LOGVAR), full=True, reduction="none")
    nll = L.gaussian_nll(Y, _f64(X), LOGVAR, reduction="none")
    np.testing.assert_allclose(nll_loss.data, nll.data, rtol=1e-12)


def test_gaussian_nll_loss_clamps_var_at_eps_but_passes_the_gradient_straight_through():
    # As torch: the forward uses max(var, eps); d/dvar is that of the loss at v = eps, not 0.
    eps, r = 1e-3, np.array([0.1, 0.01])
    var = _f64([0.0, 1e-5], requires_grad=True)
    loss = L.gaussian_nll_loss(_f64(r), np.zeros(2), var, eps=eps, reduction="sum")
    assert loss.item() == pytest.approx(np.sum(0.5 * (np.log(eps) + r ** 2 / eps)), rel=1e-14)
    loss.backward()
    np.testing.assert_allclose(var.grad.data, 0.5 * (1 / eps - r ** 2 / eps ** 2), rtol=1e-13)


@pytest.mark.parametrize("var_shape", [(4, 3, 5), (4, 3), (4, 3, 1), (4, 1, 5), (1, 3, 5), ()])
def test_gaussian_nll_loss_accepts_torchs_var_shapes(var_shape, rng):
    x, t = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))
    var = rng.uniform(0.5, 2.0, var_shape)
    out = L.gaussian_nll_loss(_f64(x), t, var, reduction="none")
    v = var[..., None] if var_shape == (4, 3) else var
    np.testing.assert_allclose(out.data, ref_gaussian_nll_loss(x, t, v), rtol=1e-13)


def test_gaussian_nll_loss_takes_a_number_as_var():
    out = L.gaussian_nll_loss(_f64(X), Y, 0.5, reduction="none")
    np.testing.assert_allclose(out.data, ref_gaussian_nll_loss(X, Y, 0.5), rtol=1e-13)


@pytest.mark.parametrize("var_shape", [(4, 2), (3, 5), (4, 1, 1), (5,)])
def test_gaussian_nll_loss_refuses_a_var_that_does_not_fit(var_shape):
    message = (f"gaussian_nll_loss: var of shape {var_shape} does not fit "
               "the input's shape (4, 3, 5)")
    with pytest.raises(ValueError, match=re.escape(message)):
        L.gaussian_nll_loss(tg.zeros(4, 3, 5), np.zeros((4, 3, 5)), np.ones(var_shape))


def test_gaussian_nll_loss_refuses_negative_var():
    with pytest.raises(ValueError, match="gaussian_nll_loss: var has negative entries"):
        L.gaussian_nll_loss(tg.zeros(2), np.zeros(2), np.array([1.0, -0.1]))


def test_gaussian_nll_refuses_a_logvar_that_would_enlarge_the_loss():
    with pytest.raises(ValueError, match=re.escape("gaussian_nll: logvar of shape (2, 4, 3) does "
                                                   "not broadcast to the input's shape (4, 3)")):
        L.gaussian_nll(np.zeros((4, 3)), tg.zeros(4, 3), np.zeros((2, 4, 3)))


# ---- KL( N(mu, s^2) || N(0, 1) ) ----------------------------------------------------------------
def test_kl_of_the_standard_normal_to_itself_is_zero_with_zero_gradient():
    mu, logvar = tg.zeros(3, 2, requires_grad=True), tg.zeros(3, 2, requires_grad=True)
    loss = L.kl_normal(mu, logvar, reduction="sum")
    assert loss.item() == 0.0
    loss.backward()
    assert np.all(mu.grad.data == 0) and np.all(logvar.grad.data == 0)


def test_kl_matches_a_monte_carlo_estimate():
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated with 200000 samples per dimension
    mu, logvar = np.array([0.5, -1.0, 2.0]), np.array([0.0, -1.0, 0.7])
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * np.random.default_rng(1).standard_normal((200_000, 3))
    log_q = -0.5 * (np.log(2 * np.pi) + logvar + ((z - mu) / sigma) ** 2)
    log_p = -0.5 * (np.log(2 * np.pi) + z ** 2)
    estimate = np.mean(log_q - log_p, axis=0)
    kl = L.kl_normal(_f64(mu), logvar, reduction="none")
    np.testing.assert_allclose(kl.data, estimate, atol=0.02)


# ---- conventions: reductions, shapes, dtypes -----------------------------------------------------
def _call(name, x, t, **kwargs):
    """Call loss `name` with x as the prediction and t as the other array argument."""
    calls = {
        "mse_loss": lambda: L.mse_loss(x, t, **kwargs),
        "l1_loss": lambda: L.l1_loss(x, t, **kwargs),
        "binary_cross_entropy": lambda: L.binary_cross_entropy(x, t, **kwargs),
        "binary_cross_entropy_with_logits":
            lambda: L.binary_cross_entropy_with_logits(x, t, **kwargs),
        "gaussian_nll_loss": lambda: L.gaussian_nll_loss(x, t, 1.0, **kwargs),
        "gaussian_nll": lambda: L.gaussian_nll(t, x, 0.0, **kwargs),
        "kl_normal": lambda: L.kl_normal(x, t, **kwargs),
    }
    return calls[name]()


NAMES = ["mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
         "gaussian_nll_loss", "gaussian_nll", "kl_normal"]


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_reduction_lists_the_options(name):
    message = f"{name}: reduction must be one of 'mean', 'sum', 'none', 'batchmean'; got 'avg'"
    with pytest.raises(ValueError, match=re.escape(message)):
        _call(name, tg.zeros(2, 3), np.zeros((2, 3)), reduction="avg")


@pytest.mark.parametrize("name", NAMES)
def test_a_shape_mismatch_names_the_loss_and_both_shapes(name):
    first, second = {"gaussian_nll": ("target", "mean"), "kl_normal": ("mu", "logvar")}.get(
        name, ("input", "target"))
    shapes = ("(3, 4)", "(3, 1)") if name != "gaussian_nll" else ("(3, 1)", "(3, 4)")
    message = f"{name}: {first} shape {shapes[0]} and {second} shape {shapes[1]} differ"
    with pytest.raises(ValueError, match=re.escape(message)):
        _call(name, tg.zeros(3, 4), np.zeros((3, 1)))


@pytest.mark.parametrize("name", NAMES)
def test_a_prediction_that_is_not_a_tensor_is_refused(name):
    with pytest.raises(TypeError, match=f"{name}: .* must be a Tensor, got ndarray"):
        _call(name, np.zeros(3), np.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32_with_a_float64_numpy_target(name):
    x = tg.tensor([0.2, 0.7, 0.5], requires_grad=True)
    loss = _call(name, x, np.array([0.0, 1.0, 0.25]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32


def test_boolean_pixels_are_a_valid_bce_target():
    p = _f64([0.9, 0.2])
    expected = L.binary_cross_entropy(p, np.array([1.0, 0.0]), reduction="none").data
    from_tensor = L.binary_cross_entropy(p, tg.tensor([True, False]), reduction="none")
    pixels = np.array([255, 0], dtype=np.uint8) // 255
    from_uint8 = L.binary_cross_entropy(p, pixels, reduction="none")
    np.testing.assert_array_equal(from_tensor.data, expected)
    np.testing.assert_array_equal(from_uint8.data, expected)


@pytest.mark.parametrize("weight_shape", [(3,), (2, 3, 4)])
@pytest.mark.parametrize("loss", [L.binary_cross_entropy, L.binary_cross_entropy_with_logits])
def test_a_weight_that_does_not_broadcast_to_the_input_is_refused(loss, weight_shape):
    message = f"weight of shape {weight_shape} does not broadcast to the input's shape (3, 4)"
    with pytest.raises(ValueError, match=re.escape(message)):
        loss(tg.ones(3, 4) * 0.5, np.ones((3, 4)), weight=np.ones(weight_shape))


def test_a_pos_weight_that_does_not_broadcast_to_the_input_is_refused():
    with pytest.raises(ValueError, match=re.escape("pos_weight of shape (3,) does not broadcast")):
        L.binary_cross_entropy_with_logits(tg.zeros(3, 4), np.ones((3, 4)), pos_weight=np.ones(3))


# ---- optional: the same numbers as PyTorch ------------------------------------------------------
def _torch_cases(torch):
    F = torch.nn.functional
    normal = torch.distributions.Normal
    var_with_zeros = np.where(np.arange(12).reshape(4, 3) % 2 == 0, 0.0, VAR)  # half below eps
    # (id, tinygen loss, torch loss, arrays, how many leading arrays to compare gradients of)
    return [
        ("mse", L.mse_loss, lambda x, y, r: F.mse_loss(x, y, reduction=r), (X, Y), 2),
        ("l1", L.l1_loss, lambda x, y, r: F.l1_loss(x, y, reduction=r), (X, Y_APART), 2),
        ("bce_weight", lambda p, y, w, r: L.binary_cross_entropy(p, y, w, r),
         lambda p, y, w, r: F.binary_cross_entropy(p, y, w, reduction=r), (P, Y_SOFT, W_CLASS), 2),
        ("bce_at_0_and_1", lambda p, y, r: L.binary_cross_entropy(p, y, reduction=r),
         lambda p, y, r: F.binary_cross_entropy(p, y, reduction=r),
         (np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0])), 0),
        ("bce_with_logits", lambda x, y, w, pw, r: L.binary_cross_entropy_with_logits(
            x, y, w, r, pos_weight=pw),
         lambda x, y, w, pw, r: F.binary_cross_entropy_with_logits(x, y, w, reduction=r,
                                                                    pos_weight=pw),
         (3 * X, Y_SOFT, W, PW_CLASS), 2),
        ("bce_with_logits_extremes",
         lambda x, y, r: L.binary_cross_entropy_with_logits(x, y, reduction=r),
         lambda x, y, r: F.binary_cross_entropy_with_logits(x, y, reduction=r),
         (X_EXTREME, Y_EXTREME), 2),
        ("gaussian_nll_loss_clamped", lambda x, t, v, r: L.gaussian_nll_loss(x, t, v, reduction=r),
         lambda x, t, v, r: F.gaussian_nll_loss(x, t, v, reduction=r), (X, Y, var_with_zeros), 3),
        ("gaussian_nll_loss_full_var_per_row",
         lambda x, t, v, r: L.gaussian_nll_loss(x, t, v, full=True, reduction=r),
         lambda x, t, v, r: F.gaussian_nll_loss(x, t, v, full=True, reduction=r),
         (X, Y, VAR_ROW), 3),
        ("gaussian_nll", lambda t, m, lv, r: L.gaussian_nll(t, m, lv, r),
         lambda t, m, lv, r: F.gaussian_nll_loss(m, t, lv.exp(), full=True, reduction=r),
         (Y, X, LOGVAR), 3),
        ("kl_normal", lambda mu, lv, r: L.kl_normal(mu, lv, r),
         lambda mu, lv, r: _torch_reduce(torch.distributions.kl_divergence(
             normal(mu, (0.5 * lv).exp()), normal(torch.zeros_like(mu), torch.ones_like(mu))), r),
         (X, LOGVAR), 2),
    ]


def _torch_reduce(loss, reduction):
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


TORCH_CASE_IDS = ["mse", "l1", "bce_weight", "bce_at_0_and_1", "bce_with_logits",
                  "bce_with_logits_extremes", "gaussian_nll_loss_clamped",
                  "gaussian_nll_loss_full_var_per_row", "gaussian_nll", "kl_normal"]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case_id", TORCH_CASE_IDS)
def test_loss_and_gradients_match_pytorch(case_id, reduction):
    torch = pytest.importorskip("torch")
    cases = {c[0]: c[1:] for c in _torch_cases(torch)}
    ours, theirs, arrays, n_grad = cases[case_id]
    mine = [_f64(a, requires_grad=i < n_grad) for i, a in enumerate(arrays)]
    ref = [torch.tensor(a, dtype=torch.float64, requires_grad=i < n_grad)
           for i, a in enumerate(arrays)]
    out, expected = ours(*mine, reduction), theirs(*ref, reduction)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    if n_grad:
        seed = np.random.default_rng(2).standard_normal(out.shape)
        out.backward(_f64(seed))
        expected.backward(torch.tensor(seed))
        for a, b in zip(mine[:n_grad], ref[:n_grad]):
            np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-12, atol=1e-14)
