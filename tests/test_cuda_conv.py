"""The cuda backend's kernels (tinygen/kernels/cuda_conv.py) against the NumPy reference, in
numba's CUDA simulator, and the fallback when there is no GPU.

The simulator must be switched on (NUMBA_ENABLE_CUDASIM=1) before numba is first imported, and the
other tests import numba in this process, so the simulator checks run in one child process: this
file run as a script. It compares the three kernels with numpy_conv over a grid of small cases
(strides 1-3, paddings 0-2, non-square kernels and strides, odd sizes, batch 1, float32 and
float64), with tiles of 4 (so that tiny shapes cross several tiles along every dimension) and of
16 (what a GPU runs), and gradchecks conv2d and conv_transpose2d with the cuda backend in use.
The simulator runs every GPU thread as a Python thread, so the shapes are tiny.
"""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# (x shape, w shape (O, C, kH, kW), stride, padding, dtype)
GRID = [
    ((2, 3, 5, 5), (2, 3, 3, 3), (1, 1), (0, 0), np.float64),
    ((1, 2, 7, 6), (3, 2, 3, 3), (2, 2), (1, 1), np.float32),
    ((1, 2, 7, 7), (2, 2, 3, 3), (3, 3), (2, 2), np.float64),
    ((2, 2, 6, 5), (3, 2, 2, 3), (2, 1), (1, 0), np.float32),
    ((1, 3, 7, 4), (2, 3, 3, 1), (1, 3), (0, 2), np.float64),
    ((2, 1, 7, 5), (2, 1, 2, 2), (3, 2), (1, 2), np.float32),
    ((1, 2, 5, 3), (2, 2, 5, 3), (1, 1), (0, 0), np.float64),  # kernel as large as the input
    ((1, 3, 4, 5), (3, 3, 1, 1), (2, 3), (1, 0), np.float32),  # 1x1 kernel
]
GRID_AT_TILE_16 = [GRID[0]]  # crosses a tile along K and P in all three products


def case_arrays(numpy_conv, case):
    """x, w and an upstream gradient gy (y's shape) for one case of GRID, random, in its dtype."""
    x_shape, w_shape, stride, padding, dtype = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    gy = rng.standard_normal(numpy_conv.conv2d(x, w, stride, padding).shape).astype(dtype)
    return x, w, gy


def _compare_with_numpy(cuda_conv, numpy_conv, case):
    """The three cuda kernels vs numpy_conv on one case; a list of failure messages."""
    x_shape, w_shape, stride, padding, dtype = case
    x, w, gy = case_arrays(numpy_conv, case)
    results = {
        "conv2d": (cuda_conv.conv2d(x, w, stride, padding),
                   numpy_conv.conv2d(x, w, stride, padding)),
        "conv2d_grad_input": (cuda_conv.conv2d_grad_input(gy, w, x_shape, stride, padding),
                              numpy_conv.conv2d_grad_input(gy, w, x_shape, stride, padding)),
        "conv2d_grad_weight": (cuda_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding),
                               numpy_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding)),
    }
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    failures = []
    for kernel, (got, expected) in results.items():
        where = f"{kernel} TILE={cuda_conv.TILE} {case}"
        try:
            assert got.dtype == dtype, f"dtype {got.dtype}"
            assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
            scale = max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)
        except AssertionError as error:
            failures.append(f"{where}: {error}")
    return failures


def _gradcheck_ops_on_cuda(tg):
    """gradcheck conv2d and conv_transpose2d (float64) with the cuda backend in use."""
    from tinygen.ops import conv2d, conv_transpose2d

    rng = np.random.default_rng(1)

    def t64(shape):
        return tg.tensor(rng.standard_normal(shape), dtype="float64", requires_grad=True)

    with tg.backend.use("cuda"):
        assert tg.backend.current() == "cuda", tg.backend.current()
        # max_elements: each checked element costs two forward launches in the slow simulator
        tg.gradcheck(lambda x, w: conv2d(x, w, stride=(2, 1), padding=1),
                     [t64((1, 2, 3, 3)), t64((2, 2, 2, 2))], max_elements=6)
        tg.gradcheck(lambda x, w: conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                     [t64((1, 2, 2, 2)), t64((2, 1, 3, 3))], max_elements=6)


def simulator_checks():
    """Every check of the cuda kernels, in this process, which must run the simulator.
    Prints each failure; returns the exit status (0: all passed)."""
    # Each simulated thread is a Python thread and the simulator polls them at every syncthreads;
    # a short interpreter switch interval lets it notice sooner (several times faster here).
    sys.setswitchinterval(1e-4)
    import tinygen as tg
    from tinygen import kernels
    from tinygen.kernels import cuda_conv, numpy_conv

    assert kernels.is_simulated(), "run with NUMBA_ENABLE_CUDASIM=1"
    failures = []
    # The simulator reads the module's TILE at every launch (on a GPU numba would freeze it
    # at the first compile), so both tile sizes can run here.
    for tile, grid in ((4, GRID), (16, GRID_AT_TILE_16)):
        cuda_conv.TILE = tile
        for case in grid:
            failures += _compare_with_numpy(cuda_conv, numpy_conv, case)
    cuda_conv.TILE = 4
    try:
        _gradcheck_ops_on_cuda(tg)
    except AssertionError as error:  # GradcheckError is an AssertionError
        failures.append(f"gradcheck on the cuda backend: {error}")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


def test_cuda_kernels_in_the_simulator_equal_the_numpy_reference_and_pass_gradcheck():
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", TINYGEN_BACKEND="")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, __file__], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _cuda_is_available():
    try:
        from numba import cuda
    except ImportError:
        return False
    return cuda.is_available()


@pytest.mark.skipif(_cuda_is_available(), reason="a CUDA GPU (or the simulator) is here")
def test_cuda_without_a_gpu_falls_back_with_one_runtime_warning_naming_the_reason(monkeypatch):
    from tinygen import backend, kernels

    with pytest.raises(kernels.BackendUnavailable) as unavailable:
        kernels.load("cuda")
    monkeypatch.setattr(backend, "_warned", set())  # as if cuda had never been asked for
    before = backend.current()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with backend.use("cuda") as chosen:
            assert chosen.name != "cuda"
            assert backend.current() == chosen.name
        with backend.use("cuda"):  # a second request warns no more
            pass
    assert backend.current() == before
    assert [w.category for w in caught] == [RuntimeWarning]
    message = str(caught[0].message)
    assert "'cuda' backend is not available" in message
    assert str(unavailable.value) in message  # the reason, e.g. no GPU or driver found


if __name__ == "__main__":
    sys.exit(simulator_checks())
