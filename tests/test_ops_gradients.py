"""Every differentiable op, gradient-checked in float64 against central differences, first and
second order, including broadcasting, keepdims, negative axes, repeated indices and ties."""
import numpy as np
import pytest

import tinygen as tg
import tinygen.nn.functional as F


def _inputs(*arrays):
    return tuple(tg.tensor(a, dtype="float64", requires_grad=True) for a in arrays)


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _positive(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


def _away_from_zero(*shape, seed=0):
    """Values whose |x| > 0.1, so that kinks at 0 (relu, abs) are not straddled by eps."""
    x = _normal(*shape, seed=seed)
    return np.where(np.abs(x) < 0.1, 0.5, x)


# (id, function of Tensors, input arrays). Each case is checked to first and second order.
CASES = [
    ("add", lambda a, b: a + b, (_normal(3, 4), _normal(3, 4, seed=1))),
    ("add_broadcast", lambda a, b: a + b, (_normal(2, 3, 4), _normal(3, 1, seed=1))),
    ("add_scalar", lambda a: 2.5 + a, (_normal(3),)),
    ("sub_broadcast", lambda a, b: a - b, (_normal(4, 1), _normal(1, 5, seed=1))),
    ("rsub_scalar", lambda a: 1 - a, (_normal(3),)),
    ("mul_broadcast", lambda a, b: a * b, (_normal(2, 3), _normal(3, seed=1))),
    ("mul_self", lambda a: a * a * a, (_normal(4),)),
    ("div_broadcast", lambda a, b: a / b, (_normal(3, 4), _positive(4, seed=1))),
    ("rdiv_scalar", lambda a: 1 / a, (_positive(3),)),
    ("pow_scalar", lambda a: a ** 3, (_normal(5),)),
    ("pow_fractional", lambda a: a ** 1.5, (_positive(5),)),
    ("pow_tensor", lambda a, b: a ** b, (_positive(3, 2), _normal(2, seed=1))),
    ("rpow", lambda a: 2.0 ** a, (_normal(4),)),
    ("neg", lambda a: -a, (_normal(3),)),
    ("exp", lambda a: a.exp(), (_normal(3, 2),)),
    ("log", lambda a: a.log(), (_positive(3, 2),)),
    ("sqrt", lambda a: a.sqrt(), (_positive(6),)),
    ("abs", lambda a: a.abs(), (_away_from_zero(6),)),
    ("relu", lambda a: a.relu(), (_away_from_zero(6),)),
    ("sigmoid", lambda a: a.sigmoid(), (3 * _normal(6),)),
    ("tanh", lambda a: a.tanh(), (_normal(6),)),
    ("clip", lambda a: a.clip(-0.5, 0.7), (_away_from_zero(8) * 1.3 + 0.013,)),
    ("clip_min_only", lambda a: a.clip(min=0.2), (_away_from_zero(8) + 0.017,)),
    ("leaky_relu", lambda a: F.leaky_relu(a, 0.2), (_away_from_zero(6),)),
    ("softplus", lambda a: F.softplus(a), (4 * _normal(6),)),
    ("softplus_at_zero", lambda a: F.softplus(a), (np.zeros(3),)),
    ("log_sigmoid", lambda a: F.log_sigmoid(a), (4 * _normal(6),)),
    ("maximum", lambda a, b: tg.maximum(a, b), (_normal(3, 4), _normal(4, seed=1))),
    ("maximum_ties", lambda a, b: tg.maximum(a, b), (np.ones(3), np.ones(3))),
    ("minimum", lambda a, b: tg.minimum(a, b), (_normal(3, 4), _normal(3, 1, seed=1))),
    ("where", lambda a, b: tg.where(tg.tensor([True, False, True], device=a.device), a, b),
     (_normal(2, 3), _normal(3, seed=1))),
    ("matmul_2d", lambda a, b: a @ b, (_normal(3, 4), _normal(4, 2, seed=1))),
    ("matmul_batched", lambda a, b: a @ b, (_normal(2, 3, 4), _normal(2, 4, 5, seed=1))),
    ("matmul_broadcast_batch", lambda a, b: a @ b, (_normal(2, 1, 3, 4), _normal(3, 4, 2, seed=1))),
    ("matmul_vector_matrix", lambda a, b: a @ b, (_normal(4), _normal(4, 3, seed=1))),
    ("matmul_matrix_vector", lambda a, b: a @ b, (_normal(3, 4), _normal(4, seed=1))),
    ("matmul_vector_vector", lambda a, b: a @ b, (_normal(4), _normal(4, seed=1))),
    ("linear", lambda x, w, b: F.linear(x, w, b), (_normal(5, 4), _normal(3, 4, seed=1),
                                                   _normal(3, seed=2))),
    ("linear_no_bias", lambda x, w: F.linear(x, w), (_normal(5, 4), _normal(3, 4, seed=1))),
    ("linear_leading_axes", lambda x, w, b: F.linear(x, w, b),
     (_normal(2, 3, 4), _normal(5, 4, seed=1), _normal(5, seed=2))),
    ("linear_vector", lambda x, w, b: F.linear(x, w, b),
     (_normal(4), _normal(3, 4, seed=1), _normal(3, seed=2))),
    ("sum_all", lambda a: a.sum(), (_normal(3, 4),)),
    ("sum_axis", lambda a: a.sum(axis=1), (_normal(3, 4, 2),)),
    ("sum_negative_axis_keepdims", lambda a: a.sum(axis=-1, keepdims=True), (_normal(3, 4),)),
    ("sum_tuple_axes", lambda a: a.sum(axis=(0, 2)), (_normal(2, 3, 4),)),
    ("mean_axis", lambda a: a.mean(axis=0), (_normal(3, 4),)),
    ("mean_keepdims", lambda a: a.mean(axis=(-2, -1), keepdims=True), (_normal(2, 3, 4),)),
    ("max_all", lambda a: a.max(), (_normal(3, 4),)),
    ("max_axis", lambda a: a.max(axis=1), (_normal(3, 4),)),
    ("max_ties", lambda a: a.max(axis=1), (np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]]),)),
    ("min_axis_keepdims", lambda a: a.min(axis=-1, keepdims=True), (_normal(3, 4),)),
    ("var_all", lambda a: a.var(), (_normal(3, 4),)),
    ("var_axis_ddof", lambda a: a.var(axis=0, ddof=1), (_normal(4, 3),)),
    ("logsumexp_axis", lambda a: a.logsumexp(axis=1), (_normal(3, 4),)),
    ("logsumexp_large", lambda a: a.logsumexp(axis=-1, keepdims=True), (500 + _normal(2, 3),)),
    ("reshape", lambda a: a.reshape(4, 3) * tg.tensor(_normal(4, 3, seed=5), dtype="float64",
                                                      device=a.device),
     (_normal(3, 4),)),
    ("reshape_infer", lambda a: a.reshape(-1), (_normal(2, 3),)),
    ("transpose_default", lambda a: a.T, (_normal(3, 4),)),
    ("transpose_axes", lambda a: a.transpose(2, 0, 1), (_normal(2, 3, 4),)),
    ("transpose_swap_two", lambda a: a.transpose(0, 2), (_normal(2, 3, 4),)),
    ("flatten", lambda a: a.flatten(1), (_normal(2, 3, 4),)),
    ("squeeze_unsqueeze", lambda a: a.squeeze(1).unsqueeze(0), (_normal(3, 1, 2),)),
    ("broadcast_to", lambda a: a.broadcast_to((4, 2, 3)), (_normal(2, 1),)),
    ("getitem_int", lambda a: a[1], (_normal(3, 4),)),
    ("getitem_slices_steps", lambda a: a[::2, 1:-1], (_normal(5, 4),)),
    ("getitem_negative_step", lambda a: a[::-1], (_normal(4),)),
    ("getitem_int_array", lambda a: a[np.array([2, 0])], (_normal(3, 2),)),
    ("getitem_repeated_indices", lambda a: a[[0, 2, 0, 0]], (_normal(3, 2),)),
    ("getitem_bool_mask", lambda a: a[a.data > 0], (_normal(6),)),
    ("getitem_mixed", lambda a: a[:, [1, 1, 0], None], (_normal(2, 3),)),
    ("concatenate", lambda a, b: tg.concatenate([a, b], axis=1), (_normal(2, 3), _normal(2, 1))),
    ("concatenate_negative_axis", lambda a, b: tg.concatenate([a, b], axis=-1),
     (_normal(2, 2, 3), _normal(2, 2, 2))),
    ("stack", lambda a, b: tg.stack([a, b], axis=1), (_normal(2, 3), _normal(2, 3, seed=1))),
]


