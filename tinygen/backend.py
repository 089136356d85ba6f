"""Which kernels run the convolutions: tinygen.backend.use("numba"), or TINYGEN_BACKEND=numba.

    tinygen.backend.available()      # e.g. ['numba', 'numpy']
    tinygen.backend.current()        # the one in use
    tinygen.backend.use("numpy")     # switch for the rest of the program ...
    with tinygen.backend.use("cuda"):    # ... or only inside the block
        ...

The default is the fastest backend that works here, as measured (kernels.DEFAULT_ORDER): cuda on
a real GPU, otherwise numba (numpy, the readable reference, is the last resort).
Asking for one that cannot run falls back to the next that can, with one warning saying why.
Models and layers never name a backend.
"""
import os
import warnings

from . import kernels

_current = None  # the name in use, chosen on first need
_warned = set()


def available():
    """The backends that can run on this machine (in kernels.NAMES order)."""
    names = []
    for name in kernels.NAMES:
        try:
            kernels.load(name)
        except kernels.BackendUnavailable:
            continue
        names.append(name)
    return names


def _default():
    """The first backend of kernels.DEFAULT_ORDER that runs here (never the CUDA simulator)."""
    names = available()
    for name in kernels.DEFAULT_ORDER:
        if name not in names or (name == "cuda" and kernels.is_simulated()):
            continue
        return name
    return "numpy"


def _resolve(name):
    """name if it can run, else the next backend that can, with one warning naming the reason."""
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
    """The kernel module of the current backend (what tinygen/ops/conv.py calls)."""
    return kernels.load(current())


class use:
    """Switch backend: `use("numba")` for the rest of the program,
    or `with use("numba"):` for a block."""

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
