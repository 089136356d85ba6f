"""Ops that move values around without changing them:
reshape, transpose, broadcast, index, concatenate.

Their backwards are the inverse moves: reshape back, transpose back, sum a broadcast back, scatter
an indexed gradient back into zeros.
"""
import numpy as np

from .. import devices
from ..autograd import Function
from ..tensor import Tensor


def one_tuple(args):
    """The sizes or axes a function got as f(2, 3) or as f((2, 3)), as one tuple (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def normalize_axis(axis, ndim, op_name):
    """axis (None, int or tuple, negatives allowed) -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    result = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(
                f"{op_name}: axis {a} is out of range for a tensor with {ndim} dimensions"
            )
        result.append(int(a) % max(ndim, 1))
    if len(set(result)) != len(result):
        raise ValueError(f"{op_name}: repeated axis in {axis}")
    return tuple(sorted(result))


def sum_to_shape(grad, shape):
    """Sum a gradient over the axes that broadcasting stretched, so it has `shape` again.

    If y = broadcast(x), each x element fed several y elements: dL/dx is the sum of their dL/dy.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = [i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1]
    axes = tuple(range(lead)) + tuple(stretched)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Reshape(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape shape {a.shape} ({a.size} elements) into {shape}"
            ) from None

    def backward(self, grad):
        return grad.reshape(self.in_shape)


class Transpose(Function):
    def forward(self, a, axes):
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, grad):
        # The inverse permutation puts every axis back where it came from.
        return grad.transpose(*np.argsort(self.axes))


class BroadcastTo(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}") from None

    def backward(self, grad):
        return sum_to_shape(grad, self.in_shape)


def _is_basic_index(index):
    """Ints, slices, None and Ellipsis select each element at most once (a view in NumPy)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis))) for p in parts)


class GetItem(Function):
    """y = a[index]; dL/da is dL/dy scattered back to the selected places (added where repeated)."""

    def forward(self, a, index):
        self.in_shape = a.shape
        self.index = index
        return a[index]

    def backward(self, grad):
        return ScatterAdd.apply(grad, index=self.index, shape=self.in_shape)


class ScatterAdd(Function):
    """out = zeros(shape); out[index] += g, accumulating repeated indices. Backward of GetItem."""

    def forward(self, g, index, shape):
        self.index = index
        out = np.zeros(shape, dtype=g.dtype, like=g)  # on g's device
        if _is_basic_index(index):
            out[index] = g
        else:
            np.add.at(out, index, g)  # a plain `out[index] += g` would drop repeated indices
        return out

    def backward(self, grad):
        return grad[self.index]


class Concatenate(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        try:
            return np.concatenate(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(
                f"concatenate: shapes {shapes} must match except along axis {axis}"
            ) from None

    def backward(self, grad):
        # Each input gets back its own slice of the gradient along the joined axis.
        grads = []
        start = 0
        for size in self.sizes:
            index = [slice(None)] * grad.ndim
            index[self.axis] = slice(start, start + size)
            grads.append(grad[tuple(index)])
            start += size
        return tuple(grads)


# ---- the functions the Tensor methods call ------------------------------------------------------
def reshape(a, shape):
    """a with a new shape of the same size; one dimension may be -1 (inferred)."""
    shape = tuple(int(n) for n in one_tuple(shape))
    if shape == a.shape:
        return a
    return Reshape.apply(a, shape=shape)


def transpose(a, axes):
    """Permute axes as np.transpose does (none given: reverse them), or swap two of an n-d one."""
    axes = one_tuple(axes)
    if len(axes) == 0:
        axes = tuple(range(a.ndim - 1, -1, -1))
    elif len(axes) == 2 and a.ndim != 2:
        # PyTorch's transpose(dim0, dim1): swap two axes, keep the others.
        first = normalize_axis(axes[0], a.ndim, "transpose")[0]
        second = normalize_axis(axes[1], a.ndim, "transpose")[0]
        perm = list(range(a.ndim))
        perm[first], perm[second] = perm[second], perm[first]
        axes = perm
    if len(axes) != a.ndim or sorted(int(x) % max(a.ndim, 1) for x in axes) != list(range(a.ndim)):
        raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation of {a.ndim} axes")
    return Transpose.apply(a, axes=tuple(int(x) % a.ndim for x in axes))


def broadcast_to(a, shape):
    shape = tuple(shape)
    if shape == a.shape:
        return a
    return BroadcastTo.apply(a, shape=shape)


def flatten(a, start_dim=0, end_dim=-1):
    """Merge the axes start_dim..end_dim (inclusive) into one, as torch.flatten."""
    if a.ndim == 0:
        return a.reshape(1)
    start = normalize_axis(start_dim, a.ndim, "flatten")[0]
    end = normalize_axis(end_dim, a.ndim, "flatten")[0]
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(a.shape[start:end + 1]))
    return a.reshape(a.shape[:start] + (merged,) + a.shape[end + 1:])


def squeeze(a, axis=None):
    """Remove axes of length 1 (all of them, or the given ones)."""
    if axis is None:
        axes = tuple(i for i, n in enumerate(a.shape) if n == 1)
    else:
        axes = normalize_axis(axis, a.ndim, "squeeze")
        for i in axes:
            if a.shape[i] != 1:
                raise ValueError(
                    f"squeeze: axis {i} of shape {a.shape} has length {a.shape[i]}, not 1"
                )
    return a.reshape(tuple(n for i, n in enumerate(a.shape) if i not in axes))


def unsqueeze(a, axis):
    """Insert an axis of length 1 at position `axis` (negative: counted from the result's end)."""
    axis = normalize_axis(axis, a.ndim + 1, "unsqueeze")[0]
    return a.reshape(a.shape[:axis] + (1,) + a.shape[axis:])


def _index_to_arrays(index, device):
    """Tensors and lists inside an index become arrays; those from the host go to `device`, where
    the indexed tensor is (indexing a GPU tensor with a list is allowed, as in PyTorch)."""
    def convert(part):
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, list):
            part = np.asarray(part)
        if isinstance(part, np.ndarray):
            part = devices.to_device(part, device)
        return part

    if isinstance(index, tuple):
        return tuple(convert(p) for p in index)
    return convert(index)


def getitem(a, index):
    """a[index] with ints, slices (with steps), None, Ellipsis, integer or boolean arrays."""
    index = _index_to_arrays(index, a.device)
    try:
        return GetItem.apply(a, index=index)
    except IndexError as err:
        raise IndexError(f"getitem: {err} (tensor shape {a.shape})") from None


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis, as np.concatenate."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    axis = normalize_axis(axis, tensors[0].ndim, "concatenate")[0]
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    """Join tensors of equal shape along a new axis, as np.stack."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return concatenate([t.unsqueeze(axis) for t in tensors], axis=axis)
