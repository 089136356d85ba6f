"""Property tests: broadcasting in tinygen's binary ops, batched matmul and reductions vs NumPy.

Hypothesis draws small mutually broadcastable shapes (at most 4 axes of at most 4 elements; from
mutually_broadcastable_shapes and from a strategy that nearly always stretches an axis) and
float64 data in [-3, 3]. Every property is checked against a reference that does not use tinygen:

* forward values and output shapes against NumPy itself (np.add, np.matmul, np.var, ...);
* gradients of loss = sum(op(a, b) * w), for a random weight array w of the output's shape,
  against an explicit Python loop over every output index (np.ndindex). Each output index is
  mapped back to the input element it read (an input axis of length 1, or a leading axis the
  input lacks, reads index 0), and w[index] times the op's local partial derivative, written
  out in closed form here, is added to that element's gradient.
"""
import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygen

MAX_DIMS = 4
MAX_SIDE = 4
RTOL = 1e-10
ATOL = 1e-12

VALUES = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, width=64)
# A few exact values mixed in, so that maximum and minimum often see ties (a == b).
TIE_PRONE_VALUES = st.one_of(st.sampled_from([-1.0, 0.0, 1.0]), VALUES)


# ---- helpers -------------------------------------------------------------------------------
def leaf(array):
    """A float64 leaf tensor that requires grad."""
    return tinygen.tensor(array, dtype="float64", requires_grad=True)


def input_index(out_index, in_shape):
    """The index of the input element that broadcasting reads for output element out_index.

    The input's axes line up with the output's last axes; an axis of length 1 always reads 0,
    and output axes in front of the input's first axis are dropped.
    """
    lead = len(out_index) - len(in_shape)
    index = []
    for axis, length in enumerate(in_shape):
        if length == 1:
            index.append(0)
        else:
            index.append(out_index[lead + axis])
    return tuple(index)


def assert_grad(tensor, expected):
    """tensor.grad exists, has the input's shape and dtype, and equals expected."""
    assert tensor.grad is not None
    assert tensor.grad.shape == tensor.shape
    assert tensor.grad.dtype == np.float64
    np.testing.assert_allclose(tensor.grad.data, expected, rtol=RTOL, atol=ATOL)


# ---- closed-form local partial derivatives (x: the element of a, y: the element of b) --------
def add_partials(x, y):
    # d(x + y)/dx = 1, d(x + y)/dy = 1
    return 1.0, 1.0


def sub_partials(x, y):
    # d(x - y)/dx = 1, d(x - y)/dy = -1
    return 1.0, -1.0


def mul_partials(x, y):
    # d(x * y)/dx = y, d(x * y)/dy = x
    return y, x


def div_partials(x, y):
    # d(x / y)/dx = 1 / y, d(x / y)/dy = -x / y^2
    return 1.0 / y, -x / y**2


def pow_partials(x, y):
    # d(x^y)/dx = y x^(y - 1), d(x^y)/dy = x^y ln(x)   (x > 0 here)
    return y * x ** (y - 1.0), x**y * np.log(x)


def maximum_partials(x, y):
    # max(x, y): the larger argument has derivative 1, the other 0; a tie splits it 1/2, 1/2.
    if x > y:
        return 1.0, 0.0
    if x < y:
        return 0.0, 1.0
    return 0.5, 0.5


def minimum_partials(x, y):
    # min(x, y): the smaller argument has derivative 1, the other 0; a tie splits it 1/2, 1/2.
    if x < y:
        return 1.0, 0.0
    if x > y:
        return 0.0, 1.0
    return 0.5, 0.5


# ---- the binary ops under test ---------------------------------------------------------------
def unchanged(array):
    return array


def away_from_zero(array):
    """Push values to |v| >= 2, keeping their sign (divisors)."""
    return np.where(array < 0, array - 2.0, array + 2.0)


