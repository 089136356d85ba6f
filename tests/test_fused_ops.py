"""Batch norm and leaky relu under the numba backend (the fused kernels: one op for the training
forward, one for evaluation, a fused first derivative and a composite one when create_graph=True)
against the numpy backend (tinygen/nn/functional.py's composite of primitives), the reference
here.

- BatchNorm1d on (N, C) and (N, C, L), BatchNorm2d on (N, C, H, W); train and eval; affine or
  not; momentum 0.1 and None (the cumulative average); float32 and float64: outputs, gradients of
  input, weight and bias, running statistics and num_batches_tracked over three steps;
- first and second derivatives of F.batch_norm under numba against finite differences;
- a contractive-style penalty ||d sum(bn(x) c) / dx||^2 differentiated w.r.t. the parameters;
- the same errors, word for word, for bad inputs on both backends;
- leaky relu: the fused op against the composite (values, gradients, the slope at 0), gradcheck
  and gradgradcheck.
"""
import numpy as np
import pytest

import tinygen as tg
import tinygen.nn.functional as F
from tinygen import nn

pytestmark = pytest.mark.skipif("numba" not in tg.backend.available(),
                                reason="the numba backend is not available")

LAYER_CASES = [
    (nn.BatchNorm1d, (6, 3)),
    (nn.BatchNorm1d, (4, 3, 5)),
    (nn.BatchNorm2d, (3, 3, 4, 5)),
]
LAYER_IDS = ["1d_NC", "1d_NCL", "2d_NCHW"]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPE_IDS = ["float32", "float64"]


def _f64(array, requires_grad=True):
    return tg.tensor(array, dtype="float64", requires_grad=requires_grad)


def _assert_close(got, expected, dtype, what):
    assert got.dtype == expected.dtype, f"{what}: {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape, what
    rtol = RTOL[dtype]
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def _make_layer(cls, shape, affine, momentum, dtype, seed=0):
    """A layer with random weight, bias and running statistics (so that none of them hides)."""
    rng = np.random.default_rng(seed)
    layer = cls(shape[1], momentum=momentum, affine=affine)
    if dtype == np.float64:
        layer.double()
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    layer.running_mean.data[...] = rng.standard_normal(shape[1])
    layer.running_var.data[...] = rng.uniform(0.5, 2.0, shape[1])
    return layer


