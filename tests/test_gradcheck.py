"""gradcheck and gradgradcheck catch wrong derivatives, and pass right ones."""
import numpy as np
import pytest

import tinygen as tg
from tinygen.autograd import Function


class SquareWithWrongBackward(Function):
    """y = a^2 with the derivative off by a factor 2 (a bug gradcheck must catch)."""

    def forward(self, a):
        return a * a

    def backward(self, grad):
        (a,) = self.inputs
        return grad * a  # should be 2 a


class CubeWithDetachedBackward(Function):
    """y = a^3 with a right first derivative whose own graph is cut (wrong second derivative)."""

    def forward(self, a):
        return a ** 3

    def backward(self, grad):
        (a,) = self.inputs
        return grad * tg.tensor(3 * a.data ** 2, dtype=a.dtype)  # constant: no second derivative


def _x(*shape):
    return tg.tensor(np.random.default_rng(0).standard_normal(shape), dtype="float64",
                     requires_grad=True)


def test_gradcheck_raises_with_a_table_of_mismatches():
    with pytest.raises(tg.GradcheckError) as info:
        tg.gradcheck(SquareWithWrongBackward.apply, (_x(2, 3),))
    message = str(info.value)
    assert "6 gradient element(s) differ" in message
    assert "analytic" in message and "numeric" in message and "index" in message


def test_gradcheck_accepts_the_first_derivative_of_a_detached_backward():
    assert tg.gradcheck(CubeWithDetachedBackward.apply, (_x(4),))


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    with pytest.raises(tg.GradcheckError):
        tg.gradgradcheck(CubeWithDetachedBackward.apply, (_x(4),))


def test_gradgradcheck_passes_for_the_correct_cube():
    assert tg.gradgradcheck(lambda a: a ** 3, (_x(4),))


def test_gradcheck_sees_errors_in_any_output_of_a_tuple():
    def two_outputs(a):
        return a * 2, SquareWithWrongBackward.apply(a)

    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(two_outputs, (_x(3),))


def test_gradcheck_checks_a_sample_of_elements_when_asked(monkeypatch):
    calls = []
    x = _x(50)

    def f(a):
        calls.append(1)
        return a * a

    tg.gradcheck(f, (x,), max_elements=5)
    # 1 shape probe + 1 analytic pass + 2 evaluations per sampled element
    assert len(calls) == 2 + 2 * 5


def test_gradcheck_leaves_inputs_unchanged():
    x = _x(3, 2)
    before = x.data.copy()
    tg.gradcheck(lambda a: a.exp(), (x,))
    np.testing.assert_array_equal(x.data, before)


def test_gradcheck_refuses_float32_inputs():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        tg.gradcheck(lambda a: a * a, (x,))


def test_gradcheck_ignores_inputs_that_do_not_require_grad():
    x = _x(3)
    constant = tg.tensor([1.0, 2.0, 3.0], dtype="float64")
    assert tg.gradcheck(lambda a, c: a * c, (x, constant))


def test_gradcheck_handles_outputs_independent_of_an_input():
    a, b = _x(3), _x(2)
    assert tg.gradcheck(lambda a, b: a * 2, (a, b))


def test_gradcheck_perturbs_non_contiguous_inputs_in_place():
    # A transposed view: reshape(-1) of it would be a copy, and perturbing the copy would give
    # numeric derivatives of 0.
    base = np.arange(6.0).reshape(2, 3)
    x = tg.tensor(base, dtype="float64", requires_grad=True)
    x.data = x.data.T
    assert not x.data.flags["C_CONTIGUOUS"]
    assert tg.gradcheck(lambda t: t * t, [x])
