"""Kernel backends: the same three convolution functions on plain arrays, in three implementations.

    numpy   numpy_conv.py   im2col + one matrix product; the readable reference, always available
    numba   numba_conv.py   @njit(parallel=True, cache=True) CPU kernels: channels-last window
                            matrices around one BLAS product; also fused batch-norm and
                            leaky-relu kernels (numba_fused.py), which tinygen/ops/fused.py uses
    cuda    cuda_conv.py    numba.cuda GPU kernels
                            (arrays are copied to the device and back per call)

Every backend module exports conv2d(x, w, stride, padding), conv2d_grad_input(gy, w, x_shape,
stride, padding) and conv2d_grad_weight(x, gy, w_shape, stride, padding). Which one runs is chosen
in tinygen/backend.py; nothing else asks. Optional extras, used where a backend has them:
conv2d_keeping_windows / conv2d_grad_weight_from_windows (tinygen/ops/conv.py) and the fused
batch_norm_train, batch_norm_train_backward, scale_shift and leaky_relu (tinygen/ops/fused.py).
"""
import importlib

NAMES = ("cuda", "numba", "numpy")
# The default order, fastest first as measured by bench/conv.py and bench/dcgan_step.py (see
# ARCHITECTURE.md): on a 2-core CPU the numba kernels are as fast as NumPy's or faster on every
# DCGAN layer and the numba DCGAN step takes about 0.55x NumPy's time. Numba's first use compiles
# for ~10 s once; later processes load the machine code from its cache (bench/first_step.py).
DEFAULT_ORDER = ("cuda", "numba", "numpy")


class BackendUnavailable(Exception):
    """A backend cannot run here; the message says why (no numba, no GPU, no driver, ...)."""


_loaded = {}  # name -> kernel module, or the BackendUnavailable that said why not


def load(name):
    """The kernel module of backend `name`, or BackendUnavailable with the reason.

    Every conv op asks, so the answer is worked out once per process (looking for a GPU is slow).
    """
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")
    if name not in _loaded:
        try:
            _loaded[name] = _find(name)
        except BackendUnavailable as reason:
            _loaded[name] = reason
    if isinstance(_loaded[name], BackendUnavailable):
        raise BackendUnavailable(str(_loaded[name]))  # a fresh one: no stacked tracebacks
    return _loaded[name]


def _find(name):
    """Import backend `name`'s kernel module, or raise BackendUnavailable saying why."""
    if name == "numpy":
        return importlib.import_module(".numpy_conv", __name__)
    try:
        import numba  # noqa: F401
    except ImportError as error:
        raise BackendUnavailable(f"numba is not installed ({error})") from None
    if name == "numba":
        return importlib.import_module(".numba_conv", __name__)
    try:
        from numba import cuda
    except ImportError as error:
        raise BackendUnavailable(f"numba.cuda cannot be imported ({error})") from None
    try:
        found = cuda.is_available()
    except Exception as error:  # a broken driver can fail in many ways; report it, never crash
        raise BackendUnavailable(f"the CUDA driver failed: {error}") from None
    if not found:
        raise BackendUnavailable(
            "no CUDA GPU or driver found (numba.cuda.is_available() is False; "
            "NUMBA_ENABLE_CUDASIM=1 runs the kernels in numba's simulator)"
        )
    try:
        return importlib.import_module(".cuda_conv", __name__)
    except Exception as error:  # e.g. a numba-cuda that does not match the installed numba
        raise BackendUnavailable(f"the CUDA kernels failed to load: {error}") from None


def is_simulated():
    """True when numba.cuda is numba's CPU simulator (NUMBA_ENABLE_CUDASIM=1): correct, but slow."""
    try:
        from numba import config
    except ImportError:
        return False
    return bool(config.ENABLE_CUDASIM)
