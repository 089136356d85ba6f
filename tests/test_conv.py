"""The convolution pair (tinygen.ops.conv2d, conv_transpose2d) and its NumPy kernels, checked
against plain direct-loop references written here, independently of the im2col kernels.

- forward of both ops vs the loop references: strides 1-3, paddings 0-2, every legal
  output_padding, odd and even sizes, non-square kernels / strides / paddings given as pairs,
  1x1 kernels, kernels as large as the padded input, with and without bias;
- the three raw kernels vs the adjoint identity <conv(x, w), gy> = <x, gx> = <w, gw> and vs central
  differences of the loop reference;
- first, second and third derivatives of both ops vs finite differences (tinygen.gradcheck);
- dtypes, output shapes, and the error messages for bad arguments.
"""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen as tg
from tinygen.kernels import numpy_conv as kernels
from tinygen.ops import conv2d, conv_transpose2d

# ---- independent references: direct loops, no im2col -----------------------------------------

def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def conv2d_loops(x, w, stride=1, padding=0):
    """y[n, o, p, q] = sum_{c, i, j} x_padded[n, c, p*sh + i, q*sw + j] * w[o, c, i, j]."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    n_batch, c_in, h, width = x.shape
    c_out, _, kh, kw = w.shape
    x_padded = np.zeros((n_batch, c_in, h + 2 * ph, width + 2 * pw), dtype=np.float64)
    x_padded[:, :, ph:ph + h, pw:pw + width] = x
    out_h = (h + 2 * ph - kh) // sh + 1
    out_w = (width + 2 * pw - kw) // sw + 1
    y = np.zeros((n_batch, c_out, out_h, out_w), dtype=np.float64)
    for n in range(n_batch):
        for o in range(c_out):
            for p in range(out_h):
                for q in range(out_w):
                    total = 0.0
                    for c in range(c_in):
                        for i in range(kh):
                            for j in range(kw):
                                total += x_padded[n, c, p * sh + i, q * sw + j] * w[o, c, i, j]
                    y[n, o, p, q] = total
    return y


def conv_transpose2d_loops(x, w, stride=1, padding=0, output_padding=0):
    """Scatter form: out[n, o, p*sh + i - ph, q*sw + j - pw] += x[n, c, p, q] * w[c, o, i, j],
    dropping positions outside the (H - 1) s - 2 p + k + output_padding output."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oph, opw = _pair(output_padding)
    n_batch, c_in, h, width = x.shape
    _, c_out, kh, kw = w.shape
    out_h = (h - 1) * sh - 2 * ph + kh + oph
    out_w = (width - 1) * sw - 2 * pw + kw + opw
    out = np.zeros((n_batch, c_out, out_h, out_w), dtype=np.float64)
    for n in range(n_batch):
        for c in range(c_in):
            for p in range(h):
                for q in range(width):
                    for o in range(c_out):
                        for i in range(kh):
                            for j in range(kw):
                                row = p * sh + i - ph
                                col = q * sw + j - pw
                                if 0 <= row < out_h and 0 <= col < out_w:
                                    out[n, o, row, col] += x[n, c, p, q] * w[c, o, i, j]
    return out


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _t64(array, requires_grad=False):
    return tg.tensor(array, dtype="float64", requires_grad=requires_grad)


def _central_difference_gradient(f, array, h=0.5):
    """dS/d array by central differences, S = f(array) a scalar. Exact up to rounding when f is
    linear in array (as the convolution is in each argument), whatever the step h."""
    grad = np.zeros_like(array)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + h
        plus = f(array)
        flat[k] = original - h
        minus = f(array)
        flat[k] = original
        grad_flat[k] = (plus - minus) / (2 * h)
    return grad


# ---- a sanity check of the references themselves ---------------------------------------------

def test_conv2d_loop_reference_matches_a_hand_computed_example():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[p, q] - x[p + 1, q + 1] = -5 everywhere
    np.testing.assert_array_equal(conv2d_loops(x, w), np.full((1, 1, 3, 3), -5.0))
    y = conv2d_loops(x, np.ones((1, 1, 1, 1)), stride=2, padding=1)
    expected = np.array([[0.0, 0.0, 0.0], [0.0, 5.0, 7.0], [0.0, 13.0, 15.0]])
    np.testing.assert_array_equal(y[0, 0], expected)


def test_conv_transpose2d_loop_reference_matches_a_hand_computed_example():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.ones((1, 1, 2, 2))
    out = conv_transpose2d_loops(x, w, stride=1)
    expected = np.array([[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]])
    np.testing.assert_array_equal(out[0, 0], expected)
    # stride 2 with a 2x2 kernel tiles each input pixel into its own 2x2 block
    out = conv_transpose2d_loops(x, w, stride=2, output_padding=1)
    expected = np.kron(x[0, 0], np.ones((2, 2)))
    np.testing.assert_array_equal(out[0, 0, :4, :4], expected)
    np.testing.assert_array_equal(out[0, 0, 4, :], 0.0)