def positive_base(array):
    """|v| + 2, so that x^y and ln(x) are defined and tame (pow bases)."""
    return np.abs(array) + 2.0


@dataclass(frozen=True)
class BinaryOp:
    tinygen_fn: Callable
    numpy_fn: Callable
    partials: Callable
    prepare_a: Callable = unchanged
    prepare_b: Callable = unchanged
    elements: st.SearchStrategy = VALUES


BINARY_OPS = [
    pytest.param(BinaryOp(operator.add, np.add, add_partials), id="add"),
    pytest.param(BinaryOp(operator.sub, np.subtract, sub_partials), id="sub"),
    pytest.param(BinaryOp(operator.mul, np.multiply, mul_partials), id="mul"),
    pytest.param(
        BinaryOp(operator.truediv, np.divide, div_partials, prepare_b=away_from_zero), id="div"
    ),
    pytest.param(
        BinaryOp(operator.pow, np.power, pow_partials, prepare_a=positive_base), id="pow"
    ),
    pytest.param(
        BinaryOp(tinygen.maximum, np.maximum, maximum_partials, elements=TIE_PRONE_VALUES),
        id="maximum",
    ),
    pytest.param(
        BinaryOp(tinygen.minimum, np.minimum, minimum_partials, elements=TIE_PRONE_VALUES),
        id="minimum",
    ),
]


# ---- shape strategies --------------------------------------------------------------------------
@st.composite
def stretched_shapes(draw, num_shapes, max_dims):
    """Input shapes cut from one common shape (sides >= 2): each input drops some leading axes
    and shrinks some others to 1. Nearly every draw makes some input really broadcast, which
    mutually_broadcastable_shapes alone does in only a fraction of its draws."""
    common = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=2, max_side=MAX_SIDE))
    shapes = []
    for _ in range(num_shapes):
        dropped = draw(st.integers(0, len(common)))
        kept = common[dropped:]
        to_one = draw(st.lists(st.booleans(), min_size=len(kept), max_size=len(kept)))
        shape = []
        for side, shrink in zip(kept, to_one):
            if shrink:
                shape.append(1)
            else:
                shape.append(side)
        shapes.append(tuple(shape))
    return tuple(shapes)


@st.composite
def broadcastable_shapes(draw, num_shapes, max_dims=MAX_DIMS):
    """num_shapes mutually broadcastable shapes, from hypothesis's strategy or stretched_shapes."""
    use_hypothesis_strategy = draw(st.booleans())
    if use_hypothesis_strategy:
        shapes = draw(
            hnp.mutually_broadcastable_shapes(
                num_shapes=num_shapes, min_dims=0, max_dims=max_dims, max_side=MAX_SIDE
            )
        )
        return shapes.input_shapes
    return draw(stretched_shapes(num_shapes, max_dims))


@st.composite
def broadcast_operands(draw, elements):
    """(a, b, w): float64 arrays of mutually broadcastable shapes, w of the broadcast shape."""
    a_shape, b_shape = draw(broadcastable_shapes(2))
    out_shape = np.broadcast_shapes(a_shape, b_shape)
    a = draw(hnp.arrays(np.float64, a_shape, elements=elements))
    b = draw(hnp.arrays(np.float64, b_shape, elements=elements))
    w = draw(hnp.arrays(np.float64, out_shape, elements=VALUES))
    return a, b, w


def binary_grad_reference(a, b, w, partials):
    """dL/da and dL/db for L = sum(op(a, b) * w), by a loop over every output element."""
    out_shape = np.broadcast_shapes(a.shape, b.shape)
    grad_a = np.zeros(a.shape)
    grad_b = np.zeros(b.shape)
    for out_index in np.ndindex(*out_shape):
        a_index = input_index(out_index, a.shape)
        b_index = input_index(out_index, b.shape)
        d_a, d_b = partials(a[a_index], b[b_index])
        # Chain rule: dL/da[i] = sum over the outputs that read a[i] of w[out] * d op/da.
        grad_a[a_index] += w[out_index] * d_a
        grad_b[b_index] += w[out_index] * d_b
    return grad_a, grad_b


