"""Bad input gets an error that names the op and the shapes."""
import re

import numpy as np
import pytest

import tinygen as tg


def test_matmul_misaligned_shapes_name_both_shapes_and_the_sizes():
    a, b = tg.zeros(3, 4), tg.zeros(5, 2)
    expected = "matmul: shapes (3, 4) and (5, 2) do not align (4 != 5)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        a @ b


def test_matmul_of_a_scalar_is_refused():
    with pytest.raises(ValueError, match="at least 1-D"):
        tg.tensor(2.0) @ tg.zeros(2)


def test_matmul_batch_axes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=re.escape("batch axes of shapes (2, 3, 4) and (3, 4, 5)")):
        tg.zeros(2, 3, 4) @ tg.zeros(3, 4, 5)


@pytest.mark.parametrize("op, name", [
    (lambda a, b: a + b, "add"), (lambda a, b: a - b, "sub"), (lambda a, b: a * b, "mul"),
    (lambda a, b: a / b, "div"), (lambda a, b: a ** b, "pow"), (tg.maximum, "maximum"),
])
def test_broadcast_mismatch_names_the_op_and_both_shapes(op, name):
    message = f"{name}: shapes (3, 4) and (5,) cannot be broadcast together"
    with pytest.raises(ValueError, match=re.escape(message)):
        op(tg.ones(3, 4), tg.ones(5))


def test_reshape_to_a_different_size():
    with pytest.raises(ValueError,
                       match=re.escape("reshape: cannot reshape shape (3, 4) (12 elements)")):
        tg.zeros(3, 4).reshape(5, 2)


def test_axis_out_of_range():
    with pytest.raises(ValueError,
                       match="sum: axis 2 is out of range for a tensor with 2 dimensions"):
        tg.zeros(3, 4).sum(axis=2)
    with pytest.raises(ValueError, match="max: axis -3"):
        tg.zeros(3, 4).max(axis=-3)


def test_concatenate_shapes_that_differ_off_axis():
    with pytest.raises(ValueError, match=re.escape("concatenate: shapes (2, 3), (3, 3)")):
        tg.concatenate([tg.zeros(2, 3), tg.zeros(3, 3)], axis=1)


def test_stack_of_unequal_shapes():
    with pytest.raises(ValueError, match="stack: all tensors must have the same shape"):
        tg.stack([tg.zeros(2), tg.zeros(3)])


def test_index_out_of_range_names_the_shape():
    with pytest.raises(IndexError, match=re.escape("(tensor shape (3,))")):
        tg.zeros(3)[5]


def test_squeeze_of_an_axis_longer_than_one():
    with pytest.raises(ValueError, match="squeeze: axis 0 of shape \\(3, 1\\) has length 3"):
        tg.zeros(3, 1).squeeze(0)


def test_transpose_with_a_bad_permutation():
    with pytest.raises(ValueError, match="not a permutation"):
        tg.zeros(2, 3, 4).transpose(0, 0, 1)


def test_where_needs_a_boolean_condition():
    with pytest.raises(TypeError, match="cond must be boolean"):
        tg.where(np.array([1, 0]), tg.zeros(2), tg.ones(2))


def test_max_of_an_empty_tensor():
    with pytest.raises(ValueError, match="empty"):
        tg.zeros(0).max()


def test_var_without_degrees_of_freedom():
    with pytest.raises(ValueError, match="degrees of freedom"):
        tg.zeros(1).var(ddof=1)


def test_unsupported_data_types_are_refused():
    with pytest.raises(TypeError, match="unsupported data type complex128"):
        tg.tensor([1j])


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="give min, max or both"):
        tg.zeros(2).clip()


def test_cast_of_a_grad_tensor_to_integer_is_refused():
    with pytest.raises(TypeError, match="only become floating"):
        tg.zeros(2, requires_grad=True).astype("int32")
