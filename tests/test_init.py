"""tinygen.nn.init against PyTorch's formulas written here in closed form: gains, fans, the default
initialisation of Linear / Conv2d / ConvTranspose2d, and each initialiser's bound or standard
deviation measured on many draws; in place, float32 kept, reproducible under manual_seed."""
import math

import numpy as np
import pytest

import tinygen as tg
from tinygen import nn
from tinygen.nn import init


def _empty(*shape):
    return tg.zeros(*shape)


# ---- calculate_gain -----------------------------------------------------------------------------
@pytest.mark.parametrize("nonlinearity, param, expected", [
    ("linear", None, 1.0),
    ("conv2d", None, 1.0),
    ("conv_transpose2d", None, 1.0),
    ("sigmoid", None, 1.0),
    ("tanh", None, 5 / 3),
    ("relu", None, math.sqrt(2)),
    ("leaky_relu", None, math.sqrt(2 / (1 + 0.01 ** 2))),
    ("leaky_relu", 0.2, math.sqrt(2 / (1 + 0.2 ** 2))),
    ("leaky_relu", 0.0, math.sqrt(2)),
    ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)),
])
def test_calculate_gain_matches_pytorch_table(nonlinearity, param, expected):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-12)


def test_calculate_gain_rejects_unknown_nonlinearity():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


# ---- fans ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, fan_in, fan_out", [
    ((5, 3), 3, 5),  # Linear(3, 5).weight
    ((8, 4, 3, 2), 4 * 6, 8 * 6),  # Conv2d(4, 8, (3, 2)).weight
    ((4, 8, 3, 3), 8 * 9, 4 * 9),  # ConvTranspose2d(4, 8, 3).weight: PyTorch reads axis 1 as in
    ((2, 7, 1, 1), 7, 2),
])
def test_fan_in_and_fan_out_are_axis1_and_axis0_times_receptive_field(shape, fan_in, fan_out):
    assert init.fan_in_and_fan_out(_empty(*shape)) == (fan_in, fan_out)


def test_fans_of_layer_weights():
    assert init.fan_in_and_fan_out(nn.Linear(3, 5).weight) == (3, 5)
    assert init.fan_in_and_fan_out(nn.Conv2d(4, 8, 3).weight) == (36, 72)
    assert init.fan_in_and_fan_out(nn.ConvTranspose2d(4, 8, 3).weight) == (72, 36)


@pytest.mark.parametrize("fn", [
    init.fan_in_and_fan_out, init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
    init.kaiming_normal_,
], ids=lambda f: f.__name__)
def test_fans_of_a_1d_tensor_raise(fn):
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fn(_empty(5))


@pytest.mark.parametrize("fn", [init.kaiming_uniform_, init.kaiming_normal_],
                         ids=lambda f: f.__name__)
def test_kaiming_rejects_unknown_mode(fn):
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        fn(_empty(3, 3), mode="fan_avg")


# ---- default initialisation of the layers -------------------------------------------------------
# (id, layer, fan_in by PyTorch's rule computed from the constructor's arguments)
SMALL_LAYERS = [
    ("linear", lambda: nn.Linear(7, 5), 7),
    ("conv2d", lambda: nn.Conv2d(3, 6, (3, 2)), 3 * 3 * 2),
    ("conv_transpose2d", lambda: nn.ConvTranspose2d(3, 6, 4), 6 * 4 * 4),
]


@pytest.mark.parametrize("make, fan_in", [c[1:] for c in SMALL_LAYERS],
                         ids=[c[0] for c in SMALL_LAYERS])
def test_default_weights_and_biases_lie_within_one_over_sqrt_fan_in(make, fan_in):
    tg.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32
        assert np.all(np.abs(p.data) <= bound)
        assert np.any(p.data != 0)


