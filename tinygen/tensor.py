"""Tensor: a NumPy array that remembers how it was computed, so that gradients can flow back to it.

    x = tinygen.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()       # y._ctx is the Sum op, whose input came from the Mul op
    y.backward()            # x.grad == 2 * x

Operators and methods here only convert their arguments and call the ops in `tinygen/ops/`, where
each op's forward and backward sit side by side.
"""
import numpy as np

from . import autograd, devices

float32 = np.dtype("float32")
float64 = np.dtype("float64")


def _default_dtype(array):
    """float32 for any floating data (float64 only on request); integers and bools keep theirs."""
    if np.issubdtype(array.dtype, np.floating):
        return float32
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return array.dtype
    raise TypeError(f"tensor: unsupported data type {array.dtype} (use floats, integers or bools)")


def _check_can_require_grad(dtype):
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"only floating-point tensors can require gradients (this one is {dtype})")


class Tensor:
    """An n-dimensional array with reverse-mode autograd.

    .data is the array (NumPy's on the CPU, CuPy's on a GPU: see tinygen/devices.py), .grad the
    accumulated gradient (a Tensor, or None), .requires_grad whether gradients flow to it.
    Floating data is stored as float32 unless dtype says otherwise.
    """

    # NumPy must not turn `ndarray + Tensor` into an array op: it hands it to Tensor.__radd__.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        if devices.is_device_array(data):  # stays where it is, unless device= says otherwise
            array = data
            device = devices.device_of(data) if device is None else device
        else:
            array = np.asarray(data)
        dtype = _default_dtype(array) if dtype is None else np.dtype(dtype)
        array = array.astype(dtype, copy=True)  # a copy, as torch.tensor makes
        self.data = array if device is None else devices.to_device(array, device)
        self.grad = None
        self.requires_grad = False
        self._ctx = None
        self._hooks = {}
        self._retains_grad = False
        self.name = None
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array, requires_grad=False):
        """Wrap an array produced by an op as it is (no copy, no dtype change)."""
        t = cls.__new__(cls)
        if not (isinstance(array, np.ndarray) or devices.is_device_array(array)):
            array = np.asarray(array)  # a NumPy scalar, from a reduction on the host
        t.data = array
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = None
        t._hooks = {}
        t._retains_grad = False
        t.name = None
        return t

    # ---- what it is --------------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        """Where the data lives: device('cpu') or device('cuda:0')."""
        return devices.device_of(self.data)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        """True for tensors made by the user (not by an op that records the graph)."""
        return self._ctx is None

    def numel(self):
        return self.data.size

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        if devices.is_device_array(self.data):
            raise TypeError(f"cannot convert a {self.device} tensor to a NumPy array; "
                            "copy it to the host first with .cpu()")
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self):
        values = devices.to_host(self.data)  # printing is an explicit look at the values
        body = np.array2string(values, separator=", ", prefix="tensor(")
        extras = ""
        if self.device != devices.CPU:
            extras += f", device='{self.device}'"
        if self.dtype != float32:
            extras += f", dtype={self.dtype}"
        if self._ctx is not None:
            extras += f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            extras += ", requires_grad=True"
        return f"tensor({body}{extras})"

    # ---- leaving the graph -------------------------------------------------------------------
    def numpy(self):
        """The underlying NumPy array (shared, not copied). A GPU tensor has none: use .cpu()."""
        if devices.is_device_array(self.data):
            raise TypeError(f"numpy: this tensor is on {self.device}; copy it to the host with "
                            ".cpu() first (tensor.cpu().numpy())")
        return self.data

    # ---- moving between devices -----------------------------------------------------------------
    def to(self, *args, device=None, dtype=None):
        """This tensor on another device and/or in another dtype, as in PyTorch: .to("cuda"),
        .to(float64), .to("cuda", float64). Itself if nothing changes, else a copy in the graph
        (gradients flow back, moved back to this tensor's device and dtype)."""
        target, dtype = devices.device_and_dtype("to", args, device, dtype)
        result = self
        if dtype is not None:
            result = result.astype(dtype)
        if target is not None and target != result.device:
            result = ops.to_device(result, target)
        return result

    def cpu(self):
        """This tensor on the host (itself if it is there)."""
        return self.to(devices.CPU)

    def cuda(self):
        """This tensor on the GPU (itself if it is there)."""
        return self.to("cuda")

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted, shape is {self.shape}"
            )
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self):
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor._wrap(self.data, False)

    def requires_grad_(self, requires_grad=True):
        """Start (or stop) tracking gradients for this leaf tensor, in place; returns self."""
        if requires_grad:
            _check_can_require_grad(self.dtype)
        elif self._ctx is not None:
            raise RuntimeError("requires_grad_(False) works on leaf tensors only; use detach()")
        self.requires_grad = requires_grad
        return self

    def astype(self, dtype):
        """Convert to another floating dtype; gradients flow back converted to this dtype."""
        return ops.cast(self, dtype)

    def float(self):
        return self.astype(float32)

    def double(self):
        return self.astype(float64)

    # ---- autograd ----------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        gradient: d(loss)/d(self), needed when self is not a scalar. With create_graph=True the
        gradients are themselves in the graph and can be differentiated again. The graph is
        freed as the backward runs through it (its ops forget their inputs and saved arrays),
        unless retain_graph=True (the default is create_graph's value, as in PyTorch).
        """
        grads = None if gradient is None else [gradient]
        autograd.run_backward([self], grads, create_graph=create_graph, retain_graph=retain_graph)

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self._retains_grad = True

    def register_hook(self, hook):
        """Call hook(grad) when this tensor's gradient is found; a Tensor it returns replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        key = object()
        self._hooks[key] = hook
        return _HookHandle(self._hooks, key)

    # ---- arithmetic (broadcasting; gradients are summed back to each input's shape) -----------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, exponent):
        return ops.pow(self, exponent)

    def __rpow__(self, base):
        return ops.pow(base, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    # ---- comparisons: boolean tensors, no gradient ---------------------------------------------
    def _compare(self, other, np_fn):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(np_fn(self.data, other), False)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    __hash__ = object.__hash__  # tensors are hashed by identity, as in PyTorch

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    # ---- elementwise functions -----------------------------------------------------------------
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def abs(self):
        return ops.abs(self)

    def relu(self):
        return ops.relu(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def tanh(self):
        return ops.tanh(self)

    def clip(self, min=None, max=None):
        return ops.clip(self, min, max)

    # ---- reductions (NumPy's axis= and keepdims=) ---------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return ops.min(self, axis, keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        return ops.var(self, axis, keepdims, ddof)

    def logsumexp(self, axis=None, keepdims=False):
        return ops.logsumexp(self, axis, keepdims)

    # ---- shapes ---------------------------------------------------------------------------------
    def reshape(self, *shape):
        return ops.reshape(self, shape)

    def transpose(self, *axes):
        return ops.transpose(self, axes)

    @property
    def T(self):
        return ops.transpose(self, ())

    def flatten(self, start_dim=0, end_dim=-1):
        return ops.flatten(self, start_dim, end_dim)

    def squeeze(self, axis=None):
        return ops.squeeze(self, axis)

    def unsqueeze(self, axis):
        return ops.unsqueeze(self, axis)

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, shape)


class _HookHandle:
    """Returned by register_hook; call .remove() to unregister the hook."""

    def __init__(self, hooks, key):
        self._hooks = hooks
        self._key = key

    def remove(self):
        self._hooks.pop(self._key, None)


def tensor(data, requires_grad=False, dtype=None, device=None):
    """Make a Tensor from data (array, list or number): float32 unless dtype says otherwise, on
    device (default: where data is, the CPU for lists, numbers and NumPy arrays)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def as_tensor(data, dtype=None, device=None):
    """A Tensor outside the graph on data's memory, as torch.as_tensor: an array (NumPy's, or a
    device array) is wrapped as it is (no copy, its dtype kept) unless dtype or device asks for
    another; a Tensor is returned as it is; lists and numbers are converted as tensor() converts
    them.

    For constants in formulas (masks, signs, scales) and gradients set by hand: it never requires
    gradients, and changing the array changes the tensor.
    """
    if isinstance(data, Tensor):
        if device is not None and data.device != devices.device(device):
            data = data.detach().to(device)
        return data if dtype is None or data.dtype == np.dtype(dtype) else Tensor(data, dtype=dtype)
    if isinstance(data, np.ndarray) or devices.is_device_array(data):
        if dtype is not None and data.dtype != np.dtype(dtype):
            data = data.astype(dtype)
        if device is not None:
            data = devices.to_device(data, device)
        return Tensor._wrap(data, False)
    return Tensor(data, dtype=dtype, device=device)


# The ops need the Tensor class, so they are imported after it.
from . import ops  # noqa: E402