def test_loop_references_are_adjoint_to_each_other(rng):
    x, w = _normal(rng, (2, 2, 5, 4)), _normal(rng, (3, 2, 3, 2))
    y = conv2d_loops(x, w, stride=(2, 1), padding=(1, 0))
    gy = _normal(rng, y.shape)
    # (5 + 2 - 3) // 2 + 1 = 3 rows: 5 = (3 - 1) * 2 - 2 + 3 + 0, so output_padding 0 restores H
    gx = conv_transpose2d_loops(gy, w, stride=(2, 1), padding=(1, 0), output_padding=(0, 0))
    assert gx.shape == x.shape
    np.testing.assert_allclose(np.sum(y * gy), np.sum(x * gx), rtol=1e-12)


# ---- forward vs the loop references -----------------------------------------------------------

# (x shape, weight shape (C_out, C_in, kH, kW), stride, padding)
CONV2D_GRID = [
    ((2, 3, size, size), (2, 3, 3, 3), stride, padding)
    for size in (5, 6)
    for stride in (1, 2, 3)
    for padding in (0, 1, 2)
]
CONV2D_SPECIAL = [
    pytest.param((1, 2, 5, 6), (3, 2, 2, 3), (2, 1), (1, 0), id="kernel_2x3_stride_2x1_pad_1x0"),
    pytest.param((2, 2, 7, 4), (2, 2, 3, 1), (1, 3), (0, 2), id="kernel_3x1_stride_1x3_pad_0x2"),
    pytest.param((1, 3, 6, 5), (2, 3, 4, 2), [3, 2], [2, 1], id="pairs_as_lists"),
    pytest.param((2, 3, 4, 5), (4, 3, 1, 1), 1, 0, id="1x1"),
    pytest.param((1, 2, 5, 4), (3, 2, 1, 1), 2, 1, id="1x1_stride_2_pad_1"),
    pytest.param((2, 3, 4, 4), (2, 3, 4, 4), 1, 0, id="kernel_equals_input"),
    pytest.param((1, 2, 3, 4), (2, 2, 5, 6), 1, 1, id="kernel_equals_padded_input"),
    pytest.param((1, 2, 3, 2), (1, 2, 7, 4), 3, (2, 1), id="kernel_equals_padded_input_stride_3"),
    pytest.param((1, 1, 3, 3), (2, 1, 2, 2), 4, 0, id="stride_larger_than_input"),
    pytest.param((2, 2, 1, 7), (3, 2, 1, 3), (1, 2), 0, id="single_row"),
    pytest.param((1, 1, 7, 7), (1, 1, 3, 3), (3, 2), (2, 0), id="odd_7x7_mixed"),
    pytest.param((2, 1, 6, 6), (3, 1, 2, 2), 2, 0, id="even_kernel_even_input"),
]


def _conv2d_case_ids(case):
    x_shape, w_shape, stride, padding = case
    return f"x{x_shape[2]}x{x_shape[3]}-k{w_shape[2]}-s{stride}-p{padding}"


@pytest.mark.parametrize("with_bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding",
    [pytest.param(*case, id=_conv2d_case_ids(case)) for case in CONV2D_GRID] + CONV2D_SPECIAL,
)
def test_conv2d_forward_matches_direct_loops(rng, x_shape, w_shape, stride, padding, with_bias):
    x, w = _normal(rng, x_shape), _normal(rng, w_shape)
    b = _normal(rng, (w_shape[0],)) if with_bias else None
    expected = conv2d_loops(x, w, stride, padding)
    if with_bias:
        expected = expected + b.reshape(1, -1, 1, 1)
    y = conv2d(_t64(x), _t64(w), None if b is None else _t64(b), stride=stride, padding=padding)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


# (x shape, weight shape (C_in, C_out, kH, kW), stride, padding, output_padding)
CONV_TRANSPOSE2D_GRID = [
    ((2, 2, size, size), (2, 3, 3, 3), stride, padding, output_padding)
    for size in (3, 4)
    for stride in (1, 2, 3)
    for padding in (0, 1, 2)
    for output_padding in range(stride)
]
CONV_TRANSPOSE2D_SPECIAL = [
    pytest.param((1, 2, 3, 4), (2, 3, 2, 3), (2, 1), (1, 0), (1, 0),
                 id="kernel_2x3_stride_2x1_pad_1x0_outpad_1x0"),
    pytest.param((2, 1, 4, 3), (1, 2, 3, 1), (1, 3), (0, 1), (0, 2),
                 id="kernel_3x1_stride_1x3_pad_0x1_outpad_0x2"),
    pytest.param((1, 3, 3, 2), (3, 2, 4, 2), [3, 2], [2, 1], [2, 1], id="pairs_as_lists"),
    pytest.param((2, 3, 3, 4), (3, 2, 1, 1), 1, 0, 0, id="1x1"),
    pytest.param((1, 2, 4, 4), (2, 1, 1, 1), 2, 0, 1, id="1x1_stride_2_outpad_1"),
    pytest.param((1, 2, 4, 3), (2, 2, 1, 1), 2, 1, 0, id="1x1_stride_2_pad_1"),
    pytest.param((2, 2, 1, 1), (2, 3, 3, 2), 2, 0, 1, id="single_pixel_input"),
    pytest.param((1, 1, 3, 3), (1, 1, 3, 3), 1, 2, 0, id="padding_leaves_one_pixel"),
    pytest.param((2, 1, 2, 5), (1, 2, 2, 4), (3, 1), (0, 1), (2, 0), id="even_kernel_mixed"),
]


