"""DataLoader: every row once per epoch, order, reshuffling, seeds, drop_last, dtypes, errors."""
import numpy as np
import pytest

import tinygen as tg
from tinygen.data.loader import DataLoader
from tinygen.data.transforms import Binarizer


def rows_seen(loader):
    """The row ids of one epoch, in the order they came, from a loader over np.arange-like ids."""
    return np.concatenate([batch.numpy() for batch in loader])


def ids(n):
    return np.arange(n, dtype=np.int64)


@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (5, 8), (1, 1)])
def test_every_row_comes_exactly_once_per_epoch(n, batch_size):
    loader = DataLoader(ids(n), batch_size, seed=0)
    for _ in range(3):
        np.testing.assert_array_equal(np.sort(rows_seen(loader)), ids(n))


def test_without_shuffle_rows_come_in_order_in_full_batches_then_the_rest():
    loader = DataLoader(ids(10), 4, shuffle=False)
    batches = [b.numpy() for b in loader]
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), ids(10))
    np.testing.assert_array_equal(rows_seen(loader), ids(10))  # and the same again next epoch


def test_each_epoch_draws_a_new_permutation():
    loader = DataLoader(ids(100), 10, seed=0)
    epochs = [rows_seen(loader) for _ in range(4)]
    for i in range(4):
        for j in range(i):
            assert not np.array_equal(epochs[i], epochs[j])
    assert not np.array_equal(epochs[0], ids(100))


def test_same_seed_gives_the_same_sequence_of_epochs():
    a = DataLoader(ids(50), 7, seed=123)
    b = DataLoader(ids(50), 7, seed=123)
    c = DataLoader(ids(50), 7, seed=124)
    first = [rows_seen(a) for _ in range(3)]
    for epoch in first:
        np.testing.assert_array_equal(epoch, rows_seen(b))
    assert not np.array_equal(first[0], rows_seen(c))


def test_the_permutation_is_that_of_default_rng_with_the_seed():
    expected = np.random.default_rng(7).permutation(20)
    np.testing.assert_array_equal(rows_seen(DataLoader(ids(20), 6, seed=7)), expected)


def test_seed_none_follows_tinygen_manual_seed():
    tg.manual_seed(0)
    a = rows_seen(DataLoader(ids(30), 8))
    tg.manual_seed(0)
    b = rows_seen(DataLoader(ids(30), 8))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("drop_last, lengths", [(False, [4, 4, 2]), (True, [4, 4])])
def test_drop_last_leaves_out_only_the_partial_batch(drop_last, lengths):
    loader = DataLoader(ids(10), 4, shuffle=True, drop_last=drop_last, seed=0)
    assert [len(b) for b in loader] == lengths
    assert len(loader) == len(lengths)


@pytest.mark.parametrize(
    "n, batch_size, drop_last, expected",
    [(10, 4, False, 3), (10, 4, True, 2), (12, 4, False, 3), (12, 4, True, 3),
     (3, 4, False, 1), (3, 4, True, 0), (0, 4, False, 0)],
)
def test_len_is_the_number_of_batches(n, batch_size, drop_last, expected):
    loader = DataLoader(ids(n), batch_size, drop_last=drop_last, seed=0)
    assert len(loader) == expected
    assert sum(1 for _ in loader) == expected


def test_a_tuple_of_arrays_gives_a_tuple_of_tensors_with_rows_kept_together():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.arange(10, dtype=np.int64)
    for xb, yb in DataLoader((x, y), 3, seed=1):
        assert isinstance(xb, tg.Tensor) and isinstance(yb, tg.Tensor)
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])


def test_a_list_of_one_array_gives_a_tuple_of_one_tensor():
    (batch,) = next(iter(DataLoader([ids(5)], 5, shuffle=False)))
    assert isinstance(batch, tg.Tensor)


