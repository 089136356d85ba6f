"""The cuda backend's fused kernels (tinygen/kernels/cuda_fused.py) and its two convolution methods
for device arrays (tinygen/kernels/cuda_conv.py), in numba's CUDA simulator.

As in test_cuda_conv.py, the simulator must be on (NUMBA_ENABLE_CUDASIM=1) before numba is first
imported, so the checks run in a child process: this file run as a script, with the name of a
group of checks. The simulator runs every GPU thread as a Python thread, so the shapes are tiny
and the fused kernels run with blocks of 8 threads and grids of at most 2 blocks: channels of 6,
12, 13 and 60 values (fewer than a block, not a multiple of it, several per thread) and arrays of
30 to 120 elements (more than a grid, so the grid-stride loops go round). One case also runs at
the module's own block size.

The kernels choose what to do with host arrays by numba.config.ENABLE_CUDASIM, read at every call
(under the simulator host arrays go to the kernels as they are; on a GPU they are copied there and
back). Clearing that flag for a moment (_as_on_a_real_gpu) makes them take a real GPU's branches,
with the simulator's stand-in device memory: the copies for host arrays, and for arrays that
_on_device (patched) calls device arrays, none at all.

The "im2col" method runs numpy_conv.py on the device arrays themselves. Its device arrays here are
tests/strict_device.py's StrictArrays marked as device arrays: they reach NumPy's functions through
the same dispatch protocols as CuPy arrays and, like them, refuse to meet host arrays; so an array
that numpy_conv made on the host (np.zeros without like=) fails here as it would on a GPU.
"""
import contextlib
import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from strict_device import StrictArray
from test_cuda_conv import GRID, case_arrays

ROOT = Path(__file__).resolve().parent.parent

# (shape, dtype): (N, C) and (N, C, H, W); values per channel 13, 6, 60 and 12
FUSED_CASES = [
    ((13, 3), np.float32),
    ((13, 3), np.float64),
    ((2, 5, 1, 3), np.float32),
    ((3, 2, 4, 5), np.float64),
    ((2, 3, 3, 2), np.float32),
]
AT_FULL_BLOCK_SIZE = ((5, 1, 4, 13), np.float32)  # 260 values in a channel > 256 threads
EPS = 1e-5
SLOPE = 0.2


# ---- the fused kernels against NumPy formulas --------------------------------------------------

def _channel_axes(x):
    """The axes that batch norm sums over, and the shape that broadcasts a (C,) array on x."""
    return (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)