def _three_steps(backend_name, cls, shape, training, affine, momentum, dtype):
    """Run three forward/backward steps; -> every array worth comparing, by name."""
    layer = _make_layer(cls, shape, affine, momentum, dtype).train(training)
    rng = np.random.default_rng(1)
    results = {}
    with tg.backend.use(backend_name):
        for step in range(3):
            data = (step - 1 + (1 + step) * rng.standard_normal(shape)).astype(dtype)
            x = tg.tensor(data, dtype=dtype, requires_grad=True)
            c = tg.tensor(rng.standard_normal(shape), dtype=dtype)
            y = layer(x)
            # a weighted sum; a plain sum (its gradient a broadcast view); a square
            loss = [(y * c).sum(), y.sum(), (y * y * c).sum()][step]
            loss.backward()
            results[f"y{step}"] = y.data
            results[f"x.grad{step}"] = x.grad.data
            results[f"running_mean{step}"] = layer.running_mean.data.copy()
            results[f"running_var{step}"] = layer.running_var.data.copy()
            results[f"num_batches_tracked{step}"] = np.array(layer.num_batches_tracked)
    for name, p in layer.named_parameters():
        results[f"{name}.grad"] = p.grad.data
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=DTYPE_IDS)
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum0.1", "momentumNone"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cls, shape", LAYER_CASES, ids=LAYER_IDS)
def test_layer_under_numba_equals_the_numpy_backend(cls, shape, training, affine, momentum,
                                                    dtype):
    got = _three_steps("numba", cls, shape, training, affine, momentum, dtype)
    expected = _three_steps("numpy", cls, shape, training, affine, momentum, dtype)
    assert sorted(got) == sorted(expected)
    assert ("weight.grad" in got) == affine
    for name in expected:
        if name.startswith("num_batches_tracked"):
            assert got[name] == expected[name], name
        else:
            _assert_close(got[name], expected[name], dtype, name)
    assert got["y0"].dtype == dtype and got["x.grad0"].dtype == dtype
    assert got["num_batches_tracked2"] == (3 if training else 0)
    if not training:  # evaluation leaves the running statistics alone
        fresh = _make_layer(cls, shape, affine, momentum, dtype)
        np.testing.assert_array_equal(got["running_mean2"], fresh.running_mean.data)
        np.testing.assert_array_equal(got["running_var2"], fresh.running_var.data)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_numba_backend_runs_the_fused_ops_and_numpy_the_composite(training):
    rng = np.random.default_rng(2)
    x = _f64(rng.standard_normal((4, 3, 2)))
    mean, var = _f64(np.zeros(3), False), _f64(np.ones(3), False)
    with tg.backend.use("numba"):
        fused = F.batch_norm(x, mean, var, training=training)
    with tg.backend.use("numpy"):
        composite = F.batch_norm(x, mean, var, training=training)
    assert fused._ctx.name == ("BatchNormTrain" if training else "ScaleShift")
    assert composite._ctx.name not in ("BatchNormTrain", "ScaleShift")


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_non_contiguous_input_under_numba_equals_the_numpy_backend(training):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, 4, 5, 2))  # (N, H, W, C)
    c = _f64(rng.standard_normal((3, 2, 4, 5)), False)
    results = {}
    for name in ("numba", "numpy"):
        layer = _make_layer(nn.BatchNorm2d, (3, 2), True, 0.1, np.float64).train(training)
        x = _f64(base)
        with tg.backend.use(name):
            nchw = x.transpose(0, 3, 1, 2)  # a non-contiguous view
            assert not nchw.data.flags.c_contiguous
            y = layer(nchw)
            (y * c).sum().backward()
        results[name] = (y.data, x.grad.data, layer.weight.grad.data, layer.bias.grad.data,
                         layer.running_mean.data, layer.running_var.data)
    for got, expected in zip(results["numba"], results["numpy"]):
        _assert_close(got, expected, np.float64, "non-contiguous")


# ---- derivatives against finite differences --------------------------------------------------

GRAD_SHAPES = [(4, 2), (2, 2, 3), (2, 2, 2, 2)]


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", GRAD_SHAPES, ids=LAYER_IDS)
def test_batch_norm_under_numba_gradcheck_and_gradgradcheck(shape, training, affine):
    rng = np.random.default_rng(4)
    channels = shape[1]
    x = _f64(rng.standard_normal(shape))
    weight = _f64(rng.standard_normal(channels))
    bias = _f64(rng.standard_normal(channels))
    running_mean = _f64(rng.standard_normal(channels), False)
    running_var = _f64(rng.uniform(0.5, 2.0, channels), False)

    def bn(x, weight=None, bias=None):
        return F.batch_norm(x, running_mean, running_var, weight, bias, training=training,
                            eps=1e-3)

    inputs = [x, weight, bias] if affine else [x]
    with tg.backend.use("numba"):
        assert bn(*inputs)._ctx.name == ("BatchNormTrain" if training else "ScaleShift")
        assert tg.gradcheck(bn, inputs)
        assert tg.gradgradcheck(bn, inputs)


def test_training_batch_norm_under_numba_without_running_statistics_gradchecks():
    rng = np.random.default_rng(5)
    x = _f64(rng.standard_normal((3, 2, 4)))
    weight = _f64(rng.standard_normal(2))
    bias = _f64(rng.standard_normal(2))

    def bn(x, weight, bias):
        return F.batch_norm(x, None, None, weight, bias, training=True)

    with tg.backend.use("numba"):
        assert tg.gradcheck(bn, [x, weight, bias])
        assert tg.gradgradcheck(bn, [x, weight, bias])


