"""Kernel backends: the same three convolution functions on plain arrays, one module each.

    numpy   numpy_conv.py   im2col + one matrix product; the readable reference, always available
    numba   numba_conv.py   @njit(parallel=True, cache=True) CPU kernels: channels-last window
                            matrices around one BLAS product; also fused batch-norm and
                            leaky-relu kernels (numba_fused.py), which tinygen/ops/fused.py uses
    cuda    cuda_conv.py    numba.cuda GPU kernels, and fused batch norm and leaky relu
                            (cuda_fused.py): in place on arrays that live on the GPU (CuPy's,
                            the kernels of every device tensor); NumPy arrays are copied to
                            the GPU and back per call (the backend chosen for CPU tensors)

Every backend module provides the functions of `ConvKernels` below; which one runs is chosen in
tinygen/backend.py, and nothing else asks. Adding a backend is one new module plus one
`register(Backend(...))` line at the end of this file: the switch, `tinygen info`, the
`--backend` option and the tests all loop over REGISTRY.

Optional extras, used where a backend has them: `WindowKernels` (tinygen/ops/conv.py keeps the
forward's window matrix for the weight gradient), `FusedKernels` (tinygen/ops/fused.py) and
numba's one-pass `adam_update` / `ema_update`. Every op asks for its kernel the same way,
tinygen.backend.kernel(name, array): the function, or None where that backend lacks it.
"""
import importlib
import warnings
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable


@runtime_checkable
class ConvKernels(Protocol):
    """What a backend module must define. Arrays are NumPy, NCHW; weight (C_out, C_in, kH, kW);
    stride and padding are (vertical, horizontal) pairs of ints; results have x's dtype."""

    def conv2d(self, x, w, stride, padding):
        """y = x * w (cross-correlation), the forward: (N, C_in, H, W) -> (N, C_out, OH, OW)."""

    def conv2d_grad_input(self, gy, w, x_shape, stride, padding):
        """dL/dx from dL/dy; also the forward of the transposed convolution."""

    def conv2d_grad_weight(self, x, gy, w_shape, stride, padding):
        """dL/dw from x and dL/dy."""


class WindowKernels(Protocol):
    """Optional: a forward that also returns the window matrix it built, and the weight
    gradient from that matrix (saves rebuilding it in backward)."""

    def conv2d_keeping_windows(self, x, w, stride, padding):
        """-> (y, windows)."""

    def conv2d_grad_weight_from_windows(self, windows, gy, w_shape):
        """dL/dw from the forward's windows and dL/dy."""

    def give_back_windows(self, windows):
        """Optional too: take back windows no one will read again, for a later forward."""


class FusedKernels(Protocol):
    """Optional: one-pass batch norm and leaky relu (see tinygen/ops/fused.py)."""

    def batch_norm_train(self, x, weight, bias, eps):
        """-> (y, mean, var) with the batch's biased variance, per channel (axis 1)."""

    def batch_norm_train_backward(self, g, x, mean, var, weight, eps):
        """-> (gx, gweight, gbias)."""

    def scale_shift(self, x, scale, shift):
        """y = x * scale + shift per channel (batch norm in evaluation mode)."""

    def leaky_relu(self, x, negative_slope):
        """y = x if x > 0 else negative_slope * x."""

    def leaky_relu_backward(self, g, x, negative_slope):
        """dL/dx = g if x > 0 else negative_slope * g."""


class BackendUnavailable(Exception):
    """A backend cannot run here; the message says why (no numba, no GPU, no driver, ...)."""


def _always_runs():
    """The requirements of a backend that needs nothing beyond tinygen's own dependencies."""


def _never_simulated():
    return False


@dataclass(frozen=True)
class Backend:
    """One registry entry: where a backend's kernels are and when they can run."""

    name: str
    module: str  # its kernel module in this package, e.g. ".numpy_conv"
    device: str  # "cpu" or "gpu"
    # Raises BackendUnavailable saying why the kernels cannot run here; called before importing.
    requirements: Callable[[], None] = _always_runs
    # True when the kernels run only in an emulator (correct, too slow to be a default or timed).
    simulated: Callable[[], bool] = _never_simulated


REGISTRY = {}  # name -> Backend, fastest first: the default is the first that runs for real
_loaded = {}  # name -> kernel module, or the BackendUnavailable that said why not


