"""Image transforms: ranges and dtypes, exact thresholds, Bernoulli means, seeds, errors."""
import math

import numpy as np
import pytest

import tinygen as tg
from tinygen.data import transforms
from tinygen.data.loader import DataLoader

ALL_BYTES = np.arange(256, dtype=np.uint8).reshape(16, 4, 4)  # every uint8 value once


def test_to_unit_maps_uint8_to_x_over_255_in_float32():
    x = transforms.to_unit(ALL_BYTES)
    assert x.dtype == np.float32 and x.shape == ALL_BYTES.shape
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x, ALL_BYTES.astype(np.float64) / 255, rtol=1e-7)


def test_to_unit_keeps_floats_already_in_unit_range():
    x = np.array([0.0, 0.25, 1.0])
    out = transforms.to_unit(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32))


def test_to_symmetric_maps_uint8_to_minus_one_one():
    x = transforms.to_symmetric(ALL_BYTES)
    assert x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_allclose(x, ALL_BYTES.astype(np.float64) / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(transforms.to_symmetric(np.array([0.0, 0.5, 1.0])), [-1, 0, 1])


def test_flatten_gives_one_row_per_image():
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    assert transforms.flatten(images).shape == (5, 784)
    assert transforms.flatten(np.zeros((3, 1, 4, 4))).shape == (3, 16)
    x = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    np.testing.assert_array_equal(transforms.flatten(x)[1], x[1].reshape(-1))
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\)"):
        transforms.flatten(np.zeros(5))


def test_binarize_static_threshold_is_exact_and_strict():
    p = np.array([0.0, 0.49, 0.5, 0.51, 1.0], dtype=np.float32)
    out = transforms.binarize_static(p)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(transforms.binarize_static(p, threshold=0.2), [0, 1, 1, 1, 1])


def test_binarize_static_on_uint8_compares_x_over_255():
    out = transforms.binarize_static(ALL_BYTES).reshape(-1)
    # 127 / 255 = 0.498 and 128 / 255 = 0.502
    np.testing.assert_array_equal(out, (np.arange(256) >= 128).astype(np.float32))


def test_binarize_dynamic_values_are_zero_or_one_and_extremes_are_certain(rng):
    p = np.array([[0.0, 1.0, 0.3]], dtype=np.float32).repeat(1000, axis=0)
    out = transforms.binarize_dynamic(p, rng)
    assert out.dtype == np.float32 and out.shape == p.shape
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert np.all(out[:, 0] == 0.0) and np.all(out[:, 1] == 1.0)


def test_binarize_dynamic_mean_matches_intensity_over_many_draws(rng):
    p = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    draws = np.stack([transforms.binarize_dynamic(p, rng) for _ in range(4000)])
    # standard error at most 0.5 / sqrt(4000) = 0.008
    np.testing.assert_allclose(draws.mean(axis=0), p, atol=0.03)


def test_binarize_dynamic_on_uint8_uses_x_over_255_as_probability(rng):
    images = np.full((20_000,), 51, dtype=np.uint8)  # 51 / 255 = 0.2
    assert abs(transforms.binarize_dynamic(images, rng).mean() - 0.2) < 0.01


def test_binarize_dynamic_draws_differ_and_same_seed_repeats():
    p = np.full((8, 28, 28), 0.5)
    rng = np.random.default_rng(0)
    first, second = transforms.binarize_dynamic(p, rng), transforms.binarize_dynamic(p, rng)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, transforms.binarize_dynamic(p, np.random.default_rng(0)))
    tg.manual_seed(1)
    a = transforms.binarize_dynamic(p)
    tg.manual_seed(1)
    np.testing.assert_array_equal(a, transforms.binarize_dynamic(p))


def test_binarizer_resamples_every_call_and_repeats_with_its_seed():
    p = np.full((4, 10), 0.5)
    a, b = transforms.Binarizer(seed=3), transforms.Binarizer(seed=3)
    first = a(p)
    assert not np.array_equal(first, a(p))
    np.testing.assert_array_equal(first, b(p))


def test_binarizer_in_a_loader_gives_new_binary_batches_every_epoch():
    images = np.full((16, 28, 28), 128, dtype=np.uint8)
    loader = DataLoader(images, 16, shuffle=False, transform=transforms.Binarizer(seed=0))
    epoch1, epoch2 = next(iter(loader)), next(iter(loader))
    assert epoch1.dtype == np.float32
    assert set(np.unique(epoch1.numpy())) == {0.0, 1.0}
    assert not np.array_equal(epoch1.numpy(), epoch2.numpy())


