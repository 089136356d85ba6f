"""Every layer of tinygen.nn against an independent reference written here in NumPy (a formula or a
direct loop), in training and evaluation mode where they differ; gradients against finite
differences in float64. A few optional cross-checks against PyTorch run only where it is
installed."""
import numpy as np
import pytest

import tinygen as tg
import tinygen.nn.functional as F
from tinygen import nn


def _f64(array, requires_grad=True):
    return tg.tensor(array, dtype="float64", requires_grad=requires_grad)


def _randomize(layer, rng, scale=1.0):
    """Give every parameter random values (so that BatchNorm's weight 1, bias 0 hide nothing)."""
    for p in layer.parameters():
        p.data[...] = scale * rng.standard_normal(p.shape)
    return layer


# ---- NumPy references ---------------------------------------------------------------------------
def conv2d_loop(x, w, b, stride, padding):
    """Direct cross-correlation: out[n, o, i, j] = sum_{c, ki, kj} xpad[n, c, i s + ki, j s + kj]
    w[o, c, ki, kj] + b[o]."""
    (sh, sw), (ph, pw) = stride, padding
    n, _, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c_out, oh, ow))
    for b_i in range(n):
        for o in range(c_out):
            for i in range(oh):
                for j in range(ow):
                    patch = xp[b_i, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[b_i, o, i, j] = np.sum(patch * w[o])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def conv_transpose2d_loop(x, w, b, stride, padding, output_padding=(0, 0)):
    """Direct scatter: every input pixel x[n, c, i, j] adds x * w[c] to the output window at
    (i s - p, j s - p); the result is cropped by padding (and extended by output_padding)."""
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    n, c_in, h, wd = x.shape
    _, c_out, kh, kw = w.shape
    oh = (h - 1) * sh - 2 * ph + kh + oph
    ow = (wd - 1) * sw - 2 * pw + kw + opw
    full = np.zeros((n, c_out, (h - 1) * sh + kh + oph, (wd - 1) * sw + kw + opw))
    for b_i in range(n):
        for c in range(c_in):
            for i in range(h):
                for j in range(wd):
                    full[b_i, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += x[b_i, c, i, j] * w[c]
    out = full[:, :, ph:ph + oh, pw:pw + ow]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


def batch_norm_ref(x, mean, var, weight, bias, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape) + bias.reshape(shape)
    return y


def _channel_axes(x):
    return (0,) + tuple(range(2, x.ndim))


# ---- Linear -------------------------------------------------------------------------------------
def test_linear_parameter_shapes_and_state_dict_keys_follow_pytorch():
    layer = nn.Linear(3, 5)
    assert layer.weight.shape == (5, 3)
    assert layer.bias.shape == (5,)
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert [p is q for p, q in zip(layer.parameters(), [layer.weight, layer.bias])] == [True, True]
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)], ids=["2d", "3d_batch_time"])
def test_linear_forward_matches_x_times_weight_transposed_plus_bias(shape, rng):
    layer = nn.Linear(3, 2)
    x = rng.standard_normal(shape).astype(np.float32)
    out = layer(tg.tensor(x))
    assert out.shape == shape[:-1] + (2,)
    expected = x @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)


def test_linear_without_bias_has_only_a_weight_and_computes_x_times_weight_transposed(rng):
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [p.shape for p in layer.parameters()] == [(2, 3)]
    assert list(layer.state_dict()) == ["weight"]
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(layer(tg.tensor(x)).data, x @ layer.weight.data.T, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 3)], ids=["2d", "3d"])
def test_linear_gradients_match_finite_differences_to_second_order(shape, rng):
    layer = nn.Linear(3, 2).double()
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    x = _f64(rng.standard_normal(shape))
    inputs = [x, layer.weight, layer.bias]
    assert tg.gradcheck(lambda x, w, b: layer(x), inputs)
    assert tg.gradgradcheck(lambda x, w, b: layer(x), inputs)


