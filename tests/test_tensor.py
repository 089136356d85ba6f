"""Tensor creation, dtypes, attributes and the conversions out of the graph."""
import numpy as np
import pytest

import tinygen as tg


def test_float_data_is_float32_by_default_and_float64_on_request():
    assert tg.tensor([1.0, 2.0]).dtype == np.float32
    assert tg.tensor(np.zeros(3, dtype=np.float64)).dtype == np.float32
    assert tg.tensor([1.0], dtype="float64").dtype == np.float64
    assert tg.tensor([1.0], dtype=tg.float64).dtype == np.float64


def test_integer_and_bool_data_keep_their_dtype():
    assert tg.tensor([1, 2]).dtype == np.int64
    assert tg.tensor(np.array([1], dtype=np.uint8)).dtype == np.uint8
    assert tg.tensor([True, False]).dtype == np.bool_


def test_tensor_copies_its_data_like_torch_tensor():
    array = np.ones(3, dtype=np.float32)
    t = tg.tensor(array)
    array[0] = 5
    assert t.data[0] == 1


def test_as_tensor_shares_an_arrays_memory_and_keeps_its_dtype_like_torch_as_tensor():
    array = np.ones(3, dtype=np.float64)
    t = tg.as_tensor(array)
    assert t.dtype == np.float64 and not t.requires_grad and t.is_leaf
    array[0] = 5
    assert t.data[0] == 5  # the same memory
    converted = tg.as_tensor(array, dtype="float32")
    assert converted.dtype == np.float32 and not np.shares_memory(converted.data, array)
    assert tg.as_tensor([1.0, 2.0]).dtype == np.float32  # lists as tensor() converts them
    x = tg.tensor([1.0], requires_grad=True)
    assert tg.as_tensor(x) is x
    assert tg.as_tensor(x, dtype="float64").dtype == np.float64


def test_attributes():
    t = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.numel() == 6 and len(t) == 2
    assert t.requires_grad and t.is_leaf and t.grad is None
    assert t.T.shape == (3, 2)
    assert isinstance(t.numpy(), np.ndarray)
    assert t[1, 2].item() == 5.0
    assert t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_item_refuses_more_than_one_element():
    with pytest.raises(ValueError, match="one-element"):
        tg.tensor([1.0, 2.0]).item()


def test_detach_shares_data_and_leaves_the_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    z = x.detach()
    assert np.shares_memory(z.data, x.data)


def test_requires_grad_on_integer_tensor_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        tg.arange(3).requires_grad_()


def test_requires_grad_underscore_switches_a_leaf_in_place():
    t = tg.zeros(2)
    assert t.requires_grad_() is t and t.requires_grad


def test_creation_helpers_shapes_dtypes_and_values():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).shape == (2, 3)
    assert tg.ones(4).data.sum() == 4 and tg.ones(4).dtype == np.float32
    assert tg.randn(2, 2, dtype="float64").dtype == np.float64
    r = tg.rand(1000)
    assert 0 <= r.data.min() and r.data.max() < 1
    np.testing.assert_array_equal(tg.arange(5).data, np.arange(5))
    np.testing.assert_array_equal(tg.arange(1, 2, 0.5, dtype="float32").data, [1.0, 1.5])
    assert tg.zeros_like(tg.randn(2, 3, dtype="float64")).dtype == np.float64


def test_manual_seed_makes_random_tensors_reproducible():
    tg.manual_seed(123)
    a = tg.randn(5).data.copy()
    b = tg.rand(3).data.copy()
    tg.manual_seed(123)
    np.testing.assert_array_equal(tg.randn(5).data, a)
    np.testing.assert_array_equal(tg.rand(3).data, b)
    assert not np.array_equal(tg.randn(5).data, a)


def test_comparisons_give_boolean_tensors_without_gradient():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result in (x < 2, x <= 2, x > 2, x >= 2, x == 2, x != 2):
        assert result.dtype == np.bool_ and not result.requires_grad
    np.testing.assert_array_equal((x > 1.5).data, [False, True, True])


def test_tensors_hash_by_identity_despite_elementwise_eq():
    a, b = tg.tensor([1.0]), tg.tensor([1.0])
    assert len({a, b}) == 2


def test_numpy_array_on_the_left_gives_a_tensor_in_the_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, tg.Tensor) and y.requires_grad and y.dtype == np.float32


def test_python_scalars_keep_the_tensor_dtype():
    x = tg.tensor([1.0], dtype="float64")
    assert (x * 2).dtype == np.float64
    assert (tg.tensor([1.0]) * 2.5).dtype == np.float32


def test_astype_converts_and_sends_gradient_back_in_the_input_dtype():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])


def test_repr_shows_values_and_graph_state():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert "grad_fn=<Mul>" in repr(x * 2)
    assert "dtype=float64" in repr(tg.tensor([1.0], dtype="float64"))


def test_iteration_and_len():
    t = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    rows = list(t)
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0]


def test_stack_where_maximum_concatenate_forward_match_numpy(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    ta, tb = tg.tensor(a, dtype="float64"), tg.tensor(b, dtype="float64")
    np.testing.assert_array_equal(tg.stack([ta, tb], axis=2).data, np.stack([a, b], axis=2))
    np.testing.assert_array_equal(tg.concatenate([ta, tb]).data, np.concatenate([a, b]))
    np.testing.assert_array_equal(tg.maximum(ta, tb).data, np.maximum(a, b))
    np.testing.assert_array_equal(tg.minimum(ta, tb).data, np.minimum(a, b))
    np.testing.assert_array_equal(tg.where(a > 0, ta, tb).data, np.where(a > 0, a, b))