@pytest.mark.parametrize("op", BINARY_OPS)
@given(data=st.data())
def test_binary_op_forward_matches_numpy_value_and_broadcast_shape(op, data):
    a, b, _ = data.draw(broadcast_operands(op.elements))
    a = op.prepare_a(a)
    b = op.prepare_b(b)

    out = op.tinygen_fn(leaf(a), leaf(b))

    assert out.shape == np.broadcast_shapes(a.shape, b.shape)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, op.numpy_fn(a, b), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op", BINARY_OPS)
@given(data=st.data())
def test_binary_op_grads_match_explicit_ndindex_loop_reference(op, data):
    a, b, w = data.draw(broadcast_operands(op.elements))
    a = op.prepare_a(a)
    b = op.prepare_b(b)
    ta = leaf(a)
    tb = leaf(b)

    loss = (op.tinygen_fn(ta, tb) * leaf(w)).sum()
    loss.backward()

    expected_a, expected_b = binary_grad_reference(a, b, w, op.partials)
    assert_grad(ta, expected_a)
    assert_grad(tb, expected_b)


# ---- where with a broadcast boolean condition ------------------------------------------------
@st.composite
def where_operands(draw):
    """(cond, a, b, w): cond boolean, a and b float64, all three mutually broadcastable."""
    cond_shape, a_shape, b_shape = draw(broadcastable_shapes(3))
    out_shape = np.broadcast_shapes(cond_shape, a_shape, b_shape)
    cond = draw(hnp.arrays(np.bool_, cond_shape))
    a = draw(hnp.arrays(np.float64, a_shape, elements=VALUES))
    b = draw(hnp.arrays(np.float64, b_shape, elements=VALUES))
    w = draw(hnp.arrays(np.float64, out_shape, elements=VALUES))
    return cond, a, b, w


@given(operands=where_operands())
def test_where_forward_matches_np_where_value_and_broadcast_shape(operands):
    cond, a, b, _ = operands

    out = tinygen.where(tinygen.tensor(cond), leaf(a), leaf(b))

    assert out.shape == np.broadcast_shapes(cond.shape, a.shape, b.shape)
    np.testing.assert_allclose(out.data, np.where(cond, a, b), rtol=RTOL, atol=ATOL)


@given(operands=where_operands())
def test_where_grads_match_explicit_ndindex_loop_reference(operands):
    cond, a, b, w = operands
    ta = leaf(a)
    tb = leaf(b)

    loss = (tinygen.where(tinygen.tensor(cond), ta, tb) * leaf(w)).sum()
    loss.backward()

    out_shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    expected_a = np.zeros(a.shape)
    expected_b = np.zeros(b.shape)
    for out_index in np.ndindex(*out_shape):
        # out = a if cond else b:  d out/da = [cond], d out/db = 1 - [cond]
        if cond[input_index(out_index, cond.shape)]:
            expected_a[input_index(out_index, a.shape)] += w[out_index]
        else:
            expected_b[input_index(out_index, b.shape)] += w[out_index]
    assert_grad(ta, expected_a)
    assert_grad(tb, expected_b)


# ---- batched matmul: (B?, n, k) @ (B'?, k, m) with broadcastable batch axes -------------------
@st.composite
def matmul_operands(draw):
    """(a, b, w): a (B..., n, k), b (B'..., k, m) with 0..2 mutually broadcastable batch axes,
    w of the output's shape (broadcast(B, B')..., n, m)."""
    a_batch, b_batch = draw(broadcastable_shapes(2, max_dims=2))
    n = draw(st.integers(1, MAX_SIDE))
    k = draw(st.integers(1, MAX_SIDE))
    m = draw(st.integers(1, MAX_SIDE))
    out_shape = np.broadcast_shapes(a_batch, b_batch) + (n, m)
    a = draw(hnp.arrays(np.float64, a_batch + (n, k), elements=VALUES))
    b = draw(hnp.arrays(np.float64, b_batch + (k, m), elements=VALUES))
    w = draw(hnp.arrays(np.float64, out_shape, elements=VALUES))
    return a, b, w