LARGE_LAYERS = [
    ("linear", lambda: nn.Linear(1000, 400), 1000),
    ("conv2d", lambda: nn.Conv2d(64, 128, 4), 64 * 16),
    # weight (64, 128, 4, 4): PyTorch's fan_in is weight.shape[1] * kH * kW = 2048, not 64 * 16.
    ("conv_transpose2d", lambda: nn.ConvTranspose2d(64, 128, 4), 128 * 16),
]


@pytest.mark.parametrize("make, fan_in", [c[1:] for c in LARGE_LAYERS],
                         ids=[c[0] for c in LARGE_LAYERS])
def test_default_weights_of_a_large_layer_are_uniform_with_pytorch_bound(make, fan_in):
    tg.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.data.astype(np.float64)
    assert w.size >= 100_000
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound  # fills the whole interval
    # U(-b, b) has mean 0 and standard deviation b / sqrt(3); with n >= 1e5 draws the relative
    # standard error of the empirical std is about 0.3 %.
    assert abs(w.mean()) < 0.01 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    b = layer.bias.data.astype(np.float64)
    assert np.abs(b).max() <= bound
    assert b.std() == pytest.approx(bound / math.sqrt(3), rel=0.2)  # only out_channels draws


# ---- the initialisers ---------------------------------------------------------------------------
def test_normal_has_requested_mean_and_std_on_many_draws():
    tg.manual_seed(0)
    t = init.normal_(_empty(100_000), 0.0, 0.02)
    # standard errors: of the mean 0.02 / sqrt(n) = 6e-5, of the std 0.02 / sqrt(2 n) = 4.5e-5
    assert abs(t.data.mean()) < 5 * 0.02 / math.sqrt(1e5)
    assert t.data.std() == pytest.approx(0.02, rel=0.01)
    t = init.normal_(_empty(100_000), 1.0, 0.02)  # DCGAN's batch-norm weights
    assert t.data.mean() == pytest.approx(1.0, abs=5 * 0.02 / math.sqrt(1e5))


def test_uniform_stays_within_its_interval_and_covers_it():
    tg.manual_seed(0)
    t = init.uniform_(_empty(100_000), -0.3, 0.7)
    assert t.data.min() >= -0.3 and t.data.max() <= 0.7
    assert t.data.min() < -0.299 and t.data.max() > 0.699
    assert t.data.mean() == pytest.approx(0.2, abs=0.005)


def test_zeros_ones_and_constant_fill_every_element():
    t = tg.randn(3, 4)
    np.testing.assert_array_equal(init.zeros_(t).data, np.zeros((3, 4)))
    np.testing.assert_array_equal(init.ones_(t).data, np.ones((3, 4)))
    np.testing.assert_array_equal(init.constant_(t, 0.3).data, np.full((3, 4), np.float32(0.3)))


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_uniform_bound_is_gain_sqrt_6_over_fan_in_plus_fan_out(gain):
    tg.manual_seed(0)
    t = init.xavier_uniform_(_empty(300, 200), gain=gain)  # fan_in 200, fan_out 300
    bound = gain * math.sqrt(6 / (200 + 300))
    w = t.data.astype(np.float64)
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.999 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_normal_std_is_gain_sqrt_2_over_fan_in_plus_fan_out(gain):
    tg.manual_seed(0)
    t = init.xavier_normal_(_empty(64, 32, 3, 3), gain=gain)  # fan_in 288, fan_out 576
    std = gain * math.sqrt(2 / (288 + 576))
    assert abs(t.data.mean()) < 0.02 * std
    assert t.data.std() == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize("mode, fan", [("fan_in", 64 * 9), ("fan_out", 128 * 9)])
@pytest.mark.parametrize("fn", [init.kaiming_uniform_, init.kaiming_normal_],
                         ids=["uniform", "normal"])
