"""Where a tensor's data lives: on the CPU (a NumPy array) or on a GPU (a CuPy array).

    x = tinygen.randn(64, 100, device="cuda")    # made on the host, moved to the GPU once
    x.device                                      # device('cuda:0')
    y = model.to("cuda")(x)                       # every op runs where its inputs live
    y.cpu().numpy()                               # back to the host, only when asked

A device is a place, not a set of kernels: the engine's ops are written with NumPy functions,
and NumPy's dispatch protocols (__array_ufunc__ for np.exp, np.add, ...; __array_function__ for
np.sum, np.zeros_like, np.empty(..., like=a), ...) hand a CuPy array to CuPy's implementation,
which runs on the GPU. So an op's forward and backward are the same lines on both devices.
Nothing moves between host and device unless the user asks (.to, .cpu, device=, saving a
checkpoint): an op that meets arrays of two devices is an error naming both, as in PyTorch.

The arrays of a device type come from an `ArrayLibrary`: for "cuda", CuPy's (the `cuda` extra
installs it). Tests swap in a strict stand-in library, whose arrays refuse any conversion to
NumPy, to prove on a machine without a GPU that nothing falls back to the host (`use_library`).
"""
import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np


class DeviceUnavailable(RuntimeError):
    """A device was asked for that this machine cannot use; the message says what is missing."""


@dataclass(frozen=True)
class Device:
    """A place for tensors: type "cpu" or "cuda", and for "cuda" the GPU's index (one GPU: 0)."""

    type: str
    index: int | None = None

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device('{self}')"


CPU = Device("cpu")
DEVICE_TYPES = ("cpu", "cuda")