@pytest.mark.parametrize("fn, arrays", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences(fn, arrays):
    assert tg.gradcheck(fn, _inputs(*arrays), atol=1e-6, rtol=1e-4)


# At a tie the first derivative jumps, so finite differences of it measure the jump, not a
# derivative: ties are checked to first order only.
SMOOTH_CASES = [c for c in CASES if "ties" not in c[0]]


@pytest.mark.parametrize(
    "fn, arrays", [c[1:] for c in SMOOTH_CASES], ids=[c[0] for c in SMOOTH_CASES]
)
def test_second_derivative_matches_finite_differences(fn, arrays):
    assert tg.gradgradcheck(fn, _inputs(*arrays), atol=1e-5, rtol=1e-3)


def test_third_derivative_of_a_polynomial_is_exact():
    # f(x) = x^4: f' = 4x^3, f'' = 12x^2, f''' = 24x
    x = tg.tensor([1.5, -2.0], dtype="float64", requires_grad=True)
    (d1,) = tg.grad((x ** 4).sum(), x, create_graph=True)
    (d2,) = tg.grad(d1.sum(), x, create_graph=True)
    (d3,) = tg.grad(d2.sum(), x)
    np.testing.assert_allclose(d1.data, 4 * x.data ** 3)
    np.testing.assert_allclose(d2.data, 12 * x.data ** 2)
    np.testing.assert_allclose(d3.data, 24 * x.data)


def test_second_derivative_of_sigmoid_matches_closed_form():
    # s'' = s (1 - s) (1 - 2 s)
    x = tg.tensor(np.linspace(-3, 3, 7), dtype="float64", requires_grad=True)
    (d1,) = tg.grad(x.sigmoid().sum(), x, create_graph=True)
    (d2,) = tg.grad(d1.sum(), x)
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(d2.data, s * (1 - s) * (1 - 2 * s), rtol=1e-12)


def test_max_shares_gradient_equally_among_three_way_ties():
    # torch.amax's convention: each of the k tied maxima gets 1/k of the gradient.
    x = tg.tensor([[2.0, 2.0, 2.0], [0.0, 5.0, 1.0]], dtype="float64", requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]])