def test_linear_weight_gradient_arrives_in_the_weights_layout(rng):
    # Computed as g^T x (not as the transpose of x^T g): a C-contiguous array that Adam's fused
    # update reads without a copy, and that .grad keeps without one. Used twice (a GAN's D on
    # real and on fake images), the two gradients are summed before they reach .grad.
    layer = nn.Linear(3, 2)
    real, fake = (tg.tensor(rng.standard_normal((4, 3)), dtype="float32") for _ in range(2))
    (layer(real).sum() + layer(fake).sum()).backward()
    assert layer.weight.grad.data.flags.c_contiguous
    assert layer.weight.grad.data.base is None


def test_linear_wrong_feature_count_names_both_sizes():
    with pytest.raises(ValueError, match=r"has 4 features but weight \(2, 3\) expects 3"):
        nn.Linear(3, 2)(tg.zeros(5, 4))


# ---- Conv2d and ConvTranspose2d -----------------------------------------------------------------
def test_conv_parameter_shapes_follow_pytorch():
    conv = nn.Conv2d(3, 8, 5)
    assert conv.weight.shape == (8, 3, 5, 5) and conv.bias.shape == (8,)
    deconv = nn.ConvTranspose2d(3, 8, 5)
    assert deconv.weight.shape == (3, 8, 5, 5) and deconv.bias.shape == (8,)
    assert list(conv.state_dict()) == ["weight", "bias"]
    assert list(deconv.state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize("layer, in_shape, out_shape", [
    (lambda: nn.Conv2d(1, 64, 4, 2, 1), (2, 1, 28, 28), (2, 64, 14, 14)),
    (lambda: nn.Conv2d(64, 128, 4, 2, 1), (2, 64, 14, 14), (2, 128, 7, 7)),
    (lambda: nn.ConvTranspose2d(128, 64, 4, 2, 1), (2, 128, 7, 7), (2, 64, 14, 14)),
    (lambda: nn.ConvTranspose2d(64, 1, 4, 2, 1), (2, 64, 14, 14), (2, 1, 28, 28)),
], ids=["conv_28_to_14", "conv_14_to_7", "deconv_7_to_14", "deconv_14_to_28"])
def test_dcgan_mnist_layers_give_pytorch_output_shapes(layer, in_shape, out_shape):
    assert layer()(tg.zeros(*in_shape)).shape == out_shape


def test_conv_layers_accept_pairs_for_kernel_stride_and_padding():
    conv = nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0))
    assert conv.weight.shape == (3, 2, 3, 2)
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 2), (2, 1), (1, 0))
    # OH = (7 + 2 - 3) // 2 + 1 = 4, OW = (6 - 2) // 1 + 1 = 5
    assert conv(tg.zeros(1, 2, 7, 6)).shape == (1, 3, 4, 5)
    deconv = nn.ConvTranspose2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0))
    assert deconv.weight.shape == (2, 3, 3, 2)
    # OH = (4 - 1) 2 - 2 + 3 + 1 = 8, OW = (5 - 1) 1 - 0 + 2 + 0 = 6
    assert deconv(tg.zeros(1, 2, 4, 5)).shape == (1, 3, 8, 6)