def _expected(x, g, weight, bias, scale, shift):
    """What each fused kernel must return, from plain NumPy formulas in float64."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    axes, per_channel = _channel_axes(x)
    mean, var = x.mean(axis=axes), x.var(axis=axes)  # the biased variance
    inv_std = 1 / np.sqrt(var.reshape(per_channel) + EPS)
    x_hat = (x - mean.reshape(per_channel)) * inv_std
    y = x_hat * weight.reshape(per_channel) + bias.reshape(per_channel)
    gx = weight.reshape(per_channel) * inv_std * (
        g - g.mean(axis=axes, keepdims=True)
        - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))
    return {
        "batch_norm_train": (y, mean, var),
        "batch_norm_train_backward": (gx, (g * x_hat).sum(axis=axes), g.sum(axis=axes)),
        "scale_shift": (x * scale.reshape(per_channel) + shift.reshape(per_channel),),
        "leaky_relu": (np.where(x > 0, x, SLOPE * x),),
        "leaky_relu_backward": (np.where(x > 0, g, SLOPE * g),),
    }


def _compare_fused(cuda_fused, case, on_device=lambda a: a, where=""):
    """The five fused kernels vs _expected on one case; a list of failure messages. on_device
    turns a host array into what the kernels are given (the arrays themselves by default)."""
    shape, dtype = case
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal(shape) + 1).astype(dtype)  # a mean far from 0
    x.flat[::7] = 0  # leaky relu's slope at 0 is the negative slope
    g = rng.standard_normal(shape).astype(dtype)
    weight, bias, scale, shift = rng.standard_normal((4, shape[1])).astype(dtype)
    expected = _expected(x, g, weight, bias, scale, shift)
    mean, var = (a.astype(dtype) for a in expected["batch_norm_train"][1:])
    x, g, weight, bias, scale, shift, mean, var = map(
        on_device, (x, g, weight, bias, scale, shift, mean, var))
    got = {
        "batch_norm_train": cuda_fused.batch_norm_train(x, weight, bias, EPS),
        "batch_norm_train_backward": cuda_fused.batch_norm_train_backward(
            g, x, mean, var, weight, EPS),
        "scale_shift": (cuda_fused.scale_shift(x, scale, shift),),
        "leaky_relu": (cuda_fused.leaky_relu(x, SLOPE),),
        "leaky_relu_backward": (cuda_fused.leaky_relu_backward(g, x, SLOPE),),
    }
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    failures = []
    for kernel, results in got.items():
        for k, (result, wanted) in enumerate(zip(results, expected[kernel])):
            message = (f"{kernel} result {k}, {case}, THREADS={cuda_fused.THREADS}, "
                       f"MAX_BLOCKS={cuda_fused.MAX_BLOCKS}{where}")
            try:
                assert isinstance(result, np.ndarray), f"a {type(result).__name__}"
                _assert_matches(result, wanted, dtype, rtol)
            except AssertionError as error:
                failures.append(f"{message}: {error}")
    return failures


def _assert_matches(result, wanted, dtype, rtol):
    """A host array with wanted's shape, the dtype asked for, and its values within rtol (and an
    atol of rtol times wanted's largest |entry|, where that exceeds 1)."""
    assert result.dtype == dtype, f"dtype {result.dtype}"
    assert result.shape == wanted.shape, f"shape {result.shape} != {wanted.shape}"
    atol = rtol * max(1.0, float(np.abs(wanted).max()))
    np.testing.assert_allclose(result, wanted, rtol=rtol, atol=atol)


# ---- switches for the real GPU's branches -------------------------------------------------------

_MISSING = object()


@contextlib.contextmanager
def _patched(owner, name, value):
    """owner.name = value for the duration of the block (owner may lack it before)."""
    old = getattr(owner, name, _MISSING)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if old is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, old)


def _view_without_wait(obj, sync=True):
    """numba.cuda.as_cuda_array as the kernels must call it on a device array: sync=False (the
    simulator has no as_cuda_array; this stands in for it and refuses a view that waits)."""
    if sync:
        raise AssertionError("as_cuda_array without sync=False: the GPU would wait at every "
                             "argument of every launch")
    return obj


@contextlib.contextmanager
def _as_on_a_real_gpu():
    """The kernel modules take the branches of a real GPU (see the module docstring)."""
    from numba import config, cuda

    with _patched(config, "ENABLE_CUDASIM", 0), \
            _patched(cuda, "as_cuda_array", _view_without_wait):
        yield


@contextlib.contextmanager
def _counting_transfers():
    """-> a list that gets the name of every numba.cuda.to_device and device_array call: the
    copies to the GPU and the buffers for results to be copied back."""
    from numba import cuda

    calls = []

    def counted(function):
        def wrapper(*args, **kwargs):
            calls.append(function.__name__)
            return function(*args, **kwargs)
        return wrapper

    with _patched(cuda, "to_device", counted(cuda.to_device)), \
            _patched(cuda, "device_array", counted(cuda.device_array)):
        yield calls