def test_dtypes_follow_tinygen_tensor_floats_to_float32_integers_kept():
    x64 = np.zeros((6, 3), dtype=np.float64)
    x16 = np.zeros((6, 3), dtype=np.float16)
    y = np.zeros(6, dtype=np.int32)
    mask = np.zeros(6, dtype=bool)
    xb, hb, yb, mb = next(iter(DataLoader((x64, x16, y, mask), 6)))
    assert xb.dtype == np.float32 and hb.dtype == np.float32
    assert yb.dtype == np.int32 and mb.dtype == np.bool_
    assert tg.tensor(x64).dtype == xb.dtype  # the same rule as tinygen.tensor


def test_batches_are_copies_not_views_of_the_data():
    x = np.zeros((4, 2), dtype=np.float32)
    batch = next(iter(DataLoader(x, 4, shuffle=False)))
    batch.numpy()[:] = 1.0
    assert np.all(x == 0.0)
    assert not batch.requires_grad


def test_mismatched_lengths_are_an_error_naming_them():
    with pytest.raises(ValueError, match=r"same first dimension, got lengths \[10, 9\]"):
        DataLoader((np.zeros((10, 2)), np.zeros(9)), 4)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size_is_an_error(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(ids(5), batch_size)


def test_other_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="empty list of arrays"):
        DataLoader([], 2)
    with pytest.raises(ValueError, match="scalar"):
        DataLoader((ids(3), np.float64(1.0)), 2)
    with pytest.raises(TypeError, match="transform must be callable"):
        DataLoader(ids(3), 2, transform="binarize")


def test_transform_is_applied_to_the_first_arrays_batch_only():
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    y = np.arange(6, dtype=np.int64)
    seen = []

    def double(batch):
        seen.append(batch.copy())
        return 2.0 * batch

    loader = DataLoader((x, y), 4, shuffle=False, transform=double)
    batches = list(loader)
    assert len(seen) == 2
    assert isinstance(seen[0], np.ndarray) and seen[0].shape == (4, 2)
    for (xb, yb), raw in zip(batches, seen):
        np.testing.assert_array_equal(xb.numpy(), 2.0 * raw)
        np.testing.assert_array_equal(raw, x[yb.numpy()])  # labels untouched, still aligned


def _epochs_of_batches(loader, epochs):
    return [[batch.data.copy() for batch in loader] for _ in range(epochs)]


@pytest.mark.parametrize("stop_after", [0, 3, 7])  # between epochs, within one, at its last batch
def test_state_dict_resumes_the_same_order_and_transform_noise(stop_after):
    data = np.random.default_rng(0).random((70, 5)).astype(np.float32)

    def make(seed):
        return DataLoader(data, 10, seed=seed, transform=Binarizer(seed=seed + 1))

    expected = _epochs_of_batches(make(4), 3)
    loader = make(4)
    first_epoch = [batch.data.copy() for batch in loader]
    iterator = iter(loader)
    seen = [next(iterator).data.copy() for _ in range(stop_after)]
    state = loader.state_dict()
    assert state["batches_done"] == stop_after
    other = make(99)  # another seed: the state decides
    other.load_state_dict(state)
    rest = [batch.data.copy() for batch in other]
    later = _epochs_of_batches(other, 1)
    got = [first_epoch, seen + rest] + later
    for e, (want, have) in enumerate(zip(expected, got)):
        assert len(want) == len(have), e
        for a, b in zip(want, have):
            np.testing.assert_array_equal(a, b)


def test_load_state_dict_refuses_more_batches_than_an_epoch_has():
    loader = DataLoader(np.zeros((20, 2)), 10)
    state = loader.state_dict()
    state["batches_done"] = 3
    with pytest.raises(ValueError, match="3 batches done, but an epoch has 2"):
        loader.load_state_dict(state)


def test_the_global_generator_state_round_trips():
    tg.manual_seed(5)
    state = tg.random.get_rng_state()
    first = tg.randn(3).data
    tg.random.set_rng_state(state)
    np.testing.assert_array_equal(tg.randn(3).data, first)