@pytest.mark.parametrize(
    "fn",
    [transforms.to_unit, transforms.to_symmetric, transforms.binarize_static,
     transforms.binarize_dynamic],
    ids=lambda f: f.__name__,
)
def test_bad_inputs_are_errors_that_name_the_problem(fn):
    with pytest.raises(TypeError, match=f"{fn.__name__}: expected uint8.*got dtype int64"):
        fn(np.array([0, 255], dtype=np.int64))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got values in \[0.0, 255.0\]"):
        fn(np.array([0.0, 255.0]))
    with pytest.raises(ValueError, match="must lie in"):
        fn(np.array([0.5, np.nan]))


def test_bad_threshold_and_rng_are_errors():
    with pytest.raises(ValueError, match="threshold must be in"):
        transforms.binarize_static(np.zeros(3), threshold=128)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        transforms.binarize_dynamic(np.zeros(3), rng=0)


# ---- dequantisation ------------------------------------------------------------------------------

def test_dequantize_keeps_every_pixel_inside_its_bin_in_float32():
    x = transforms.dequantize(ALL_BYTES, np.random.default_rng(0))
    assert x.dtype == np.float32 and x.shape == ALL_BYTES.shape
    assert x.min() >= 0.0 and x.max() < 1.0
    # pixel k lands in [k / 256, (k + 1) / 256): flooring x * 256 gives k back
    np.testing.assert_array_equal(np.floor(x.astype(np.float64) * 256), ALL_BYTES)


def test_dequantize_spreads_each_level_evenly_over_its_bin():
    pixels = np.full((200, 50), 17, dtype=np.uint8)
    offset = transforms.dequantize(pixels, np.random.default_rng(0)).astype(np.float64) * 256 - 17
    assert abs(offset.mean() - 0.5) < 4 * math.sqrt(1 / 12 / offset.size)  # U[0, 1): mean 1/2
    assert abs(offset.var() - 1 / 12) < 0.005                               # and variance 1/12


class _AlmostOne(np.random.Generator):
    """A generator whose uniform draws are all just below 1."""

    def random(self, size=None):
        return np.full(size, 1 - 1e-12)


def test_dequantize_never_rounds_the_top_level_up_to_one():
    pixels = np.full((3, 3), 255, dtype=np.uint8)
    x = transforms.dequantize(pixels, _AlmostOne(np.random.PCG64(0)))
    assert x.max() < 1.0


def test_dequantize_draws_new_noise_every_call_and_the_same_with_the_same_seed():
    first = transforms.dequantize(ALL_BYTES, np.random.default_rng(0))
    again = transforms.dequantize(ALL_BYTES, np.random.default_rng(0))
    other_seed = transforms.dequantize(ALL_BYTES, np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_seed)
    tg.manual_seed(0)
    global_1, global_2 = transforms.dequantize(ALL_BYTES), transforms.dequantize(ALL_BYTES)
    assert not np.array_equal(global_1, global_2)


def test_dequantizer_in_a_loader_gives_new_noise_every_epoch():
    pixels = ALL_BYTES.reshape(16, 16)
    loader = DataLoader(pixels, batch_size=16, shuffle=False, transform=transforms.Dequantizer(0))
    epoch_1, epoch_2 = (next(iter(loader)).data for _ in range(2))
    assert epoch_1.dtype == np.float32
    assert not np.array_equal(epoch_1, epoch_2)
    np.testing.assert_array_equal(np.floor(epoch_1.astype(np.float64) * 256), pixels)
    np.testing.assert_array_equal(np.floor(epoch_2.astype(np.float64) * 256), pixels)
    same_seed = DataLoader(pixels, batch_size=16, shuffle=False,
                           transform=transforms.Dequantizer(0))
    np.testing.assert_array_equal(next(iter(same_seed)).data, epoch_1)


def test_dequantize_refuses_floats_and_a_bad_rng():
    with pytest.raises(TypeError, match="uint8"):
        transforms.dequantize(np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError, match="Generator"):
        transforms.dequantize(ALL_BYTES, rng=0)
