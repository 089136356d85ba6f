"""The backend switch and every CPU backend's kernels against the NumPy reference.

The cuda backend's kernels are checked in tests/test_cuda_conv.py (numba's simulator runs in a
subprocess, because it must be switched on before numba is imported).
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import tinygen as tg
from tinygen import backend, kernels
from tinygen.kernels import numpy_conv

# Every registered CPU backend that runs here; a new backend is tested by registering it.
CPU_BACKENDS = [name for name, entry in kernels.REGISTRY.items()
                if entry.device == "cpu" and name in backend.available()]

# x shape, w shape, stride, padding: odd and non-square sizes, batch 1, 1x1 kernels, big strides.
CASES = [
    ((2, 3, 7, 7), (4, 3, 3, 3), (1, 1), (0, 0)),
    ((1, 2, 9, 8), (3, 2, 4, 4), (2, 2), (1, 1)),
    ((2, 1, 28, 28), (5, 1, 4, 4), (2, 2), (1, 1)),
    ((3, 4, 6, 9), (2, 4, 2, 3), (2, 1), (1, 0)),
    ((1, 3, 5, 5), (2, 3, 1, 1), (3, 3), (2, 2)),
    ((2, 2, 11, 7), (3, 2, 5, 2), (3, 2), (2, 1)),
]


def _run(code, env_changes):
    env = dict(os.environ, **env_changes)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


def test_numpy_is_always_available_and_numba_is_here():
    assert "numpy" in backend.available()
    assert "numba" in backend.available()  # numba is a dependency of tinygen


def test_default_is_the_fastest_available_backend_that_is_not_the_simulator():
    result = _run("import tinygen; print(tinygen.backend.current())",
                  {"TINYGEN_BACKEND": "", "NUMBA_ENABLE_CUDASIM": "0"})
    assert result.returncode == 0, result.stderr
    expected = [n for n in kernels.names() if n in backend.available(simulated=False)][0]
    assert result.stdout.strip() == expected


def test_environment_variable_chooses_the_backend():
    result = _run("import tinygen; print(tinygen.backend.current())", {"TINYGEN_BACKEND": "numpy"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"


def test_use_as_context_manager_restores_the_previous_backend():
    before = backend.current()
    with backend.use("numpy") as chosen:
        assert chosen.name == "numpy"
        assert backend.current() == "numpy"
    assert backend.current() == before


def test_use_without_with_switches_for_good():
    before = backend.current()
    try:
        backend.use("numpy")
        assert backend.current() == "numpy"
    finally:
        backend.use(before)


def test_unknown_backend_name_is_an_error_listing_the_choices():
    choices = ", ".join(kernels.names())
    with pytest.raises(ValueError, match=f"unknown backend 'tpu'; choose one of {choices}"):
        backend.use("tpu")


@pytest.mark.skipif("cuda" in backend.available(), reason="a CUDA device (or simulator) is here")
def test_missing_cuda_falls_back_with_one_warning_naming_the_reason():
    backend._warned.clear()
    before = backend.current()
    with pytest.warns(RuntimeWarning, match=r"'cuda' backend is not available \(.*\); using"):
        with backend.use("cuda") as chosen:
            assert chosen.name == backend._default()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second request warns no more
        with backend.use("cuda"):
            pass
    assert backend.current() == before


def test_missing_backend_in_environment_falls_back_without_a_traceback():
    result = _run("import tinygen; print(tinygen.backend.current())",
                  {"TINYGEN_BACKEND": "cuda", "NUMBA_ENABLE_CUDASIM": "0"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if result.stdout.strip() != "cuda":
        assert "'cuda' backend is not available" in result.stderr


def _case_arrays(case, dtype, seed=0):
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y_shape = numpy_conv.conv2d(x, w, stride, padding).shape
    gy = rng.standard_normal(y_shape).astype(dtype)
    return x, w, gy, stride, padding


@pytest.mark.parametrize("name", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_backend_kernels_equal_the_numpy_reference(name, dtype, case):
    module = kernels.load(name)
    x, w, gy, stride, padding = _case_arrays(case, dtype)
    results = {
        "conv2d": (module.conv2d(x, w, stride, padding),
                   numpy_conv.conv2d(x, w, stride, padding)),
        "grad_input": (module.conv2d_grad_input(gy, w, x.shape, stride, padding),
                       numpy_conv.conv2d_grad_input(gy, w, x.shape, stride, padding)),
        "grad_weight": (module.conv2d_grad_weight(x, gy, w.shape, stride, padding),
                        numpy_conv.conv2d_grad_weight(x, gy, w.shape, stride, padding)),
    }
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    for kernel, (got, expected) in results.items():
        assert got.dtype == dtype, kernel
        assert got.shape == expected.shape, kernel
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=kernel)


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_conv_layers_gradcheck_first_and_second_order_on_each_backend(name):
    rng = np.random.default_rng(3)
    x = tg.tensor(rng.standard_normal((2, 2, 5, 5)), dtype="float64", requires_grad=True)
    w = tg.tensor(rng.standard_normal((3, 2, 3, 3)), dtype="float64", requires_grad=True)
    b = tg.tensor(rng.standard_normal(3), dtype="float64", requires_grad=True)
    wt = tg.tensor(rng.standard_normal((2, 3, 3, 3)), dtype="float64", requires_grad=True)

    def conv(x, w, b):
        return tg.nn.functional.conv2d(x, w, b, stride=2, padding=1)

    def conv_t(x, w, b):
        return tg.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)

    with backend.use(name):
        assert tg.gradcheck(conv, [x, w, b])
        assert tg.gradgradcheck(conv, [x, w, b])
        assert tg.gradcheck(conv_t, [x, wt, b])
        assert tg.gradgradcheck(conv_t, [x, wt, b])


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_models_give_the_same_output_on_every_backend(name):
    tg.manual_seed(0)
    model = tg.nn.Sequential(
        tg.nn.Conv2d(1, 4, 4, 2, 1), tg.nn.LeakyReLU(0.2),
        tg.nn.ConvTranspose2d(4, 1, 4, 2, 1), tg.nn.Tanh(),
    )
    x = tg.randn(2, 1, 8, 8)
    with backend.use("numpy"):
        expected = model(x).data
    with backend.use(name):
        got = model(x).data
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