CONV_CASES = [  # (kernel, stride, padding, input (N, C, H, W))
    (3, 1, 0, (2, 2, 5, 5)),
    (3, 2, 1, (1, 2, 6, 5)),
    ((2, 3), (2, 1), (0, 1), (2, 3, 5, 4)),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("kernel, stride, padding, shape", CONV_CASES)
def test_conv2d_layer_matches_direct_numpy_loop(kernel, stride, padding, shape, bias, rng):
    layer = nn.Conv2d(shape[1], 3, kernel, stride, padding, bias=bias)
    if not bias:
        assert layer.bias is None and list(layer.state_dict()) == ["weight"]
    x = rng.standard_normal(shape).astype(np.float32)
    b = None if layer.bias is None else layer.bias.data
    expected = conv2d_loop(x, layer.weight.data, b, layer.stride, layer.padding)
    np.testing.assert_allclose(layer(tg.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


DECONV_CASES = [  # (kernel, stride, padding, output_padding, input (N, C, H, W))
    (3, 1, 0, 0, (2, 2, 3, 3)),
    (4, 2, 1, 0, (1, 3, 3, 2)),
    (3, 2, 1, 1, (2, 2, 3, 3)),
    ((2, 3), (2, 1), (0, 1), (1, 0), (1, 2, 3, 4)),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("kernel, stride, padding, output_padding, shape", DECONV_CASES)
def test_conv_transpose2d_layer_matches_direct_numpy_scatter_loop(
        kernel, stride, padding, output_padding, shape, bias, rng):
    layer = nn.ConvTranspose2d(shape[1], 3, kernel, stride, padding, output_padding, bias=bias)
    if not bias:
        assert layer.bias is None and list(layer.state_dict()) == ["weight"]
    x = rng.standard_normal(shape).astype(np.float32)
    b = None if layer.bias is None else layer.bias.data
    expected = conv_transpose2d_loop(x, layer.weight.data, b, layer.stride, layer.padding,
                                     layer.output_padding)
    np.testing.assert_allclose(layer(tg.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), (1, 2, 5, 5)),
    (lambda: nn.Conv2d(2, 2, (2, 3), stride=(1, 2), bias=False), (2, 2, 3, 5)),
    (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), (1, 2, 3, 3)),
    (lambda: nn.ConvTranspose2d(3, 2, (2, 3), stride=(2, 1), bias=False), (1, 3, 2, 3)),
], ids=["conv", "conv_rect_no_bias", "deconv_output_padding", "deconv_rect_no_bias"])
def test_conv_layer_gradients_match_finite_differences(make, shape, rng):
    layer = make().double()
    x = _f64(rng.standard_normal(shape))
    inputs = [x] + list(layer.parameters())
    assert tg.gradcheck(lambda *args: layer(args[0]), inputs)


# ---- BatchNorm ----------------------------------------------------------------------------------
BN_CASES = [
    (nn.BatchNorm1d, (8, 3)),
    (nn.BatchNorm1d, (4, 3, 5)),
    (nn.BatchNorm2d, (4, 3, 2, 3)),
]
BN_IDS = ["1d_NC", "1d_NCL", "2d_NCHW"]


@pytest.mark.parametrize("cls, shape", BN_CASES, ids=BN_IDS)
def test_batch_norm_training_output_matches_biased_batch_statistics_formula(cls, shape, rng):
    layer = _randomize(cls(3, eps=1e-5), rng)
    x = (3 + 2 * rng.standard_normal(shape)).astype(np.float32)
    out = layer(tg.tensor(x))
    axes = _channel_axes(x)
    x64 = x.astype(np.float64)
    expected = batch_norm_ref(x64, x64.mean(axis=axes), x64.var(axis=axes), layer.weight.data,
                              layer.bias.data, 1e-5)
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("momentum", [0.1, 0.3])
@pytest.mark.parametrize("cls, shape", BN_CASES, ids=BN_IDS)
def test_batch_norm_running_stats_follow_recurrence_with_unbiased_variance(
        cls, shape, momentum, rng):
    layer = cls(3, momentum=momentum)
    running_mean, running_var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = (step + rng.standard_normal(shape) * (1 + step)).astype(np.float32)
        layer(tg.tensor(x))
        axes = _channel_axes(x)
        x64 = x.astype(np.float64)
        running_mean = (1 - momentum) * running_mean + momentum * x64.mean(axis=axes)
        running_var = (1 - momentum) * running_var + momentum * x64.var(axis=axes, ddof=1)
    np.testing.assert_allclose(layer.running_mean.data, running_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var.data, running_var, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, shape", BN_CASES, ids=BN_IDS)
def test_batch_norm_eval_uses_running_stats_and_leaves_them_unchanged(cls, shape, rng):
    layer = _randomize(cls(3, eps=1e-3), rng)
    layer.running_mean.data[...] = rng.standard_normal(3)
    layer.running_var.data[...] = rng.uniform(0.5, 2.0, 3)
    mean, var = layer.running_mean.data.copy(), layer.running_var.data.copy()
    layer.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    out = layer(tg.tensor(x))
    expected = batch_norm_ref(x, mean, var, layer.weight.data, layer.bias.data, 1e-3)
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.running_mean.data, mean)
    np.testing.assert_array_equal(layer.running_var.data, var)


def test_batch_norm_eval_of_a_single_sample_is_allowed_and_uses_running_stats(rng):
    layer = nn.BatchNorm1d(3).eval()
    x = rng.standard_normal((1, 3)).astype(np.float32)
    np.testing.assert_allclose(layer(tg.tensor(x)).data, x / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_batch_norm_eps_is_honoured_in_training_and_eval(rng):
    x = rng.standard_normal((6, 2)).astype(np.float64)
    layer = nn.BatchNorm1d(2, eps=0.5).double()
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 0.5)
    np.testing.assert_allclose(layer(_f64(x, False)).data, expected, rtol=1e-12)
    layer.eval()
    rm, rv = layer.running_mean.data, layer.running_var.data
    np.testing.assert_allclose(layer(_f64(x, False)).data, (x - rm) / np.sqrt(rv + 0.5),
                               rtol=1e-12)


def test_batch_norm_without_affine_has_no_parameters_and_only_normalises(rng):
    layer = nn.BatchNorm2d(3, affine=False)
    assert list(layer.parameters()) == []
    assert layer.weight is None and layer.bias is None
    assert list(layer.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    axes = _channel_axes(x)
    expected = batch_norm_ref(x, x.mean(axis=axes), x.var(axis=axes), None, None, 1e-5)
    np.testing.assert_allclose(layer(tg.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_batch_norm_state_dict_keys_and_initial_values_follow_pytorch(cls):
    state = cls(4).state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    expected = {"weight": np.ones(4), "bias": np.zeros(4), "running_mean": np.zeros(4),
                "running_var": np.ones(4)}
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value)
        assert state[key].dtype == np.float32
    assert state["num_batches_tracked"].shape == ()
    assert state["num_batches_tracked"].dtype == np.int64 and state["num_batches_tracked"] == 0


@pytest.mark.parametrize("layer, shape", [
    (lambda: nn.BatchNorm1d(3), (1, 3)),
    (lambda: nn.BatchNorm1d(3), (1, 3, 1)),
    (lambda: nn.BatchNorm2d(3), (1, 3, 1, 1)),
], ids=["1d_NC", "1d_NCL", "2d"])
def test_batch_norm_training_on_one_value_per_channel_raises(layer, shape):
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer()(tg.zeros(*shape))


def test_batch_norm_with_one_sample_but_several_positions_trains(rng):
    # (1, C, L) with L > 1 has L values per channel: allowed, as in PyTorch.
    x = rng.standard_normal((1, 2, 4)).astype(np.float32)
    out = nn.BatchNorm1d(2)(tg.tensor(x))
    expected = (x - x.mean(axis=(0, 2), keepdims=True)) / np.sqrt(
        x.var(axis=(0, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_wrong_channel_count_raises():
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): input has 2 channels"):
        nn.BatchNorm1d(3)(tg.zeros(4, 2))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): input has 4 channels"):
        nn.BatchNorm2d(3)(tg.zeros(2, 4, 2, 2))


@pytest.mark.parametrize("layer, shape", [
    (lambda: nn.BatchNorm1d(3), (2, 3, 2, 2)),
    (lambda: nn.BatchNorm1d(3), (3,)),
    (lambda: nn.BatchNorm2d(3), (2, 3)),
    (lambda: nn.BatchNorm2d(3), (2, 3, 4)),
], ids=["1d_given_4d", "1d_given_1d", "2d_given_2d", "2d_given_3d"])
def test_batch_norm_wrong_number_of_dimensions_raises(layer, shape):
    with pytest.raises(ValueError, match="expected input"):
        layer()(tg.zeros(*shape))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("cls, shape", [
    (nn.BatchNorm1d, (4, 2)),
    (nn.BatchNorm1d, (2, 2, 3)),
    (nn.BatchNorm2d, (2, 2, 2, 2)),
], ids=BN_IDS)
def test_batch_norm_gradients_match_finite_differences_to_second_order(
        cls, shape, training, rng):
    layer = _randomize(cls(2), rng).double()
    layer.running_mean.data[...] = rng.standard_normal(2)
    layer.running_var.data[...] = rng.uniform(0.5, 2.0, 2)
    layer.train(training)
    x = _f64(rng.standard_normal(shape))
    inputs = [x, layer.weight, layer.bias]
    # In training each call also moves the running statistics: that does not touch the output.
    assert tg.gradcheck(lambda x, w, b: layer(x), inputs)
    assert tg.gradgradcheck(lambda x, w, b: layer(x), inputs)


# ---- Dropout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_training_zeroes_about_p_and_scales_survivors_by_one_over_one_minus_p(p, rng):
    tg.manual_seed(0)
    x = rng.uniform(0.5, 1.5, 100_000).astype(np.float32)  # no zeros of its own
    out = nn.Dropout(p)(tg.tensor(x)).data
    assert out.dtype == np.float32
    dropped = out == 0
    # the zero count is Binomial(n, p): its standard deviation is sqrt(p (1 - p) / n) < 0.0016
    assert abs(dropped.mean() - p) < 0.01
    np.testing.assert_array_equal(out[~dropped], x[~dropped] * np.float32(1 / (1 - p)))


def test_dropout_of_float64_scales_by_exactly_one_over_one_minus_p(rng):
    x = rng.uniform(0.5, 1.5, 1000)
    out = F.dropout(_f64(x, False), 0.3, training=True).data
    kept = out != 0
    np.testing.assert_array_equal(out[kept], x[kept] * (1 / (1 - 0.3)))


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_dropout_eval_is_identity(p, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out = nn.Dropout(p).eval()(tg.tensor(x))
    np.testing.assert_array_equal(out.data, x)


def test_dropout_p0_is_identity_in_training(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(nn.Dropout(0.0)(tg.tensor(x)).data, x)


def test_dropout_p1_zeroes_everything_and_passes_no_gradient(rng):
    x = tg.tensor(rng.standard_normal(50), requires_grad=True)
    out = nn.Dropout(1.0)(x)
    np.testing.assert_array_equal(out.data, np.zeros(50))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros(50))


def test_dropout_gradient_is_the_forward_mask_over_one_minus_p(rng):
    p = 0.4
    x = tg.tensor(rng.uniform(0.5, 1.5, 2000), requires_grad=True)
    tg.manual_seed(3)
    out = nn.Dropout(p)(x)
    out.sum().backward()
    mask = out.data != 0  # x has no zeros, so zeros in out are exactly the dropped elements
    np.testing.assert_allclose(x.grad.data, mask / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(x.grad.data, out.data / x.data, rtol=1e-6)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_rejects_p_outside_unit_interval(p):
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="p must be in"):
        F.dropout(tg.zeros(3), p)


def test_dropout_is_reproducible_under_manual_seed(rng):
    x = tg.tensor(rng.standard_normal(500))
    layer = nn.Dropout(0.5)
    tg.manual_seed(11)
    first = layer(x).data
    tg.manual_seed(11)
    second = layer(x).data
    tg.manual_seed(12)
    third = layer(x).data
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)


# ---- shape layers -------------------------------------------------------------------------------
@pytest.mark.parametrize("start, end, expected", [
    (1, -1, (2, 60)),
    (0, -1, (120,)),
    (0, 1, (6, 4, 5)),
    (1, 2, (2, 12, 5)),
    (-2, -1, (2, 3, 20)),
])
def test_flatten_merges_axes_start_to_end_as_numpy_reshape(start, end, expected, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    out = nn.Flatten(start, end)(tg.tensor(x))
    assert out.shape == expected
    np.testing.assert_array_equal(out.data, x.reshape(expected))


@pytest.mark.parametrize("dim, size, in_shape, out_shape", [
    (1, (1, 28, 28), (3, 784), (3, 1, 28, 28)),
    (-1, (3, 4), (2, 5, 12), (2, 5, 3, 4)),
    (0, (2, 3), (6, 4), (2, 3, 4)),
])
def test_unflatten_splits_an_axis_as_numpy_reshape(dim, size, in_shape, out_shape, rng):
    x = rng.standard_normal(in_shape).astype(np.float32)
    out = nn.Unflatten(dim, size)(tg.tensor(x))
    assert out.shape == out_shape
    np.testing.assert_array_equal(out.data, x.reshape(out_shape))


def test_flatten_then_unflatten_round_trips_values_and_gradient(rng):
    x = tg.tensor(rng.standard_normal((2, 1, 28, 28)), requires_grad=True)
    model = nn.Sequential(nn.Flatten(), nn.Unflatten(1, (1, 28, 28)))
    out = model(x)
    np.testing.assert_array_equal(out.data, x.data)
    weights = rng.standard_normal(x.shape)
    (out * tg.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.data, weights, rtol=1e-6)


def test_unflatten_with_wrong_size_names_the_mismatch():
    with pytest.raises(ValueError, match=r"has 5 elements, which cannot be split into \(2, 3\)"):
        nn.Unflatten(1, (2, 3))(tg.zeros(2, 5))


@pytest.mark.parametrize("dim", [3, -3])  # both wrap to axis 1, which has 6 elements
def test_unflatten_with_out_of_range_dim_raises(dim):
    with pytest.raises(ValueError, match="out of range"):
        nn.Unflatten(dim, (2, 3))(tg.zeros(2, 6))


def test_batchnorm_momentum_none_keeps_the_cumulative_average_of_batch_statistics(rng):
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [rng.standard_normal((5, 2)) * 3 + 1 for _ in range(3)]
    for batch in batches:
        bn(tg.tensor(batch))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([b.mean(0) for b in batches], 0),
                               rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data,
                               np.mean([b.var(0, ddof=1) for b in batches], 0), rtol=1e-5)


def test_conv_layers_check_stride_and_padding_when_built():
    with pytest.raises(ValueError, match="stride must be positive"):
        nn.Conv2d(1, 2, 3, stride=0)
    with pytest.raises(ValueError, match="padding must be an int or a pair"):
        nn.ConvTranspose2d(1, 2, 3, padding=(1, 1, 1))


# ---- activations --------------------------------------------------------------------------------
X = np.array([-30.0, -3.0, -1.0, -0.25, 0.0, 0.25, 1.0, 3.0, 30.0])

ACTIVATIONS = [  # (id, layer, NumPy value, NumPy derivative)
    ("relu", nn.ReLU, lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
    ("leaky_relu_0.2", lambda: nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x),
     lambda x: np.where(x > 0, 1.0, 0.2)),
    ("leaky_relu_default", nn.LeakyReLU, lambda x: np.where(x > 0, x, 0.01 * x),
     lambda x: np.where(x > 0, 1.0, 0.01)),
    ("sigmoid", nn.Sigmoid, lambda x: 1 / (1 + np.exp(-x)),
     lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
    ("tanh", nn.Tanh, np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    ("softplus", nn.Softplus, lambda x: np.log1p(np.exp(x)), lambda x: 1 / (1 + np.exp(-x))),
    ("softplus_beta2", lambda: nn.Softplus(beta=2), lambda x: np.log1p(np.exp(2 * x)) / 2,
     lambda x: 1 / (1 + np.exp(-2 * x))),
    ("identity", nn.Identity, lambda x: x, np.ones_like),
]


@pytest.mark.parametrize("make, value", [a[1:3] for a in ACTIVATIONS],
                         ids=[a[0] for a in ACTIVATIONS])
def test_activation_layer_matches_numpy_formula(make, value):
    out = make()(_f64(X, False))
    np.testing.assert_allclose(out.data, value(X), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make, derivative", [(a[1], a[3]) for a in ACTIVATIONS],
                         ids=[a[0] for a in ACTIVATIONS])
def test_activation_layer_gradient_matches_closed_form_derivative(make, derivative):
    x = _f64(X[X != 0])  # the kinks of relu and leaky_relu are at 0
    make()(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, derivative(x.data), rtol=1e-12, atol=1e-15)


def test_activation_layers_keep_float32(rng):
    x = tg.tensor(rng.standard_normal(5))
    for make in [a[1] for a in ACTIVATIONS]:
        assert make()(x).dtype == np.float32


def test_identity_returns_the_same_values_and_no_parameters(rng):
    x = tg.tensor(rng.standard_normal(4))
    layer = nn.Identity()
    np.testing.assert_array_equal(layer(x).data, x.data)
    assert list(layer.parameters()) == [] and list(layer.state_dict()) == []


# ---- reprs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, text", [
    (nn.Linear(3, 2), "Linear(in_features=3, out_features=2, bias=True)"),
    (nn.Linear(3, 2, bias=False), "Linear(in_features=3, out_features=2, bias=False)"),
    (nn.LeakyReLU(0.2), "LeakyReLU(negative_slope=0.2)"),
    (nn.ReLU(), "ReLU()"),
    (nn.Sigmoid(), "Sigmoid()"),
    (nn.Tanh(), "Tanh()"),
    (nn.Identity(), "Identity()"),
    (nn.Softplus(beta=2), "Softplus(beta=2)"),
    (nn.Dropout(0.3), "Dropout(p=0.3)"),
    (nn.Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
    (nn.Unflatten(1, (1, 28, 28)), "Unflatten(dim=1, unflattened_size=(1, 28, 28))"),
    (nn.BatchNorm1d(3), "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True)"),
], ids=lambda v: v.split("(")[0] if isinstance(v, str) else "repr")
def test_layer_repr_shows_its_settings(layer, text):
    assert repr(layer) == text


def test_conv_reprs_show_pairs_as_pytorch():
    text = repr(nn.Conv2d(1, 64, 4, 2, 1))
    assert text.startswith("Conv2d(1, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1)")
    text = repr(nn.ConvTranspose2d(128, 64, 4, 2, 1))
    assert text.startswith(
        "ConvTranspose2d(128, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1)"
    )


def test_sequential_repr_nests_its_layers():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        ")"
    )


# ---- end to end ---------------------------------------------------------------------------------
def test_small_mlp_with_batch_norm_fits_a_toy_regression_with_hand_written_sgd(rng):
    tg.manual_seed(0)
    x = rng.uniform(-2, 2, (64, 2)).astype(np.float32)
    y = (np.sin(x[:, :1]) + 0.5 * x[:, 1:] ** 2).astype(np.float32)  # (64, 1)
    x, y = tg.tensor(x), tg.tensor(y)
    model = nn.Sequential(nn.Linear(2, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 1))
    lr = 0.1
    losses = []
    for _ in range(50):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad.data
    model.eval()
    eval_loss = ((model(x) - y) ** 2).mean().item()
    assert losses[-1] < losses[0] / 10
    assert eval_loss < losses[0] / 5  # the running statistics are good enough to predict with
    assert all(p.dtype == np.float32 for p in model.parameters())


# ---- optional cross-checks against PyTorch ------------------------------------------------------
def test_conv_and_batch_norm_layers_agree_with_pytorch_given_the_same_weights(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 5, 5))
    ours = nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    theirs = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(_f64(x, False)).data, expected, rtol=1e-10, atol=1e-12)

    ours = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(_f64(x, False)).data, expected, rtol=1e-10, atol=1e-12)

    ours = _randomize(nn.BatchNorm2d(3, momentum=0.2), rng).double()
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    for step in range(3):
        batch = step + rng.standard_normal((4, 3, 2, 2))
        np.testing.assert_allclose(ours(_f64(batch, False)).data,
                                   theirs(torch.from_numpy(batch)).detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    np.testing.assert_allclose(ours.running_mean.data, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), rtol=1e-12)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(_f64(x, False)).data,
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)
