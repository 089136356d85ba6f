"""Average pooling and nearest-neighbour upsampling: values against plain NumPy loops (and
PyTorch when it is installed), first and second derivatives against finite differences in float64,
the two ops as each other's adjoints, the layers, and the shape errors."""
import numpy as np
import pytest

import tinygen as tg
import tinygen.nn.functional as F
from tinygen import nn


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _leaf(array):
    return tg.tensor(array, dtype="float64", requires_grad=True)


def avg_pool_by_loops(x, kernel_size, stride):
    """The mean of every window, one output pixel at a time."""
    (kh, kw), (sh, sw) = kernel_size, stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].mean(axis=(2, 3))
    return out


def upsample_by_loops(x, fh, fw):
    """Every output pixel (i, j) copies input pixel (i // fh, j // fw)."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, h * fh, w * fw))
    for i in range(h * fh):
        for j in range(w * fw):
            out[:, :, i, j] = x[:, :, i // fh, j // fw]
    return out


POOL_SETTINGS = [  # (input shape, kernel_size, stride): even, odd (floor drops a row), overlapping
    ((2, 3, 4, 6), (2, 2), (2, 2)),
    ((1, 2, 7, 5), (2, 2), (2, 2)),
    ((2, 1, 5, 6), (3, 2), (1, 2)),
    ((1, 2, 7, 7), (3, 3), (2, 2)),
]


@pytest.mark.parametrize("shape, kernel_size, stride", POOL_SETTINGS)
def test_avg_pool2d_matches_a_numpy_loop(shape, kernel_size, stride):
    x = _normal(*shape)
    ours = F.avg_pool2d(tg.tensor(x, dtype="float64"), kernel_size, stride).data
    np.testing.assert_allclose(ours, avg_pool_by_loops(x, kernel_size, stride), rtol=1e-12)


def test_avg_pool2d_stride_defaults_to_the_kernel_size_and_keeps_float32():
    x = tg.randn(2, 3, 9, 8)
    y = F.avg_pool2d(x, 2)
    assert y.shape == (2, 3, 4, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, avg_pool_by_loops(x.data, (2, 2), (2, 2)), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("shape, factor", [((2, 3, 3, 4), 2), ((1, 2, 5, 3), (3, 2))])
def test_upsample_nearest_matches_a_numpy_loop(shape, factor):
    x = _normal(*shape)
    fh, fw = (factor, factor) if isinstance(factor, int) else factor
    ours = F.upsample_nearest(tg.tensor(x, dtype="float64"), factor).data
    np.testing.assert_array_equal(ours, upsample_by_loops(x, fh, fw))


@pytest.mark.parametrize("shape, kernel_size, stride", POOL_SETTINGS)
def test_avg_pool2d_gradients_first_and_second_order(shape, kernel_size, stride):
    x = _leaf(_normal(*shape))
    # squared, so that the second derivative is not zero and runs through the pool's backward
    assert tg.gradcheck(lambda a: F.avg_pool2d(a, kernel_size, stride) ** 2, (x,))
    assert tg.gradgradcheck(lambda a: F.avg_pool2d(a * a, kernel_size, stride), (x,))


@pytest.mark.parametrize("shape, factor", [((2, 2, 3, 4), 2), ((1, 1, 3, 3), (2, 3))])
def test_upsample_nearest_gradients_first_and_second_order(shape, factor):
    x = _leaf(_normal(*shape))
    assert tg.gradcheck(lambda a: F.upsample_nearest(a, factor) ** 2, (x,))
    assert tg.gradgradcheck(lambda a: F.upsample_nearest(a * a, factor), (x,))


def test_pool_and_upsample_compose_with_conv_to_second_order():
    x = _leaf(_normal(1, 2, 6, 6))
    w = _leaf(0.5 * _normal(2, 2, 3, 3, seed=1))

    def block(a, weight):  # a discriminator's block and a generator's, back to back
        h = F.avg_pool2d(F.conv2d(a, weight, padding=1).tanh(), 2)
        return F.conv2d(F.upsample_nearest(h, 2), weight, padding=1)

    assert tg.gradcheck(block, (x, w))
    assert tg.gradgradcheck(block, (x, w))


def test_the_gradients_are_the_adjoint_ops():
    # <upsample(x), y> = <x, sum_pool(y)>, and avg_pool's gradient is an upsample divided by k^2
    x, y = _normal(2, 3, 4, 5), _normal(2, 3, 8, 10, seed=1)
    up = F.upsample_nearest(tg.tensor(x, dtype="float64"), 2).data
    sum_pool = 4 * F.avg_pool2d(tg.tensor(y, dtype="float64"), 2).data
    np.testing.assert_allclose(np.sum(up * y), np.sum(x * sum_pool), rtol=1e-12)

    a = _leaf(y)
    F.avg_pool2d(a, 2).backward(tg.tensor(x, dtype="float64"))
    np.testing.assert_allclose(a.grad.data, upsample_by_loops(x, 2, 2) / 4, rtol=1e-12)

    b = _leaf(x)
    F.upsample_nearest(b, 2).backward(tg.tensor(y, dtype="float64"))
    np.testing.assert_allclose(b.grad.data, 4 * avg_pool_by_loops(y, (2, 2), (2, 2)),
                               rtol=1e-12)


def test_rows_no_window_reaches_get_zero_gradient():
    x = _leaf(_normal(1, 1, 5, 5))
    F.avg_pool2d(x, 2).sum().backward()
    assert np.all(x.grad.data[:, :, 4, :] == 0) and np.all(x.grad.data[:, :, :, 4] == 0)
    np.testing.assert_allclose(x.grad.data[:, :, :4, :4], 0.25)


def test_layers_and_interpolate():
    x = tg.randn(2, 3, 6, 6)
    np.testing.assert_array_equal(nn.AvgPool2d(2)(x).data, F.avg_pool2d(x, 2).data)
    np.testing.assert_array_equal(nn.AvgPool2d(3, stride=1)(x).data,
                                  F.avg_pool2d(x, 3, 1).data)
    np.testing.assert_array_equal(nn.Upsample(scale_factor=2, mode="nearest")(x).data,
                                  F.upsample_nearest(x, 2).data)
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=2.0).data,
                                  F.upsample_nearest(x, 2).data)
    assert list(nn.AvgPool2d(2).parameters()) == []
    assert "scale_factor=2" in repr(nn.Upsample(scale_factor=2))


@pytest.mark.parametrize("call, message", [
    (lambda: F.avg_pool2d(tg.randn(3, 8, 8), 2), "4-D"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 4, 4)), 2), "must be a Tensor"),
    (lambda: F.avg_pool2d(tg.randn(1, 1, 3, 3), 4), "larger than the input"),
    (lambda: F.avg_pool2d(tg.randn(1, 1, 4, 4), 0), "positive"),
    (lambda: F.avg_pool2d(tg.randn(1, 1, 4, 4), 2, stride=0), "positive"),
    (lambda: F.upsample_nearest(tg.randn(1, 1, 4, 4), 1.5), "whole number"),
    (lambda: F.upsample_nearest(tg.randn(1, 1, 4, 4), 0), "positive"),
    (lambda: F.upsample_nearest(tg.randn(4, 4), 2), "4-D"),
    (lambda: F.interpolate(tg.randn(1, 1, 4, 4), 2, mode="bilinear"), "nearest"),
    (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), "nearest"),
    (lambda: nn.Upsample(scale_factor=0.5), "whole number"),
    (lambda: nn.AvgPool2d((2, 0)), "positive"),
])
def test_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_against_torch():
    torch = pytest.importorskip("torch")
    x = _normal(2, 3, 7, 9)
    t = torch.from_numpy(x)
    for kernel_size, stride in [(2, None), (3, 2), ((2, 3), (1, 2))]:
        ours = F.avg_pool2d(tg.tensor(x, dtype="float64"), kernel_size, stride).data
        theirs = torch.nn.functional.avg_pool2d(t, kernel_size, stride).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    ours = F.upsample_nearest(tg.tensor(x, dtype="float64"), 3).data
    theirs = torch.nn.functional.interpolate(t, scale_factor=3, mode="nearest").numpy()
    np.testing.assert_array_equal(ours, theirs)