def test_kaiming_relu_std_is_sqrt_2_over_fan(fn, mode, fan):
    tg.manual_seed(0)
    t = fn(_empty(128, 64, 3, 3), mode=mode, nonlinearity="relu")
    expected_std = math.sqrt(2) / math.sqrt(fan)  # He et al. 2015
    w = t.data.astype(np.float64)
    assert abs(w.mean()) < 0.02 * expected_std
    assert w.std() == pytest.approx(expected_std, rel=0.02)
    if fn is init.kaiming_uniform_:
        bound = math.sqrt(3) * expected_std
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.999 * bound


def test_kaiming_uniform_with_leaky_slope_sqrt5_gives_one_over_sqrt_fan_in():
    # PyTorch's default for Linear and Conv: gain sqrt(2 / (1 + 5)), so bound = 1 / sqrt(fan_in).
    tg.manual_seed(0)
    w = init.kaiming_uniform_(_empty(400, 250), a=math.sqrt(5)).data
    assert np.abs(w).max() <= 1 / math.sqrt(250)
    assert np.abs(w).max() > 0.999 / math.sqrt(250)


INITIALISERS = [
    ("uniform_", lambda t: init.uniform_(t, -1, 1)),
    ("normal_", lambda t: init.normal_(t, 0, 0.02)),
    ("constant_", lambda t: init.constant_(t, 0.5)),
    ("zeros_", init.zeros_),
    ("ones_", init.ones_),
    ("xavier_uniform_", init.xavier_uniform_),
    ("xavier_normal_", init.xavier_normal_),
    ("kaiming_uniform_", init.kaiming_uniform_),
    ("kaiming_normal_", lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")),
]


@pytest.mark.parametrize("fn", [i[1] for i in INITIALISERS], ids=[i[0] for i in INITIALISERS])
def test_initialisers_work_in_place_keep_float32_and_return_the_tensor(fn):
    layer = nn.Conv2d(3, 4, 3)
    array = layer.weight.data
    before = array.copy()
    result = fn(layer.weight)
    assert result is layer.weight
    assert layer.weight.data is array  # the same array object, written in place
    assert array.dtype == np.float32
    assert layer.weight.requires_grad and layer.weight.is_leaf
    assert not np.array_equal(array, before)


def test_initialisers_keep_float64_of_a_double_layer():
    layer = nn.Linear(4, 3).double()
    init.normal_(layer.weight, 0, 0.02)
    assert layer.weight.dtype == np.float64


# ---- reproducibility ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: nn.Linear(5, 4),
    lambda: nn.Conv2d(2, 3, 3),
    lambda: nn.ConvTranspose2d(2, 3, 3),
], ids=["linear", "conv2d", "conv_transpose2d"])
def test_layers_are_reproducible_after_manual_seed(make):
    tg.manual_seed(123)
    first = make().state_dict()
    tg.manual_seed(123)
    second = make().state_dict()
    tg.manual_seed(124)
    third = make().state_dict()
    for key in ("weight", "bias"):
        np.testing.assert_array_equal(first[key], second[key])
        assert not np.array_equal(first[key], third[key])


def test_initialisers_are_reproducible_after_manual_seed():
    tg.manual_seed(5)
    a = init.kaiming_normal_(_empty(6, 4)).data.copy()
    b = init.xavier_uniform_(_empty(6, 4)).data.copy()
    tg.manual_seed(5)
    np.testing.assert_array_equal(init.kaiming_normal_(_empty(6, 4)).data, a)
    np.testing.assert_array_equal(init.xavier_uniform_(_empty(6, 4)).data, b)


# ---- optional cross-check against PyTorch -------------------------------------------------------
def test_calculate_gain_and_fans_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.2), ("conv2d", None)]:
        expected = torch.nn.init.calculate_gain(name, param)
        assert init.calculate_gain(name, param) == pytest.approx(expected, rel=1e-12)
    for shape in [(5, 3), (8, 4, 3, 2), (4, 8, 3, 3)]:
        expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert init.fan_in_and_fan_out(_empty(*shape)) == expected