def fused_checks():
    """The fused kernels vs NumPy: in the simulator, then on the branches of a real GPU."""
    from tinygen.kernels import cuda_fused

    failures = []
    threads, max_blocks = cuda_fused.THREADS, cuda_fused.MAX_BLOCKS
    cuda_fused.THREADS, cuda_fused.MAX_BLOCKS = 8, 2
    for case in FUSED_CASES:
        failures += _compare_fused(cuda_fused, case)
    with _as_on_a_real_gpu():
        with _counting_transfers() as transfers:  # host arrays: copied there and back
            failures += _compare_fused(cuda_fused, FUSED_CASES[0], where=", host arrays")
        if not transfers:
            failures.append("fused kernels: host arrays on a GPU were not copied to the device")
        with _patched(cuda_fused, "_on_device", lambda a: True), \
                _counting_transfers() as transfers:  # device arrays: no copies
            failures += _compare_fused(cuda_fused, FUSED_CASES[3], where=", device arrays")
        if transfers:
            failures.append(f"fused kernels on device arrays copied: {transfers}")
    cuda_fused.THREADS, cuda_fused.MAX_BLOCKS = threads, max_blocks
    failures += _compare_fused(cuda_fused, AT_FULL_BLOCK_SIZE)
    return failures


# ---- a device array for the im2col method ------------------------------------------------------

class StandInDeviceArray(StrictArray):
    """strict_device.py's StrictArray (towards NumPy it behaves as a CuPy array does, and refuses
    to meet host arrays) with the mark cuda_conv looks for on a device array (only its presence
    counts here)."""

    __slots__ = ()
    __cuda_array_interface__ = None


# ---- the two convolution methods ----------------------------------------------------------------

def _compare_conv(cuda_conv, numpy_conv, case, on_device=lambda a: a, where=""):
    """cuda_conv's three functions vs numpy_conv's on one case of test_cuda_conv.GRID; a list of
    failure messages. on_device as in _compare_fused; results must come back on the same side."""
    x_shape, w_shape, stride, padding, dtype = case
    x, w, gy = case_arrays(numpy_conv, case)
    expected = {
        "conv2d": numpy_conv.conv2d(x, w, stride, padding),
        "conv2d_grad_input": numpy_conv.conv2d_grad_input(gy, w, x_shape, stride, padding),
        "conv2d_grad_weight": numpy_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding),
    }
    x, w, gy = map(on_device, (x, w, gy))
    side = np.ndarray if isinstance(x, np.ndarray) else StrictArray  # the side x is on
    got = {
        "conv2d": cuda_conv.conv2d(x, w, stride, padding),
        "conv2d_grad_input": cuda_conv.conv2d_grad_input(gy, w, x_shape, stride, padding),
        "conv2d_grad_weight": cuda_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding),
    }
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    failures = []
    for kernel, result in got.items():
        wanted = expected[kernel]
        try:
            assert isinstance(result, side), f"a {type(result).__name__}, not a {side.__name__}"
            result = result if side is np.ndarray else result.get()
            _assert_matches(result, wanted, dtype, rtol)
        except AssertionError as error:
            failures.append(f"{kernel} {cuda_conv.conv_method} {case}{where}: {error}")
    return failures


@contextlib.contextmanager
def _counting_numpy_conv_calls(cuda_conv):
    """-> a list that gets the name of every function of numpy_conv that cuda_conv calls."""
    calls = []

    def counted(name):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return getattr(numpy_conv, name)(*args, **kwargs)
        return wrapper

    numpy_conv = cuda_conv.numpy_conv
    names = ("conv2d", "conv2d_grad_input", "conv2d_grad_weight")
    with _patched(cuda_conv, "numpy_conv", SimpleNamespace(**{n: counted(n) for n in names})):
        yield calls