@given(operands=matmul_operands())
def test_batched_matmul_forward_matches_np_matmul_value_and_shape(operands):
    a, b, _ = operands

    out = leaf(a) @ leaf(b)

    expected = np.matmul(a, b)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=RTOL, atol=ATOL)


@given(operands=matmul_operands())
def test_batched_matmul_grads_match_einsum_batch_loop_reference(operands):
    a, b, w = operands
    ta = leaf(a)
    tb = leaf(b)

    loss = ((ta @ tb) * leaf(w)).sum()
    loss.backward()

    batch_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    expected_a = np.zeros(a.shape)
    expected_b = np.zeros(b.shape)
    for batch_index in np.ndindex(*batch_shape):
        a_index = input_index(batch_index, a.shape[:-2])
        b_index = input_index(batch_index, b.shape[:-2])
        w_mat = w[batch_index]
        # C = A B, L = sum(C * W):  dL/dA = W B^T  (dA[n,k] = sum_m W[n,m] B[k,m]),
        #                           dL/dB = A^T W  (dB[k,m] = sum_n A[n,k] W[n,m]),
        # accumulated over every batch element that read this A or B matrix.
        expected_a[a_index] += np.einsum("nm,km->nk", w_mat, b[b_index])
        expected_b[b_index] += np.einsum("nk,nm->km", a[a_index], w_mat)
    assert_grad(ta, expected_a)
    assert_grad(tb, expected_b)


# ---- reductions: axis None, int (negative too) or tuple, keepdims True/False ----------------
@st.composite
def reduction_case(draw):
    """(x, axis, keepdims): x float64 of 0..4 axes; axis None, an int or a tuple of axes."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    x = draw(hnp.arrays(np.float64, shape, elements=TIE_PRONE_VALUES))
    ndim = len(shape)
    choices = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim > 0:
        choices.append(st.integers(-ndim, ndim - 1))
    axis = draw(st.one_of(*choices))
    keepdims = draw(st.booleans())
    return x, axis, keepdims


REDUCTIONS = [
    pytest.param("sum", np.sum, id="sum"),
    pytest.param("mean", np.mean, id="mean"),
    pytest.param("max", np.max, id="max"),
    pytest.param("var", np.var, id="var"),  # ddof=0 on both sides
]


@pytest.mark.parametrize(("method", "numpy_fn"), REDUCTIONS)
@given(case=reduction_case())
def test_reduction_forward_matches_numpy_for_axis_and_keepdims(method, numpy_fn, case):
    x, axis, keepdims = case

    out = getattr(leaf(x), method)(axis=axis, keepdims=keepdims)

    expected = numpy_fn(x, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=RTOL, atol=ATOL)


def reduced_count(shape, axis):
    """How many input elements each output element of a reduction over axis gathers."""
    if axis is None:
        axes = range(len(shape))
    elif isinstance(axis, int):
        axes = [axis]
    else:
        axes = axis
    count = 1
    for a in axes:
        count *= shape[a]
    return count


@pytest.mark.parametrize("method", ["sum", "mean"])
@given(case=reduction_case())
def test_sum_and_mean_grads_are_input_shaped_constants(method, case):
    x, axis, keepdims = case
    t = leaf(x)

    getattr(t, method)(axis=axis, keepdims=keepdims).sum().backward()

    # L = sum over outputs of reduce(x): d sum/dx_i = 1, d mean/dx_i = 1 / (elements averaged).
    if method == "sum":
        expected = np.ones(x.shape)
    else:
        expected = np.full(x.shape, 1.0 / reduced_count(x.shape, axis))
    assert_grad(t, expected)