def register(backend):
    """Add a backend to the registry (after the ones already there, i.e. as slower)."""
    if backend.device not in ("cpu", "gpu"):
        raise ValueError(f"register: device must be 'cpu' or 'gpu', got {backend.device!r}")
    REGISTRY[backend.name] = backend
    _loaded.pop(backend.name, None)


def names():
    """The registered backends' names, fastest first."""
    return tuple(REGISTRY)


def load(name):
    """The kernel module of backend `name`, or BackendUnavailable with the reason.

    Every conv op asks, so the answer is worked out once per process (looking for a GPU is slow).
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(REGISTRY)}")
    if name not in _loaded:
        try:
            _loaded[name] = _import(REGISTRY[name])
        except BackendUnavailable as reason:
            _loaded[name] = reason
    if isinstance(_loaded[name], BackendUnavailable):
        raise BackendUnavailable(str(_loaded[name]))  # a fresh one: no stacked tracebacks
    return _loaded[name]


def _import(backend):
    """Check the backend's requirements, import its module and check it keeps the contract."""
    backend.requirements()
    try:
        module = importlib.import_module(backend.module, __name__)
    except Exception as error:  # e.g. a numba-cuda that does not match the installed numba
        raise BackendUnavailable(f"its kernels failed to load: {error}") from None
    if not isinstance(module, ConvKernels):
        lacking = [f for f in ("conv2d", "conv2d_grad_input", "conv2d_grad_weight")
                   if not callable(getattr(module, f, None))]
        raise TypeError(f"backend {backend.name!r}: module {module.__name__} does not define "
                        f"{', '.join(lacking)} (see tinygen.kernels.ConvKernels)")
    return module


def is_simulated():
    """True when numba.cuda is numba's CPU simulator (NUMBA_ENABLE_CUDASIM=1): correct, but slow."""
    try:
        from numba import config
    except ImportError:
        return False
    return bool(config.ENABLE_CUDASIM)


def _numba_requirements():
    try:
        import numba  # noqa: F401
    except ImportError as error:
        raise BackendUnavailable(f"numba is not installed ({error})") from None


def _cuda_requirements():
    _numba_requirements()
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
    _cuda_compiles_a_kernel(cuda)


def _cuda_compiles_a_kernel(cuda):
    """Compile and run a one-line kernel: a GPU is not enough, numba-cuda must also work with the
    installed numpy (numba-cuda 0.30 fails on numpy 2.5, which removed np.row_stack, at its first
    kernel compile, long after cuda.is_available() said yes)."""
    import numpy as np

    def set_to_one(a):  # one thread; no cuda.* inside, which the simulator could not resolve here
        a[0] = 1.0

    try:
        one = np.zeros(1, dtype=np.float32)
        with warnings.catch_warnings():  # numba's low-occupancy and host-copy notes: noise here
            warnings.simplefilter("ignore")
            cuda.jit(set_to_one)[1, 1](one)
        works = bool(one[0] == 1)
    except Exception as error:  # any failure of the toolchain: report it, fall back to the CPU
        raise BackendUnavailable(
            f"numba-cuda cannot compile a kernel here ({_versions()}): "
            f"{type(error).__name__}: {error}") from None
    if not works:
        raise BackendUnavailable(
            f"a numba-cuda kernel ran but computed wrong values ({_versions()})")


def _versions():
    """numpy, numba and numba-cuda versions, for messages about a mismatch between them."""
    from importlib import metadata

    found = []
    for dist in ("numpy", "numba", "numba-cuda"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} not installed")
    return ", ".join(found)


# The registry, fastest first as measured by bench/conv.py and bench/dcgan_step.py; the figures
# are in ARCHITECTURE.md ("The default: numba, then cuda, then numpy"). cuda comes after numba: on
# CPU tensors its kernels copy every array to the GPU and back, which made its step slower than
# numba's even on an H200. It runs when asked for (TINYGEN_BACKEND=cuda); tensors that live on the
# GPU (tinygen/devices.py) always run its kernels, in place.
register(Backend("numba", ".numba_conv", "cpu", _numba_requirements))
register(Backend("cuda", ".cuda_conv", "gpu", _cuda_requirements, is_simulated))
register(Backend("numpy", ".numpy_conv", "cpu"))
