"""Image transforms: ranges and dtypes, exact thresholds, Bernoulli means, seeds, errors."""
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
