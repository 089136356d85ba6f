"""Sizes given as an int or a pair of ints (kernel sizes, strides, paddings, scale factors), read
into a checked pair, (vertical, horizontal), with an error that names the op and the argument.
The convolutions, the pooling and upsampling ops and their layers all read theirs here."""
import numpy as np


def as_pair(value, name, op_name):
    """An int or a pair of ints -> a pair of non-negative ints."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{op_name}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 0:
        raise ValueError(f"{op_name}: {name} must be non-negative, got {value!r}")
    return pair


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_pair(value, name, op_name):
    """An int or a pair of ints -> a pair of positive ints (a kernel size, a stride)."""
    pair = as_pair(value, name, op_name)
    if min(pair) < 1:
        raise ValueError(f"{op_name}: {name} must be positive, got {value!r}")
    return pair


def whole_factor_pair(scale_factor, op_name):
    """scale_factor (an int, a whole float such as 2.0, or a pair of them) -> a pair of ints."""
    pair = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
    whole = (len(pair) == 2
             and all(isinstance(f, (int, float, np.integer, np.floating))
                     and not isinstance(f, bool) and float(f).is_integer() for f in pair))
    if not whole:
        raise ValueError(f"{op_name}: scale_factor must be a whole number or a pair of them "
                         f"(nearest-neighbour upsampling copies each pixel into a block), got "
                         f"{scale_factor!r}")
    return positive_pair((int(pair[0]), int(pair[1])), "scale_factor", op_name)