# ---- double backward ----------------------------------------------------------------------------

def _contractive_penalty(backend_name, cls, shape, training):
    """||d sum(bn(x) c) / dx||^2, differentiated w.r.t. x, weight and bias."""
    layer = _make_layer(cls, shape, True, 0.1, np.float64, seed=6).train(training)
    rng = np.random.default_rng(7)
    x = _f64(rng.standard_normal(shape))
    c = _f64(rng.standard_normal(shape), False)
    with tg.backend.use(backend_name):
        (gx,) = tg.grad((layer(x) * c).sum(), x, create_graph=True)
        assert gx.requires_grad
        penalty = (gx * gx).sum()
        penalty.backward()
    grads = {name: None if t.grad is None else t.grad.data
             for name, t in (("x.grad", x), ("weight.grad", layer.weight),
                             ("bias.grad", layer.bias))}
    return {"gx": gx.data, "penalty": np.array(penalty.item()),
            "running_var": layer.running_var.data, **grads}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cls, shape", LAYER_CASES, ids=LAYER_IDS)
def test_double_backward_of_a_contractive_penalty_equals_the_numpy_backend(cls, shape,
                                                                           training):
    got = _contractive_penalty("numba", cls, shape, training)
    expected = _contractive_penalty("numpy", cls, shape, training)
    for name in expected:
        if expected[name] is None or got[name] is None:
            # what d(...)/dx does not depend on (bias; x in evaluation): no gradient, or a
            # zero one, on either backend
            for value in (got[name], expected[name]):
                assert value is None or not np.any(value), name
            continue
        _assert_close(got[name], expected[name], np.float64, name)
    assert np.any(got["weight.grad"])


# ---- errors -------------------------------------------------------------------------------------

def _stats(channels):
    return tg.zeros(channels), tg.ones(channels)


BAD_CALLS = {
    "layer_1d_one_value_per_channel": (
        lambda: nn.BatchNorm1d(3)(tg.zeros(1, 3)), "more than 1 value per channel"),
    "layer_2d_one_value_per_channel": (
        lambda: nn.BatchNorm2d(3)(tg.zeros(1, 3, 1, 1)), "more than 1 value per channel"),
    "functional_one_value_per_channel": (
        lambda: F.batch_norm(tg.zeros(1, 3, 1), *_stats(3), training=True),
        "more than 1 value per channel"),
    "layer_wrong_channel_count": (
        lambda: nn.BatchNorm2d(3)(tg.zeros(2, 4, 2, 2)), r"BatchNorm2d\(3\): input has 4 channels"),
    "functional_wrong_running_mean": (
        lambda: F.batch_norm(tg.zeros(4, 2), *_stats(3), training=True),
        r"running_mean has shape \(3,\), expected \(2,\)"),
    "functional_wrong_weight": (
        lambda: F.batch_norm(tg.zeros(4, 3), *_stats(3), tg.ones(2), training=False),
        r"weight has shape \(2,\), expected \(3,\)"),
    "functional_eval_without_running_stats": (
        lambda: F.batch_norm(tg.zeros(4, 3), None, None, training=False),
        "evaluation mode needs running_mean and running_var"),
    "layer_wrong_ndim": (
        lambda: nn.BatchNorm1d(3)(tg.zeros(2, 3, 2, 2)), "expected input"),
    "functional_1d_input": (
        lambda: F.batch_norm(tg.zeros(3), *_stats(3), training=True), "at least 2-D"),
}


@pytest.mark.parametrize("call, pattern", list(BAD_CALLS.values()), ids=list(BAD_CALLS))
def test_bad_inputs_give_the_same_error_on_both_backends(call, pattern):
    messages = {}
    for name in ("numba", "numpy"):
        with tg.backend.use(name):
            with pytest.raises(ValueError, match=pattern) as error:
                call()
        messages[name] = str(error.value)
    assert messages["numba"] == messages["numpy"]