def _conv_transpose2d_case_ids(case):
    x_shape, w_shape, stride, padding, output_padding = case
    return f"x{x_shape[2]}x{x_shape[3]}-s{stride}-p{padding}-op{output_padding}"


@pytest.mark.parametrize("with_bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, output_padding",
    [pytest.param(*case, id=_conv_transpose2d_case_ids(case)) for case in CONV_TRANSPOSE2D_GRID]
    + CONV_TRANSPOSE2D_SPECIAL,
)
def test_conv_transpose2d_forward_matches_direct_scatter_loops(
    rng, x_shape, w_shape, stride, padding, output_padding, with_bias
):
    x, w = _normal(rng, x_shape), _normal(rng, w_shape)
    b = _normal(rng, (w_shape[1],)) if with_bias else None
    expected = conv_transpose2d_loops(x, w, stride, padding, output_padding)
    if with_bias:
        expected = expected + b.reshape(1, -1, 1, 1)
    y = conv_transpose2d(
        _t64(x), _t64(w), None if b is None else _t64(b),
        stride=stride, padding=padding, output_padding=output_padding,
    )
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    extra=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    channels=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_random_configurations_of_both_ops_match_the_loops(
    kernel, stride, padding, extra, channels, seed, data
):
    """Random kernels, strides and paddings; the input is just large enough plus `extra`."""
    rng = np.random.default_rng(seed)
    c_in, c_out = channels
    # smallest legal input: H + 2 p >= k and H >= 1
    h = max(1, kernel[0] - 2 * padding[0]) + extra[0]
    w_size = max(1, kernel[1] - 2 * padding[1]) + extra[1]
    x = _normal(rng, (1, c_in, h, w_size))
    w = _normal(rng, (c_out, c_in) + kernel)
    y = conv2d(_t64(x), _t64(w), stride=stride, padding=padding)
    np.testing.assert_allclose(y.numpy(), conv2d_loops(x, w, stride, padding), atol=1e-12)

    output_padding = (data.draw(st.integers(0, stride[0] - 1)),
                      data.draw(st.integers(0, stride[1] - 1)))
    out_h = (h - 1) * stride[0] - 2 * padding[0] + kernel[0] + output_padding[0]
    out_w = (w_size - 1) * stride[1] - 2 * padding[1] + kernel[1] + output_padding[1]
    if out_h >= 1 and out_w >= 1:
        wt = _normal(rng, (c_in, c_out) + kernel)
        y = conv_transpose2d(_t64(x), _t64(wt), stride=stride, padding=padding,
                             output_padding=output_padding)
        expected = conv_transpose2d_loops(x, wt, stride, padding, output_padding)
        np.testing.assert_allclose(y.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize(
    "out_shape, w_shape, stride, padding, output_padding",
    [
        ((1, 2, 6, 6), (3, 2, 3, 3), 2, 1, 1),
        ((2, 1, 8, 5), (2, 1, 3, 2), (3, 2), (1, 0), (1, 1)),
        ((2, 1, 7, 5), (2, 1, 3, 2), (3, 2), (1, 0), (0, 1)),
        ((1, 2, 4, 4), (2, 2, 1, 1), 1, 0, 0),
    ],
)
def test_conv_transpose2d_equals_the_input_gradient_of_conv2d(
    rng, out_shape, w_shape, stride, padding, output_padding
):
    """The docstring's claim: conv_transpose2d(g, w) = d<conv2d(z, w), g>/dz for z of its output
    shape (output_padding picks which of the input sizes that map to g's size z has)."""
    w = _t64(_normal(rng, w_shape))
    z = _t64(np.zeros(out_shape), requires_grad=True)
    y = conv2d(z, w, stride=stride, padding=padding)
    g = _t64(_normal(rng, y.shape))
    (grad_z,) = tg.grad(y, [z], grad_outputs=[g])
    out = conv_transpose2d(g, w, stride=stride, padding=padding, output_padding=output_padding)
    assert out.shape == out_shape
    np.testing.assert_allclose(out.numpy(), grad_z.numpy(), rtol=1e-12, atol=1e-12)


# ---- output shapes and dtypes -----------------------------------------------------------------

@pytest.mark.parametrize(
    "h, w, kernel, stride, padding",
    [
        (5, 5, (3, 3), 1, 0), (6, 7, (3, 2), 2, 1), (7, 4, (2, 3), (3, 1), (2, 0)),
        (3, 3, (5, 5), 1, 1),
    ],
)
def test_conv2d_output_shape_matches_floor_formula(h, w, kernel, stride, padding):
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    y = conv2d(tg.zeros(2, 3, h, w), tg.zeros(4, 3, *kernel), stride=stride, padding=padding)
    expected = (2, 4, (h + 2 * ph - kernel[0]) // sh + 1, (w + 2 * pw - kernel[1]) // sw + 1)
    assert y.shape == expected


@pytest.mark.parametrize(
    "h, w, kernel, stride, padding, output_padding",
    [(3, 3, (3, 3), 1, 0, 0), (4, 3, (3, 2), 2, 1, 1), (2, 5, (2, 3), (3, 1), (1, 0), (2, 0))],
)
def test_conv_transpose2d_output_shape_matches_formula(h, w, kernel, stride, padding,
                                                       output_padding):
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oph, opw = _pair(output_padding)
    y = conv_transpose2d(tg.zeros(2, 3, h, w), tg.zeros(3, 4, *kernel), stride=stride,
                         padding=padding, output_padding=output_padding)
    expected = (2, 4, (h - 1) * sh - 2 * ph + kernel[0] + oph,
                (w - 1) * sw - 2 * pw + kernel[1] + opw)
    assert y.shape == expected


def test_conv_transpose2d_output_is_c_contiguous_like_conv2d_output(rng):
    x, w = _t64(_normal(rng, (1, 1, 3, 3))), _t64(_normal(rng, (1, 1, 3, 3)))
    assert conv2d(x, w, padding=1).numpy().flags["C_CONTIGUOUS"]
    assert conv_transpose2d(x, w, padding=1).numpy().flags["C_CONTIGUOUS"]


def test_conv2d_float32_in_gives_float32_out_and_float32_gradients(rng):
    x = tg.tensor(_normal(rng, (2, 3, 5, 5)), requires_grad=True)
    w = tg.tensor(_normal(rng, (4, 3, 3, 3)), requires_grad=True)
    b = tg.tensor(_normal(rng, (4,)), requires_grad=True)
    assert x.dtype == w.dtype == b.dtype == tg.float32
    y = conv2d(x, w, b, stride=2, padding=1)
    assert y.dtype == tg.float32
    expected = conv2d_loops(x.numpy(), w.numpy(), 2, 1) + b.numpy().reshape(1, -1, 1, 1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    gx, gw, gb = tg.grad(y.sum(), [x, w, b])
    assert gx.dtype == gw.dtype == gb.dtype == tg.float32


def test_conv_transpose2d_float32_in_gives_float32_out_and_float32_gradients(rng):
    x = tg.tensor(_normal(rng, (2, 3, 3, 4)), requires_grad=True)
    w = tg.tensor(_normal(rng, (3, 2, 3, 3)), requires_grad=True)
    b = tg.tensor(_normal(rng, (2,)), requires_grad=True)
    y = conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    assert y.dtype == tg.float32
    expected = conv_transpose2d_loops(x.numpy(), w.numpy(), 2, 1, 1)
    expected = expected + b.numpy().reshape(1, -1, 1, 1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    gx, gw, gb = tg.grad(y.sum(), [x, w, b])
    assert gx.dtype == gw.dtype == gb.dtype == tg.float32


@pytest.mark.parametrize("name", ["conv2d", "conv2d_grad_input", "conv2d_grad_weight"])
def test_raw_kernels_keep_float32(rng, name):
    x = _normal(rng, (1, 2, 5, 5)).astype(np.float32)
    w = _normal(rng, (3, 2, 3, 3)).astype(np.float32)
    gy = _normal(rng, (1, 3, 3, 3)).astype(np.float32)
    stride, padding = (2, 2), (1, 1)
    if name == "conv2d":
        out = kernels.conv2d(x, w, stride, padding)
    elif name == "conv2d_grad_input":
        out = kernels.conv2d_grad_input(gy, w, x.shape, stride, padding)
    else:
        out = kernels.conv2d_grad_weight(x, gy, w.shape, stride, padding)
    assert out.dtype == np.float32


# ---- the raw kernels: adjoint identity and finite differences of the loop reference -----------

# (x shape, w shape, stride, padding): includes strides that leave rows/columns of x unread
KERNEL_CASES = [
    pytest.param((2, 2, 5, 5), (3, 2, 3, 3), (1, 1), (0, 0), id="plain"),
    pytest.param((1, 2, 5, 4), (2, 2, 3, 2), (2, 1), (1, 0), id="stride_2x1_pad_1x0"),
    pytest.param((2, 1, 6, 6), (2, 1, 3, 3), (2, 2), (0, 0), id="last_row_unread"),
    pytest.param((1, 2, 4, 5), (2, 2, 2, 3), (3, 2), (2, 1), id="stride_3_pad_2"),
    pytest.param((1, 3, 3, 4), (2, 3, 1, 1), (2, 3), (1, 0), id="1x1"),
    pytest.param((2, 1, 3, 3), (2, 1, 5, 5), (1, 1), (1, 1), id="kernel_equals_padded_input"),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", KERNEL_CASES)
def test_raw_kernels_satisfy_the_adjoint_identity(rng, x_shape, w_shape, stride, padding):
    """<conv2d(x, w), gy> = <x, conv2d_grad_input(gy, w)> = <w, conv2d_grad_weight(x, gy)>."""
    x, w = _normal(rng, x_shape), _normal(rng, w_shape)
    y = kernels.conv2d(x, w, stride, padding)
    gy = _normal(rng, y.shape)
    gx = kernels.conv2d_grad_input(gy, w, x.shape, stride, padding)
    gw = kernels.conv2d_grad_weight(x, gy, w.shape, stride, padding)
    assert gx.shape == x.shape and gw.shape == w.shape
    inner_y = np.sum(y * gy)
    np.testing.assert_allclose(np.sum(x * gx), inner_y, rtol=1e-10)
    np.testing.assert_allclose(np.sum(w * gw), inner_y, rtol=1e-10)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", KERNEL_CASES)
def test_raw_conv2d_kernel_matches_direct_loops(rng, x_shape, w_shape, stride, padding):
    x, w = _normal(rng, x_shape), _normal(rng, w_shape)
    y = kernels.conv2d(x, w, stride, padding)
    np.testing.assert_allclose(y, conv2d_loops(x, w, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", KERNEL_CASES)
def test_raw_grad_input_matches_finite_differences_of_loop_conv(
    rng, x_shape, w_shape, stride, padding
):
    x, w = _normal(rng, x_shape), _normal(rng, w_shape)
    gy = _normal(rng, conv2d_loops(x, w, stride, padding).shape)
    expected = _central_difference_gradient(
        lambda xx: np.sum(conv2d_loops(xx, w, stride, padding) * gy), x.copy()
    )
    gx = kernels.conv2d_grad_input(gy, w, x.shape, stride, padding)
    np.testing.assert_allclose(gx, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", KERNEL_CASES)
def test_raw_grad_weight_matches_finite_differences_of_loop_conv(
    rng, x_shape, w_shape, stride, padding
):
    x, w = _normal(rng, x_shape), _normal(rng, w_shape)
    gy = _normal(rng, conv2d_loops(x, w, stride, padding).shape)
    expected = _central_difference_gradient(
        lambda ww: np.sum(conv2d_loops(x, ww, stride, padding) * gy), w.copy()
    )
    gw = kernels.conv2d_grad_weight(x, gy, w.shape, stride, padding)
    np.testing.assert_allclose(gw, expected, rtol=1e-9, atol=1e-9)


def test_raw_grad_input_leaves_unread_input_pixels_at_zero(rng):
    """Stride 2, kernel 3 on 6 rows reads rows 0-4 only: row 5 and column 5 get no gradient."""
    w = _normal(rng, (2, 1, 3, 3))
    gy = _normal(rng, (1, 2, 2, 2))
    gx = kernels.conv2d_grad_input(gy, w, (1, 1, 6, 6), (2, 2), (0, 0))
    assert np.all(gx[:, :, 5, :] == 0) and np.all(gx[:, :, :, 5] == 0)
    assert np.all(gx[:, :, :5, :5] != 0)


# ---- gradients of the ops vs finite differences (float64) -------------------------------------

CONV2D_GRAD_CASES = [
    pytest.param((1, 2, 4, 4), (2, 2, 3, 3), 1, 1, id="s1_p1"),
    pytest.param((2, 1, 5, 4), (2, 1, 2, 3), (2, 1), (1, 0), id="s2x1_p1x0_k2x3"),
    pytest.param((1, 2, 5, 5), (1, 2, 3, 3), 3, 2, id="s3_p2"),
    pytest.param((1, 1, 6, 6), (2, 1, 3, 3), 2, 0, id="s2_unread_last_row"),
    pytest.param((1, 2, 3, 3), (2, 2, 1, 1), 2, 1, id="1x1_s2_p1"),
]

CONV_TRANSPOSE2D_GRAD_CASES = [
    pytest.param((1, 2, 3, 3), (2, 1, 3, 3), 2, 1, 1, id="s2_p1_op1"),
    pytest.param((1, 1, 3, 2), (1, 2, 2, 3), (2, 1), (0, 1), (1, 0), id="s2x1_p0x1_op1x0"),
    pytest.param((2, 1, 2, 2), (1, 1, 3, 3), 3, 1, 2, id="s3_p1_op2"),
    pytest.param((1, 2, 3, 3), (2, 2, 1, 1), 1, 0, 0, id="1x1"),
    pytest.param((1, 1, 3, 3), (1, 2, 3, 3), 1, 2, 0, id="s1_p2"),
]


def _conv2d_fn(stride, padding):
    def fn(x, w, b):
        return conv2d(x, w, b, stride=stride, padding=padding)
    return fn


def _conv_transpose2d_fn(stride, padding, output_padding):
    def fn(x, w, b):
        return conv_transpose2d(x, w, b, stride=stride, padding=padding,
                                output_padding=output_padding)
    return fn


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV2D_GRAD_CASES)
def test_conv2d_gradients_wrt_x_weight_bias_match_finite_differences(
    rng, x_shape, w_shape, stride, padding
):
    inputs = (
        _t64(_normal(rng, x_shape), True),
        _t64(_normal(rng, w_shape), True),
        _t64(_normal(rng, (w_shape[0],)), True),
    )
    assert tg.gradcheck(_conv2d_fn(stride, padding), inputs)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV2D_GRAD_CASES)
def test_conv2d_second_derivatives_match_finite_differences(
    rng, x_shape, w_shape, stride, padding
):
    inputs = (
        _t64(_normal(rng, x_shape), True),
        _t64(_normal(rng, w_shape), True),
        _t64(_normal(rng, (w_shape[0],)), True),
    )
    assert tg.gradgradcheck(_conv2d_fn(stride, padding), inputs)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, output_padding",
                         CONV_TRANSPOSE2D_GRAD_CASES)
def test_conv_transpose2d_gradients_wrt_x_weight_bias_match_finite_differences(
    rng, x_shape, w_shape, stride, padding, output_padding
):
    inputs = (
        _t64(_normal(rng, x_shape), True),
        _t64(_normal(rng, w_shape), True),
        _t64(_normal(rng, (w_shape[1],)), True),
    )
    assert tg.gradcheck(_conv_transpose2d_fn(stride, padding, output_padding), inputs)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, output_padding",
                         CONV_TRANSPOSE2D_GRAD_CASES)
def test_conv_transpose2d_second_derivatives_match_finite_differences(
    rng, x_shape, w_shape, stride, padding, output_padding
):
    inputs = (
        _t64(_normal(rng, x_shape), True),
        _t64(_normal(rng, w_shape), True),
        _t64(_normal(rng, (w_shape[1],)), True),
    )
    assert tg.gradgradcheck(_conv_transpose2d_fn(stride, padding, output_padding), inputs)


@pytest.mark.parametrize("which", ["x_only", "weight_only"])
def test_conv_gradients_with_only_one_input_requiring_grad_match_finite_differences(rng, which):
    """Each backward computes only the gradients asked for; the others must not be needed."""
    x = _t64(_normal(rng, (1, 2, 4, 5)), requires_grad=(which == "x_only"))
    w = _t64(_normal(rng, (2, 2, 2, 3)), requires_grad=(which == "weight_only"))
    wt = _t64(_normal(rng, (2, 3, 2, 3)), requires_grad=(which == "weight_only"))

    def conv(a, b):
        return conv2d(a, b, stride=(2, 1), padding=1)

    def transposed(a, b):
        return conv_transpose2d(a, b, stride=2, padding=(1, 0), output_padding=1)

    for fn, inputs in [(conv, (x, w)), (transposed, (x, wt))]:
        assert tg.gradcheck(fn, inputs)
        assert tg.gradgradcheck(fn, inputs)


def test_conv2d_bias_gradient_is_the_sum_of_the_output_gradient_over_n_h_w(rng):
    x = _t64(_normal(rng, (2, 2, 5, 5)))
    w = _t64(_normal(rng, (3, 2, 3, 3)))
    b = _t64(np.zeros(3), requires_grad=True)
    y = conv2d(x, w, b, stride=2, padding=1)
    g = _normal(rng, y.shape)
    (gb,) = tg.grad(y, [b], grad_outputs=[_t64(g)])
    np.testing.assert_allclose(gb.numpy(), g.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_conv2d_third_derivatives_match_finite_differences(rng):
    """gradgradcheck of a function that is itself a gradient (create_graph=True) checks the third
    derivatives of sum(conv2d(x, w) ** 3): every conv backward is differentiated twice."""
    def first_gradient(x, w):
        with tg.enable_grad():
            y = conv2d(x, w, stride=(2, 1), padding=1)
            return tg.grad((y ** 3).sum(), [x, w], create_graph=True)

    inputs = (
        _t64(0.5 * _normal(rng, (1, 1, 3, 4)), True),
        _t64(0.5 * _normal(rng, (2, 1, 2, 2)), True),
    )
    assert tg.gradgradcheck(first_gradient, inputs)


def test_conv_transpose2d_third_derivatives_match_finite_differences(rng):
    def first_gradient(x, w):
        with tg.enable_grad():
            y = conv_transpose2d(x, w, stride=2, padding=(1, 0), output_padding=(1, 0))
            return tg.grad((y ** 3).sum(), [x, w], create_graph=True)

    inputs = (
        _t64(0.5 * _normal(rng, (1, 1, 2, 3)), True),
        _t64(0.5 * _normal(rng, (1, 2, 2, 2)), True),
    )
    assert tg.gradgradcheck(first_gradient, inputs)


def test_conv2d_gradient_differentiated_twice_gives_the_analytic_third_derivative(rng):
    """Smoke check by hand: L = sum(conv2d(x, w) ** 3) is a cubic in x, so d^3L/dx^3 applied to
    (u, u, u) is 6 sum(conv2d(u, w) ** 3) for any direction u."""
    x = _t64(_normal(rng, (1, 2, 4, 4)), requires_grad=True)
    w = _t64(_normal(rng, (2, 2, 3, 3)))
    u = _t64(_normal(rng, (1, 2, 4, 4)))
    (g1,) = tg.grad((conv2d(x, w, stride=2, padding=1) ** 3).sum(), [x], create_graph=True)
    (g2,) = tg.grad((g1 * u).sum(), [x], create_graph=True)
    (g3,) = tg.grad((g2 * u).sum(), [x])
    assert g1.shape == g2.shape == g3.shape == x.shape
    expected = 6 * np.sum(conv2d_loops(u.numpy(), w.numpy(), 2, 1) ** 3)
    np.testing.assert_allclose(np.sum(g3.numpy() * u.numpy()), expected, rtol=1e-10)


# ---- errors -----------------------------------------------------------------------------------

def test_conv2d_channel_mismatch_names_both_shapes():
    message = ("conv2d: input has 3 channels but weight (4, 2, 3, 3) expects 2 "
               "(input shape (1, 3, 5, 5))")
    with pytest.raises(ValueError, match=re.escape(message)):
        conv2d(tg.zeros(1, 3, 5, 5), tg.zeros(4, 2, 3, 3))


def test_conv_transpose2d_channel_mismatch_names_both_shapes():
    message = ("conv_transpose2d: input has 3 channels but weight (2, 4, 3, 3) expects 2 "
               "(input shape (1, 3, 5, 5))")
    with pytest.raises(ValueError, match=re.escape(message)):
        conv_transpose2d(tg.zeros(1, 3, 5, 5), tg.zeros(2, 4, 3, 3))


@pytest.mark.parametrize("x_shape, kernel, padding, padded", [
    ((1, 1, 3, 3), (4, 4), 0, (3, 3)),
    ((1, 1, 3, 6), (6, 3), 1, (5, 8)),
    ((1, 1, 5, 5), (3, 8), (0, 1), (5, 7)),
])
def test_conv2d_kernel_larger_than_padded_input_is_refused(x_shape, kernel, padding, padded):
    message = f"conv2d: kernel {kernel} is larger than the padded input {padded}"
    with pytest.raises(ValueError, match=re.escape(message)):
        conv2d(tg.zeros(*x_shape), tg.zeros(1, 1, *kernel), padding=padding)


@pytest.mark.parametrize("stride, output_padding, shown", [
    (1, 1, "(1, 1) must be smaller than stride (1, 1)"),
    (2, 2, "(2, 2) must be smaller than stride (2, 2)"),
    ((2, 1), (1, 1), "(1, 1) must be smaller than stride (2, 1)"),
    ((3, 2), (0, 3), "(0, 3) must be smaller than stride (3, 2)"),
    ((2, 3), (2, 0), "(2, 0) must be smaller than stride (2, 3)"),
])
def test_conv_transpose2d_output_padding_not_below_stride_is_refused(stride, output_padding, shown):
    with pytest.raises(ValueError, match=re.escape(f"conv_transpose2d: output_padding {shown}")):
        conv_transpose2d(tg.zeros(1, 1, 3, 3), tg.zeros(1, 1, 3, 3), stride=stride,
                         output_padding=output_padding)


@pytest.mark.parametrize("x_hw, padding, shown", [
    ((1, 1), 2, "(-1, -1)"),
    ((3, 1), (0, 2), "(5, -1)"),
    ((2, 4), (2, 0), "(0, 6)"),
])
def test_conv_transpose2d_non_positive_output_size_is_refused(x_hw, padding, shown):
    message = f"conv_transpose2d: output size {shown} is not positive"
    with pytest.raises(ValueError, match=re.escape(message)):
        conv_transpose2d(tg.zeros(1, 1, *x_hw), tg.zeros(1, 1, 3, 3), padding=padding)


@pytest.mark.parametrize("op, weight", [
    (conv2d, tg.zeros(1, 1, 2, 2)), (conv_transpose2d, tg.zeros(1, 1, 2, 2)),
], ids=["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("stride, message", [
    (0, "stride must be positive, got (0, 0)"),
    ((1, 0), "stride must be positive, got (1, 0)"),
    ((1, 1, 1), "stride must be an int or a pair of ints, got (1, 1, 1)"),
    ((2,), "stride must be an int or a pair of ints, got (2,)"),
    (-1, "stride must be non-negative, got -1"),
])
def test_bad_stride_is_refused(op, weight, stride, message):
    with pytest.raises(ValueError, match=re.escape(f"{op.__name__}: {message}")):
        op(tg.zeros(1, 1, 4, 4), weight, stride=stride)


@pytest.mark.parametrize("op", [conv2d, conv_transpose2d], ids=["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("padding, message", [
    ((1, 1, 1), "padding must be an int or a pair of ints, got (1, 1, 1)"),
    (-1, "padding must be non-negative, got -1"),
    ((0, -2), "padding must be non-negative, got (0, -2)"),
])
def test_bad_padding_is_refused(op, padding, message):
    with pytest.raises(ValueError, match=re.escape(f"{op.__name__}: {message}")):
        op(tg.zeros(1, 1, 4, 4), tg.zeros(1, 1, 2, 2), padding=padding)


def test_conv_transpose2d_bad_output_padding_is_refused():
    with pytest.raises(ValueError, match=re.escape("output_padding must be non-negative")):
        conv_transpose2d(tg.zeros(1, 1, 3, 3), tg.zeros(1, 1, 2, 2), stride=2, output_padding=-1)
    with pytest.raises(ValueError, match=re.escape("output_padding must be an int or a pair")):
        conv_transpose2d(tg.zeros(1, 1, 3, 3), tg.zeros(1, 1, 2, 2), stride=2,
                         output_padding=(0, 0, 0))


@pytest.mark.parametrize("op, layout", [
    (conv2d, "(C_out, C_in, kH, kW)"), (conv_transpose2d, "(C_in, C_out, kH, kW)"),
], ids=["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("x_shape, w_shape, which, bad_shape", [
    ((3, 5, 5), (2, 3, 3, 3), "input", (3, 5, 5)),
    ((1, 1, 3, 5, 5), (3, 3, 3, 3), "input", (1, 1, 3, 5, 5)),
    ((1, 3, 5, 5), (3, 3, 3), "weight", (3, 3, 3)),
    ((1, 3, 5, 5), (3, 3), "weight", (3, 3)),
])
def test_wrong_ndim_input_or_weight_is_refused(op, layout, x_shape, w_shape, which, bad_shape):
    expected_layout = "(N, C, H, W)" if which == "input" else layout
    message = f"{op.__name__}: {which} must be 4-D {expected_layout}, got shape {bad_shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        op(tg.zeros(*x_shape), tg.zeros(*w_shape))


@pytest.mark.parametrize("op", [conv2d, conv_transpose2d], ids=["conv2d", "conv_transpose2d"])
def test_non_tensor_input_is_refused(op):
    message = f"{op.__name__}: input must be a Tensor, got ndarray"
    with pytest.raises(TypeError, match=re.escape(message)):
        op(np.zeros((1, 1, 3, 3)), tg.zeros(1, 1, 2, 2))
    message = f"{op.__name__}: weight must be a Tensor, got list"
    with pytest.raises(TypeError, match=re.escape(message)):
        op(tg.zeros(1, 1, 3, 3), [[[[1.0]]]])


@pytest.mark.parametrize("bias_shape", [(3,), (4, 1), (1, 4, 1, 1), ()])
def test_conv2d_bias_of_wrong_shape_is_refused(bias_shape):
    message = f"conv2d: bias must have shape (4,), got {bias_shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        conv2d(tg.zeros(1, 2, 5, 5), tg.zeros(4, 2, 3, 3), bias=tg.zeros(*bias_shape))


@pytest.mark.parametrize("bias_shape", [(2,), (4,), (3, 1, 1)])
def test_conv_transpose2d_bias_of_wrong_shape_is_refused(bias_shape):
    """The bias follows C_out = weight.shape[1] (3 here), not weight.shape[0]."""
    message = f"conv_transpose2d: bias must have shape (3,), got {bias_shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        conv_transpose2d(tg.zeros(1, 2, 3, 3), tg.zeros(2, 3, 3, 3), bias=tg.zeros(*bias_shape))


def test_zero_size_kernel_is_refused():
    with pytest.raises(ValueError, match="weight has an empty dimension"):
        conv2d(tg.ones(1, 1, 5, 5), tg.ones(1, 1, 0, 2))
    with pytest.raises(ValueError, match="weight has an empty dimension"):
        conv_transpose2d(tg.ones(1, 1, 3, 3), tg.ones(1, 1, 0, 0))


@pytest.mark.parametrize("stride", ["12", True, 1.5, (1, 2.0)])
def test_stride_that_is_not_an_int_or_pair_of_ints_is_refused(stride):
    with pytest.raises(ValueError, match="stride must be an int or a pair of ints"):
        conv2d(tg.ones(1, 1, 5, 5), tg.ones(1, 1, 2, 2), stride=stride)