def conv_checks():
    """cuda_conv's methods: im2col on device arrays, implicit_gemm on device and host arrays."""
    from tinygen.kernels import cuda_conv, numpy_conv

    failures = []
    cuda_conv.TILE = 4  # tiny shapes still cross several tiles (see test_cuda_conv.py)
    if cuda_conv.conv_method != "im2col":
        failures.append(f"the default method is {cuda_conv.conv_method!r}, not 'im2col'")
    cuda_conv.use_conv_method("im2col")
    for case in (GRID[1], GRID[4]):
        with _counting_numpy_conv_calls(cuda_conv) as calls:
            failures += _compare_conv(cuda_conv, numpy_conv, case, on_device=StandInDeviceArray,
                                      where=", device arrays")
        if len(calls) != 3:
            failures.append(f"im2col on device arrays: numpy_conv was called for {calls}")
        with _counting_numpy_conv_calls(cuda_conv) as calls:
            failures += _compare_conv(cuda_conv, numpy_conv, case, where=", host arrays")
        if calls:
            failures.append(f"im2col chosen, host arrays: numpy_conv was called for {calls}, "
                            f"host arrays must take implicit_gemm")

    cuda_conv.use_conv_method("implicit_gemm")
    with _as_on_a_real_gpu():
        with _counting_transfers() as transfers:
            failures += _compare_conv(cuda_conv, numpy_conv, GRID[3], where=", host arrays")
        if not transfers:
            failures.append("implicit_gemm: host arrays on a GPU were not copied to the device")
        with _patched(cuda_conv, "_on_device", lambda a: True), \
                _counting_numpy_conv_calls(cuda_conv) as calls, \
                _counting_transfers() as transfers:
            failures += _compare_conv(cuda_conv, numpy_conv, GRID[5], where=", device arrays")
        if transfers or calls:
            failures.append(f"implicit_gemm on device arrays copied {transfers} or called "
                            f"numpy_conv for {calls}")

    try:
        cuda_conv.use_conv_method("winograd")
        failures.append("use_conv_method('winograd') did not raise ValueError")
    except ValueError as error:
        if "im2col" not in str(error) or "implicit_gemm" not in str(error):
            failures.append(f"the ValueError does not name the methods: {error}")
    failures += _environment_checks(cuda_conv)
    return failures


def _environment_checks(cuda_conv):
    """TINYGEN_GPU_CONV chooses the method when cuda_conv is imported (here: reloaded)."""
    failures = []
    with _patched(os, "environ", dict(os.environ, TINYGEN_GPU_CONV="implicit_gemm")):
        importlib.reload(cuda_conv)
        if cuda_conv.conv_method != "implicit_gemm":
            failures.append(f"TINYGEN_GPU_CONV=implicit_gemm gave {cuda_conv.conv_method!r}")
    with _patched(os, "environ", dict(os.environ, TINYGEN_GPU_CONV="im2cols")):
        try:
            importlib.reload(cuda_conv)
            failures.append("TINYGEN_GPU_CONV=im2cols did not raise ValueError")
        except ValueError as error:
            if "im2cols" not in str(error) or "implicit_gemm" not in str(error):
                failures.append(f"the ValueError does not name the value and methods: {error}")
    importlib.reload(cuda_conv)  # as imported with TINYGEN_GPU_CONV unset
    return failures


CHECKS = {"fused": fused_checks, "conv": conv_checks}


def simulator_checks(groups):
    """The named groups of checks (all without names), in this process, which must run the
    simulator. Prints each failure; returns the exit status (0: all passed)."""
    sys.setswitchinterval(1e-4)  # the simulator's threads wait less (see test_cuda_conv.py)
    from tinygen import kernels

    assert kernels.is_simulated(), "run with NUMBA_ENABLE_CUDASIM=1"
    failures = []
    for group in groups or CHECKS:
        failures += CHECKS[group]()
    for failure in failures:
        print(failure)
    return 1 if failures else 0


def _run_in_the_simulator(group):
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", TINYGEN_BACKEND="", TINYGEN_GPU_CONV="")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, __file__, group], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cuda_fused_kernels_in_the_simulator_equal_numpy_formulas_on_host_and_device_arrays():
    _run_in_the_simulator("fused")


def test_cuda_conv_methods_im2col_and_implicit_gemm_equal_numpy_conv_on_device_arrays():
    _run_in_the_simulator("conv")


if __name__ == "__main__":
    sys.exit(simulator_checks(sys.argv[1:]))