def device(spec):
    """A Device from "cpu", "cuda", "cuda:0" or a Device (as torch.device)."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a string such as 'cpu' or 'cuda', got {spec!r}")
    kind, _, index = spec.strip().lower().partition(":")
    if kind not in DEVICE_TYPES:
        raise ValueError(f"device: unknown device {spec!r}; use 'cpu' or 'cuda'")
    if kind == "cpu":
        if index not in ("", "0"):
            raise ValueError(f"device: the CPU has no index, got {spec!r}")
        return CPU
    if index not in ("", "0"):
        raise ValueError(f"device: tinygen uses one GPU, 'cuda' or 'cuda:0'; got {spec!r}")
    return Device("cuda", 0)


@dataclass(frozen=True)
class ArrayLibrary:
    """The arrays of one device type and the two explicit ways across.

    array_type: the class of its arrays; to_device(host array) -> device array (a copy);
    to_host(device array) -> NumPy array (a copy); kernels: the name of the kernel backend that
    runs convolutions and fused ops on its arrays (see tinygen/kernels); synchronize(): wait
    until the device has finished what it was given (for timing)."""

    name: str
    array_type: type
    to_device: Callable
    to_host: Callable
    kernels: str
    synchronize: Callable = lambda: None


_libraries = {}  # device type -> ArrayLibrary, or the DeviceUnavailable that says why not
_device_array_types = {}  # array class -> Device, for the arrays of every library loaded


def _cupy_library():
    """CuPy's arrays for "cuda"; DeviceUnavailable saying what is missing."""
    try:
        import cupy
    except ImportError as error:
        raise DeviceUnavailable(
            f"CuPy is not installed ({error}); install the GPU extra: pip install -e '.[cuda]'"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, or a driver too old for this CuPy
        raise DeviceUnavailable(f"CuPy finds no usable GPU ({error})") from None
    if count < 1:
        raise DeviceUnavailable("CuPy finds no GPU on this machine")
    return ArrayLibrary("cupy", cupy.ndarray, cupy.asarray, cupy.asnumpy, "cuda",
                        cupy.cuda.Device().synchronize)


_FACTORIES = {"cuda": _cupy_library}


def library(device_type):
    """The ArrayLibrary of a device type ("cuda"), or DeviceUnavailable with the reason.

    Looked for once per process (finding a GPU is slow); the answer is kept."""
    if device_type not in _libraries:
        try:
            _set_library(device_type, _FACTORIES[device_type]())
        except DeviceUnavailable as reason:
            _libraries[device_type] = reason
    found = _libraries[device_type]
    if isinstance(found, DeviceUnavailable):
        raise DeviceUnavailable(f"device '{device_type}' is not available here: {found}")
    return found


def _set_library(device_type, lib):
    _libraries[device_type] = lib
    _device_array_types[lib.array_type] = Device(device_type, 0)


@contextlib.contextmanager
def use_library(device_type, lib):
    """Inside the block, device_type's arrays come from lib (the tests' strict stand-in)."""
    previous = _libraries.get(device_type)
    _set_library(device_type, lib)
    try:
        yield lib
    finally:
        _device_array_types.pop(lib.array_type, None)
        if previous is None:
            _libraries.pop(device_type, None)
        else:
            _libraries[device_type] = previous
            if isinstance(previous, ArrayLibrary):
                _device_array_types[previous.array_type] = Device(device_type, 0)


def is_device_array(array):
    """True for an array of a loaded device library (a CuPy array), False for NumPy's."""
    return type(array) in _device_array_types


def device_of(array):
    """The Device where an array lives."""
    return _device_array_types.get(type(array), CPU)


def library_of(array):
    """The ArrayLibrary of a device array."""
    return library(device_of(array).type)


def to_device(array, target):
    """array on the device target (a copy when it moves, the array itself when it is there)."""
    target = device(target)
    here = device_of(array)
    if here == target:
        return array
    host = library(here.type).to_host(array) if here != CPU else array
    if target == CPU:
        return host
    return library(target.type).to_device(host)


def to_host(array):
    """A NumPy array with the values of array (a copy if it lives on a device)."""
    if is_device_array(array):
        return library_of(array).to_host(array)
    return np.asarray(array)


def host_copy(array):
    """A NumPy array of its own with array's values (a copy from the device, or of a host array):
    what state_dicts hold."""
    return to_host(array) if is_device_array(array) else np.array(array, copy=True)


def host_array(x, dtype=None):
    """x (an array, a Tensor on any device, or a list) as a NumPy array of dtype (None: its own):
    the values on the host, copied there if they live on a device. For code that computes on the
    host by design: plots, metrics."""
    return np.asarray(to_host(getattr(x, "data", x)), dtype=dtype)


def synchronize(target="cuda"):
    """Wait for the device to finish its queued work (GPU calls return before they finish)."""
    target = device(target)
    if target != CPU:
        library(target.type).synchronize()


def is_available(device_type="cuda"):
    """True when tensors can be put on this device type here."""
    return why_unavailable(device_type) == ""


def why_unavailable(device_type="cuda"):
    """'' when the device type works here, else the reason (what `tinygen info` prints)."""
    if device_type == "cpu":
        return ""
    try:
        library(device_type)
    except DeviceUnavailable:
        return str(_libraries[device_type])
    return ""


def _looks_like_device(value):
    if isinstance(value, Device):
        return True
    return isinstance(value, str) and value.strip().lower().partition(":")[0] in DEVICE_TYPES


def device_and_dtype(caller, args, device=None, dtype=None):
    """What .to(...) was asked, PyTorch's way: .to(device), .to(dtype), .to(device, dtype), or
    the keywords -> (Device or None, np.dtype or None)."""
    if len(args) > 2:
        raise TypeError(f"{caller}: expected a device and/or a dtype, got {len(args)} arguments")
    for arg in args:
        if _looks_like_device(arg):
            if device is not None:
                raise TypeError(f"{caller}: two devices given ({device} and {arg})")
            device = arg
        else:
            if dtype is not None:
                raise TypeError(f"{caller}: two dtypes given ({dtype} and {arg})")
            dtype = arg
    if device is None and dtype is None:
        raise TypeError(f"{caller}: give a device ('cpu', 'cuda') or a dtype")
    try:
        dtype = None if dtype is None else np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{caller}: {dtype!r} is neither a device nor a dtype") from None
    return (None if device is None else globals()["device"](device)), dtype


def check_same_device(op_name, arrays):
    """Raise the PyTorch-style error when the arrays of one op live on different devices."""
    places = []
    for array in arrays:
        place = device_of(array)
        if place not in places:
            places.append(place)
    if len(places) > 1:
        raise RuntimeError(
            f"{op_name}: expected all tensors to be on the same device, but found at least two "
            f"devices, {places[0]} and {places[1]} (move one with .to(device))")