def test_a_refused_training_call_leaves_the_running_statistics_alone():
    mean, var = tg.tensor([0.5, -0.5]), tg.tensor([2.0, 3.0])
    for name in ("numba", "numpy"):
        with tg.backend.use(name):
            with pytest.raises(ValueError, match="more than 1 value per channel"):
                F.batch_norm(tg.ones(1, 2), mean, var, training=True)
        np.testing.assert_array_equal(mean.data, [0.5, -0.5])
        np.testing.assert_array_equal(var.data, [2.0, 3.0])


# ---- leaky relu ---------------------------------------------------------------------------------

def _upstream(values, dtype):
    """A fixed upstream gradient with no zeros (1 to 2), so that every slope shows in dL/dx."""
    return tg.tensor(1 + np.linspace(0, 1, values.size).reshape(values.shape), dtype=dtype)


def _leaky_relu_and_gradient(backend_name, values, dtype, slope):
    with tg.backend.use(backend_name):
        x = tg.tensor(values, dtype=dtype, requires_grad=True)
        y = F.leaky_relu(x, slope)
        y.backward(_upstream(values, dtype))  # dL/dx = upstream * slope(x)
        return y, x.grad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("slope", [0.2, 0.01])
def test_fused_leaky_relu_equals_the_composite_including_the_slope_at_zero(dtype, slope):
    values = np.random.default_rng(0).standard_normal((3, 4, 5, 7))
    values[0, 0, 0, :3] = 0.0  # at 0 the slope is negative_slope, as PyTorch's
    y_numba, grad_numba = _leaky_relu_and_gradient("numba", values, dtype, slope)
    y_numpy, grad_numpy = _leaky_relu_and_gradient("numpy", values, dtype, slope)
    assert type(y_numba._ctx).__name__ == "LeakyReLU"
    assert type(y_numpy._ctx).__name__ == "Mul"
    assert y_numba.dtype == y_numpy.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y_numba.data, y_numpy.data)
    np.testing.assert_array_equal(grad_numba.data, grad_numpy.data)
    expected = np.where(values > 0, values, slope * values).astype(dtype)
    np.testing.assert_allclose(y_numba.data, expected, rtol=1e-6)
    expected_grad = np.where(values > 0, 1.0, slope) * _upstream(values, dtype).numpy()
    np.testing.assert_allclose(grad_numba.data, expected_grad, rtol=1e-6)
    np.testing.assert_allclose(grad_numba.data[0, 0, 0, :3],  # at 0: negative_slope
                               slope * _upstream(values, dtype).numpy()[0, 0, 0, :3], rtol=1e-6)


def test_fused_leaky_relu_gradcheck_and_gradgradcheck():
    x = _f64(np.random.default_rng(1).standard_normal((2, 3, 4)))
    with tg.backend.use("numba"):
        assert tg.gradcheck(lambda a: F.leaky_relu(a, 0.2), x)
        assert tg.gradgradcheck(lambda a: F.leaky_relu(a, 0.2) ** 2, x)


@pytest.mark.parametrize("shape", [(5, 600), (4, 300, 2)], ids=["NC_three_column_blocks", "NCL"])
def test_wide_batch_norm1d_under_numba_equals_the_numpy_backend(shape):
    # (N, C) inputs run a kernel that hands each thread blocks of 256 columns: C = 600 spans three
    values = np.random.default_rng(3).standard_normal(shape) * 3 + 1
    upstream = np.random.default_rng(4).standard_normal(shape)
    results = {}
    for name in ("numpy", "numba"):
        with tg.backend.use(name):
            layer = nn.BatchNorm1d(shape[1]).double()
            layer.weight.data[:] = np.linspace(0.5, 2, shape[1])
            x = _f64(values)
            y = layer(x)
            y.backward(_f64(upstream, requires_grad=False))
            results[name] = (y.data, x.grad.data, layer.weight.grad.data, layer.bias.grad.data,
                             layer.running_var.data.copy())
    for got, expected in zip(results["numba"], results["numpy"]):
        _assert_close(got, expected, np.float64, "wide batch norm")
