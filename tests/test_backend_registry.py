"""The backend registry: a new backend is one module plus one register(...) line, and then the
switch, the status report, the fallback and the contract check all know it."""
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tinygen as tg
from tinygen import backend, kernels
from tinygen.kernels import numpy_conv

# A backend that keeps the contract by delegating to the NumPy kernels, counting its calls.
DELEGATING_MODULE = """
from tinygen.kernels import numpy_conv

calls = []


def conv2d(x, w, stride, padding):
    calls.append("conv2d")
    return numpy_conv.conv2d(x, w, stride, padding)


def conv2d_grad_input(gy, w, x_shape, stride, padding):
    calls.append("conv2d_grad_input")
    return numpy_conv.conv2d_grad_input(gy, w, x_shape, stride, padding)


def conv2d_grad_weight(x, gy, w_shape, stride, padding):
    calls.append("conv2d_grad_weight")
    return numpy_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding)
"""


@pytest.fixture
def new_backend(tmp_path, monkeypatch):
    """register(name, source, ...) writes source as a module and registers it; undone after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    added = []

    def add(name, source, device="cpu", **checks):
        (tmp_path / f"{name}_kernels.py").write_text(textwrap.dedent(source))
        kernels.register(kernels.Backend(name, f"{name}_kernels", device, **checks))
        added.append(name)

    before, registered = backend.current(), list(kernels.names())
    yield add
    backend.use(before)
    for name in added:
        kernels.REGISTRY.pop(name)
        kernels._loaded.pop(name, None)
        sys.modules.pop(f"{name}_kernels", None)
    assert list(kernels.names()) == registered  # each test leaves the registry as it found it


def test_the_registered_modules_keep_the_contract():
    for name in backend.available():
        assert isinstance(kernels.load(name), kernels.ConvKernels), name
    assert set(backend.available()) <= set(kernels.names())
    assert [entry.name for entry in backend.status()] == list(kernels.names())


def test_a_registered_backend_runs_the_layers(new_backend):
    new_backend("delegating", DELEGATING_MODULE)
    assert "delegating" in backend.available()
    assert kernels.names()[-1] == "delegating"  # registered last: the slowest, never the default
    layer = tg.nn.Conv2d(2, 3, 3, padding=1)
    x = tg.randn(2, 2, 5, 5, requires_grad=True)
    with backend.use("numpy"):
        expected = layer(x)
    with backend.use("delegating"):
        got = layer(x)
        got.sum().backward()
    np.testing.assert_array_equal(got.data, expected.data)
    calls = sys.modules["delegating_kernels"].calls
    assert set(calls) == {"conv2d", "conv2d_grad_input", "conv2d_grad_weight"}


def test_a_module_that_breaks_the_contract_is_named(new_backend):
    new_backend("partial", "def conv2d(x, w, stride, padding):\n    return x\n")
    with pytest.raises(TypeError, match="'partial'.*conv2d_grad_input, conv2d_grad_weight"):
        kernels.load("partial")


def test_unmet_requirements_fall_back_with_one_warning(new_backend):
    def needs_hardware():
        raise kernels.BackendUnavailable("no such accelerator here")

    new_backend("accelerator", DELEGATING_MODULE, device="gpu", requirements=needs_hardware)
    assert "accelerator" not in backend.available()
    (entry,) = [e for e in backend.status() if e.name == "accelerator"]
    assert entry == backend.BackendStatus("accelerator", "gpu", False,
                                          "no such accelerator here", False)
    backend._warned.clear()
    with pytest.warns(RuntimeWarning, match=r"'accelerator' backend is not available "
                                            r"\(no such accelerator here\); using"):
        with backend.use("accelerator") as chosen:
            assert chosen.name == backend._default()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend.use("accelerator")  # the same reason again: no second warning


def test_a_simulated_backend_is_available_but_never_the_default(new_backend):
    new_backend("emulated", DELEGATING_MODULE, device="gpu", simulated=lambda: True)
    registered = dict(kernels.REGISTRY)
    kernels.REGISTRY.clear()  # put it first, as the fastest, in place
    kernels.REGISTRY.update({"emulated": registered["emulated"], **registered})
    try:
        assert backend.available()[0] == "emulated"
        assert "emulated" not in backend.available(simulated=False)
        assert backend._default() != "emulated"
    finally:
        kernels.REGISTRY.clear()
        kernels.REGISTRY.update(registered)


def test_register_rejects_an_unknown_device():
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu'"):
        kernels.register(kernels.Backend("tpu", "tpu_kernels", "tpu"))
    assert "tpu" not in kernels.REGISTRY


def test_the_default_is_the_first_registered_backend_that_runs_for_real():
    assert backend._default() == backend.available(simulated=False)[0]
    assert backend.available(simulated=False) == [
        name for name in kernels.names() if name in backend.available(simulated=False)]


def test_the_numpy_reference_is_registered_and_needs_nothing():
    assert kernels.load("numpy") is numpy_conv
    assert kernels.REGISTRY["numpy"].device == "cpu"


class _BrokenCuda:
    """Stands in for numba.cuda where a GPU is found but numba-cuda cannot compile: its jit fails
    as numba-cuda 0.30 fails on numpy 2.5 (which removed np.row_stack)."""

    @staticmethod
    def jit(function):
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")


class _WrongCuda:
    """A numba.cuda whose kernels run but leave the array untouched."""

    @staticmethod
    def jit(function):
        class Launcher:
            def __getitem__(self, launch_config):
                return lambda *arrays: None
        return Launcher()


def test_cuda_that_cannot_compile_a_kernel_is_unavailable_with_the_versions_and_the_error():
    with pytest.raises(kernels.BackendUnavailable) as unavailable:
        kernels._cuda_compiles_a_kernel(_BrokenCuda)
    message = str(unavailable.value)
    assert message.startswith("numba-cuda cannot compile a kernel here (numpy ")
    assert f"numpy {np.__version__}" in message
    assert "numba-cuda" in message
    assert message.endswith("AttributeError: module 'numpy' has no attribute 'row_stack'")


def test_cuda_whose_kernel_computes_wrong_values_is_unavailable():
    with pytest.raises(kernels.BackendUnavailable, match="computed wrong values"):
        kernels._cuda_compiles_a_kernel(_WrongCuda)
