"""Which kernels run the convolutions: tinygen.backend.use("numba"), or TINYGEN_BACKEND=numba.

    tinygen.backend.available()      # e.g. ['numba', 'numpy']
    tinygen.backend.current()        # the one in use
    tinygen.backend.use("numpy")     # switch for the rest of the program ...
    with tinygen.backend.use("cuda"):    # ... or only inside the block
        ...

The default is the fastest backend that works here, as measured (the order of kernels.REGISTRY):
numba, then cuda (on CPU tensors its kernels copy every array to the GPU and back, which made it
slower than numba even on an H200), and numpy, the readable reference, as the last resort.
This choice is for tensors on the CPU: a tensor that lives on a GPU (tinygen/devices.py) runs its
device's kernels, the cuda backend's, in place (kernels_for).
Asking for one that cannot run falls back to the default, with one warning saying why.
Models and layers never name a backend.
"""
import os
import warnings
from collections import namedtuple

from . import devices, kernels

BackendStatus = namedtuple("BackendStatus", "name device available why_not simulated")

_current = None  # the name in use, chosen on first need
_warned = set()


def available(simulated=True):
    """The backends that can run on this machine, fastest first (kernels.REGISTRY's order).

    simulated=False leaves out the ones that run only in an emulator (cuda under
    NUMBA_ENABLE_CUDASIM=1): correct, but too slow to time or to choose by default.
    """
    return [entry.name for entry in status() if entry.available
            and (simulated or not entry.simulated)]


def status():
    """One BackendStatus per registered backend: its name, "cpu" or "gpu", whether it can run here,
    why not (or ""), and whether it runs only in a simulator. What `tinygen info` prints."""
    report = []
    for name, entry in kernels.REGISTRY.items():
        try:
            kernels.load(name)
        except kernels.BackendUnavailable as reason:
            report.append(BackendStatus(name, entry.device, False, str(reason), False))
            continue
        report.append(BackendStatus(name, entry.device, True, "", entry.simulated()))
    return report


def _default():
    """The fastest backend that runs here for real (never the CUDA simulator)."""
    fast = available(simulated=False)
    return fast[0] if fast else "numpy"


def _resolve(name):
    """name if it can run, else the default backend, with one warning naming the reason."""
    try:
        kernels.load(name)
        return name
    except kernels.BackendUnavailable as reason:
        fallback = _default()
        if (name, str(reason)) not in _warned:
            _warned.add((name, str(reason)))
            warnings.warn(
                f"tinygen: the {name!r} backend is not available ({reason}); using {fallback!r}",
                RuntimeWarning, stacklevel=3,
            )
        return fallback


def current():
    """The name of the backend in use."""
    global _current
    if _current is None:
        requested = os.environ.get("TINYGEN_BACKEND", "").strip().lower()
        _current = _resolve(requested) if requested else _default()
    return _current


def get_kernels():
    """The kernel module of the current backend, for arrays on the host."""
    return kernels.load(current())


def kernels_for(array):
    """The kernel module that runs ops on this array: the current backend's for a host array; for
    a device array, its device's kernels (the cuda backend's for CuPy arrays), whatever the CPU
    backend is."""
    if devices.is_device_array(array):
        return kernels.load(devices.library_of(array).kernels)
    return get_kernels()


def kernel(name, array):
    """The one way the ops ask which kernel runs them: the function `name` of the backend that
    runs ops on `array` (kernels_for), or None when that backend does not have it. ConvKernels'
    three functions are always there; the optional ones (a window-keeping forward, fused batch
    norm and leaky relu, one-pass Adam and moving average) are used where they exist, and the
    callers fall back to their composite ops otherwise."""
    return getattr(kernels_for(array), name, None)


class use:
    """Switch backend: `use("numba")` for the rest of the program, `with use("numba"):` a block."""

    def __init__(self, name):
        global _current
        self._previous = current()
        _current = _resolve(name)
        self.name = _current

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        global _current
        _current = self._previous

    def __repr__(self):
        return f"tinygen.backend.use({self.name!r})"
