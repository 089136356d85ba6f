"""nn.functional activations against NumPy closed forms (float64), including extreme inputs."""
import numpy as np
import pytest

import tinygen as tg
import tinygen.nn.functional as F

X = np.array([-800.0, -30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0, 800.0])


def _ref_sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


REFERENCES = [
    ("relu", F.relu, lambda x: np.maximum(x, 0)),
    ("leaky_relu", lambda t: F.leaky_relu(t, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    ("sigmoid", F.sigmoid, _ref_sigmoid),
    ("tanh", F.tanh, np.tanh),
    ("softplus", F.softplus, lambda x: np.logaddexp(0, x)),
    ("log_sigmoid", F.log_sigmoid, lambda x: -np.logaddexp(0, -x)),
]


@pytest.mark.parametrize("fn, reference", [r[1:] for r in REFERENCES],
                         ids=[r[0] for r in REFERENCES])
def test_activation_matches_numpy_closed_form_even_at_extremes(fn, reference):
    out = fn(tg.tensor(X, dtype="float64"))
    np.testing.assert_allclose(out.data, reference(X), rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(out.data))


@pytest.mark.parametrize("fn", [F.sigmoid, F.softplus, F.log_sigmoid, F.tanh])
def test_activation_gradient_is_finite_at_extremes(fn):
    x = tg.tensor(X, dtype="float64", requires_grad=True)
    fn(x).sum().backward()
    assert np.all(np.isfinite(x.grad.data))


def test_leaky_relu_slope_at_zero_is_the_negative_slope_as_pytorch():
    x = tg.tensor([0.0], requires_grad=True)
    F.leaky_relu(x, 0.2).sum().backward()
    assert x.grad.item() == pytest.approx(0.2)


def test_softplus_derivative_at_zero_is_one_half():
    x = tg.tensor([0.0], requires_grad=True)
    F.softplus(x).sum().backward()
    assert x.grad.item() == pytest.approx(0.5)


def test_float32_stays_float32():
    x = tg.tensor([0.5, -1.0])
    for fn in (F.relu, F.sigmoid, F.tanh, F.softplus, F.log_sigmoid, F.leaky_relu):
        assert fn(x).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_log1p_is_as_accurate_as_numpys(dtype):
    # softplus computes log(1 + t), t = e^-|a| in (0, 1], as log(u) t / (u - 1) with u = 1 + t
    # (a vectorised log instead of log1p): within a few ulps of log1p, down to the tiniest t
    from tinygen.ops.elementwise import log1p_of_fraction

    t = np.concatenate([np.linspace(0, 1, 200_001), np.logspace(-45, 0, 2_000)]).astype(dtype)
    t = t[t >= np.finfo(dtype).smallest_subnormal]
    reference = np.log1p(t.astype(np.float64))
    got = log1p_of_fraction(t)
    assert got.dtype == dtype
    relative = np.abs(got - reference) / np.maximum(reference, np.finfo(np.float64).tiny)
    assert relative.max() <= 3 * np.finfo(dtype).eps
    a = np.array([-60.0, -17.0, -3.0, 0.0, 3.0, 17.0, 100.0], dtype=dtype)  # e^-60: no subnormal
    np.testing.assert_allclose(F.softplus(tg.tensor(a, dtype=dtype)).data,
                               np.logaddexp(0, a.astype(np.float64)), rtol=3 * np.finfo(dtype).eps)
