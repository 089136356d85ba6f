"""A strict stand-in for a GPU array, so that CI (which has no GPU) can prove that nothing falls
back to the host.

StrictArray wraps a NumPy array and behaves as CuPy's arrays do towards NumPy: NumPy's ufuncs
(__array_ufunc__) and array functions (__array_function__, and creation with like=) run on it and
give StrictArrays back, but it refuses to become a NumPy array (__array__ raises), refuses to be
mixed with NumPy arrays in one call, and offers only methods that cupy.ndarray also has. So any
line of the engine that would copy a device array to the host silently raises here.

    with tinygen.devices.use_library("cuda", STRICT):     # "cuda" tensors are StrictArrays
        x = tinygen.randn(4, 3, device="cuda")
        ...

Its kernels are the numpy backend's (tinygen/kernels/numpy_conv.py), which run on any array type
through the same protocols; on a real GPU the cuda backend's kernels take their place.
"""
import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from tinygen.devices import ArrayLibrary


class HostCopyError(TypeError):
    """A device array was about to be copied to (or mixed with) host memory."""


def _unwrap(value, where):
    """StrictArrays -> their NumPy arrays, inside lists and tuples; a NumPy array is refused."""
    if isinstance(value, StrictArray):
        return value._host
    if isinstance(value, np.ndarray):
        raise HostCopyError(f"{where}: a NumPy (host) array met a device array")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(item, where) for item in value)
    if isinstance(value, dict):
        return {key: _unwrap(item, where) for key, item in value.items()}
    return value


def _wrap(value):
    """NumPy arrays and scalars -> StrictArrays (a device library gives 0-d arrays, not scalars)."""
    if isinstance(value, np.ndarray):
        return StrictArray(value)
    if isinstance(value, np.generic):
        return StrictArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(item) for item in value)
    if isinstance(value, list):
        return [_wrap(item) for item in value]
    return value


class _Flags:
    """cupy.ndarray.flags: contiguity and ownership (no 'writeable')."""

    def __init__(self, array):
        self.c_contiguous = array.flags.c_contiguous
        self.f_contiguous = array.flags.f_contiguous
        self.owndata = array.flags.owndata


# Methods of cupy.ndarray that take and give arrays: forwarded to NumPy's, results wrapped.
_ARRAY_METHODS = (
    "all", "any", "argmax", "argmin", "astype", "clip", "copy", "cumsum", "fill", "flatten",
    "max", "mean", "min", "nonzero", "prod", "ravel", "repeat", "reshape", "round", "squeeze",
    "std", "sum", "swapaxes", "take", "transpose", "var", "view",
)


class StrictArray(NDArrayOperatorsMixin):
    __slots__ = ("_host",)

    def __init__(self, host):
        assert isinstance(host, np.ndarray), type(host)
        self._host = host

    # ---- the two dispatch protocols ----------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        out = kwargs.get("out")
        args = _unwrap(inputs, where)
        kwargs = _unwrap(kwargs, where)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        where = f"np.{func.__name__}"
        return _wrap(func(*_unwrap(args, where), **_unwrap(kwargs, where)))

    def __array__(self, dtype=None, copy=None):
        raise HostCopyError(
            "implicit conversion of a device array to a NumPy array (use .get(), or a tensor's "
            ".cpu())")

    # ---- what it is ------------------------------------------------------------------------------
    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    ndim = property(lambda self: self._host.ndim)
    size = property(lambda self: self._host.size)
    itemsize = property(lambda self: self._host.itemsize)
    nbytes = property(lambda self: self._host.nbytes)
    strides = property(lambda self: self._host.strides)
    flags = property(lambda self: _Flags(self._host))
    T = property(lambda self: StrictArray(self._host.T))

    @property
    def base(self):
        return None if self._host.base is None else _wrap(self._host.base)

    def __getattr__(self, name):
        if name in _ARRAY_METHODS:
            method = getattr(self._host, name)
            return lambda *args, **kwargs: _wrap(method(*_unwrap(args, name),
                                                        **_unwrap(kwargs, name)))
        raise AttributeError(f"StrictArray (like cupy.ndarray) has no attribute {name!r}")

    # ---- indexing (NumPy index arrays are allowed, as CuPy allows them) --------------------------
    def __getitem__(self, index):
        return _wrap(self._host[_unwrap_index(index)])

    def __setitem__(self, index, value):
        self._host[_unwrap_index(index)] = _unwrap(value, "setitem")

    def __len__(self):
        return len(self._host)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ---- explicit reads of values, as CuPy allows them -------------------------------------------
    def get(self):
        """A host copy (cupy.ndarray.get)."""
        return self._host.copy()

    def item(self):
        return self._host.item()

    def tolist(self):
        return self._host.tolist()

    def __bool__(self):
        return bool(self._host)

    def __float__(self):
        return float(self._host)

    def __int__(self):
        return int(self._host)

    def __repr__(self):
        return f"StrictArray({self._host!r})"


def _unwrap_index(index):
    if isinstance(index, tuple):
        return tuple(_unwrap_index(item) for item in index)
    return index._host if isinstance(index, StrictArray) else index


def to_device(host):
    return StrictArray(np.array(host, copy=True))


def to_host(array):
    if not isinstance(array, StrictArray):
        raise TypeError(f"to_host: expected a StrictArray, got {type(array).__name__}")
    return array.get()


STRICT = ArrayLibrary("strict stand-in", StrictArray, to_device, to_host, kernels="numpy")
