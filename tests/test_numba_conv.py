"""The numba convolution kernels (tinygen/kernels/numba_conv.py) against the NumPy reference
(tinygen/kernels/numpy_conv.py), on each of numba's two paths:

- "channels_last": the channels-last window matrices, forced with THIN_WINDOW = 0;
- "thin": the NumPy fallback for short window rows, forced with a huge THIN_WINDOW;
- "default": THIN_WINDOW as shipped (some cases on either side of it, one exactly at it).

Checked: a grid of strides, paddings, odd and non-square sizes, kernels 1x1 / 3x3 / 4x4 / 2x3,
one and many channels, batch 1 and 3, float32 and float64; non-contiguous inputs give the same
bits as contiguous ones; the transposed convolution with output_padding; fresh outputs that
alias neither each other nor the workspace; clear_workspace; nothing compiled at import.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tinygen.kernels import numba_conv, numpy_conv

PATHS = {"channels_last": 0, "thin": 10**9, "default": None}
RTOL = {np.float32: 1e-5, np.float64: 1e-12}

# x shape, w shape, stride, padding. C*kH*kW (the window row) noted for the default THIN_WINDOW.
CASES = [
    ((1, 1, 7, 5), (1, 1, 1, 1), (1, 1), (0, 0)),  # 1 channel in and out, 1x1: row 1
    ((3, 5, 9, 7), (6, 5, 3, 3), (2, 2), (1, 1)),  # row 45
    ((1, 8, 6, 11), (4, 8, 4, 4), (2, 1), (2, 1)),  # row 128: exactly THIN_WINDOW
    ((3, 3, 11, 8), (7, 3, 2, 3), (3, 2), (1, 1)),  # row 18
    ((1, 16, 5, 5), (1, 16, 3, 3), (1, 1), (2, 1)),  # many in, one out: row 144
    ((3, 1, 10, 9), (9, 1, 4, 4), (2, 2), (1, 1)),  # one in, many out (DCGAN's first layer)
    ((3, 12, 7, 9), (5, 12, 2, 3), (3, 2), (0, 0)),  # row 72
    ((3, 4, 8, 6), (3, 4, 4, 4), (1, 1), (2, 1)),  # row 64
    ((1, 20, 9, 9), (10, 20, 1, 1), (2, 1), (1, 1)),  # 1x1 with padding: border outputs are 0
    ((3, 9, 13, 10), (8, 9, 3, 3), (3, 2), (2, 1)),  # row 81
    ((1, 10, 5, 6), (2, 10, 4, 4), (2, 2), (0, 0)),  # row 160
]
CASE_IDS = [f"x{'x'.join(map(str, c[0]))}-w{'x'.join(map(str, c[1]))}-s{c[2][0]}{c[2][1]}"
            f"-p{c[3][0]}{c[3][1]}" for c in CASES]


@pytest.fixture(params=list(PATHS))
def path(request, monkeypatch):
    """Which numba path runs: THIN_WINDOW patched for the test (restored afterwards)."""
    if PATHS[request.param] is not None:
        monkeypatch.setattr(numba_conv, "THIN_WINDOW", PATHS[request.param])
    return request.param


def _arrays(case, dtype, seed=0):
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y_shape = numpy_conv.conv2d(x, w, stride, padding).shape
    gy = rng.standard_normal(y_shape).astype(dtype)
    return x, w, gy


def _three_kernels(module, x, w, gy, stride, padding, x_shape=None):
    x_shape = x.shape if x_shape is None else x_shape
    return {
        "conv2d": module.conv2d(x, w, stride, padding),
        "grad_input": module.conv2d_grad_input(gy, w, x_shape, stride, padding),
        "grad_weight": module.conv2d_grad_weight(x, gy, w.shape, stride, padding),
    }


def _assert_close(got, expected, dtype, what):
    assert got.dtype == dtype, f"{what}: {got.dtype}"
    assert got.shape == expected.shape, f"{what}: {got.shape} != {expected.shape}"
    assert got.flags.c_contiguous, what
    rtol = RTOL[dtype]
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


# ---- the grid -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_numba_kernels_equal_numpy_conv_on_each_path(path, case, dtype):
    _, _, stride, padding = case
    x, w, gy = _arrays(case, dtype)
    originals = [a.copy() for a in (x, w, gy)]
    got = _three_kernels(numba_conv, x, w, gy, stride, padding)
    expected = _three_kernels(numpy_conv, x, w, gy, stride, padding)
    for kernel in got:
        _assert_close(got[kernel], expected[kernel], dtype, f"{path} {kernel}")
    for before, after in zip(originals, (x, w, gy)):
        np.testing.assert_array_equal(after, before)  # the inputs are only read


@pytest.mark.parametrize("path", ["channels_last", "thin"], indirect=True)
def test_thin_window_rule_picks_the_numpy_kernels_only_below_the_threshold(path, monkeypatch):
    case = CASES[1]
    x, w, gy = _arrays(case, np.float64)
    calls = []
    for name in ("conv2d", "conv2d_grad_input", "conv2d_grad_weight"):
        original = getattr(numpy_conv, name)
        monkeypatch.setattr(numpy_conv, name,
                            lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    _three_kernels(numba_conv, x, w, gy, case[2], case[3])
    assert calls == ([] if path == "channels_last"
                     else ["conv2d", "conv2d_grad_input", "conv2d_grad_weight"])


# ---- non-contiguous inputs ----------------------------------------------------------------------

def _non_contiguous_views(a, rng):
    """Views holding a's values without being C-contiguous: transposed, sliced, reversed."""
    transposed = np.ascontiguousarray(a.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
    axis = int(np.argmax(a.shape))  # slicing a longer axis every other element
    every_other = tuple(slice(None, None, 2) if k == axis else slice(None) for k in range(4))
    big = rng.standard_normal(tuple(2 * s if k == axis else s for k, s in enumerate(a.shape)))
    big = big.astype(a.dtype)
    big[every_other] = a
    sliced = big[every_other]
    reversed_ = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    views = {"transposed": transposed, "sliced": sliced, "reversed": reversed_,
             "fortran": np.asfortranarray(a)}
    for name, view in views.items():
        assert not view.flags.c_contiguous or a.size <= 1, name
        np.testing.assert_array_equal(view, a)
    return views


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[5]], ids=["3x3", "16in", "thin4x4"])
@pytest.mark.parametrize("path", ["channels_last", "thin"], indirect=True)
def test_non_contiguous_x_gy_w_give_the_same_bits_as_contiguous(path, case, dtype):
    _, _, stride, padding = case
    rng = np.random.default_rng(1)
    x, w, gy = _arrays(case, dtype)
    expected = _three_kernels(numba_conv, x, w, gy, stride, padding)
    for which in ("x", "w", "gy"):
        arrays = {"x": x, "w": w, "gy": gy}
        for view_name, view in _non_contiguous_views(arrays[which], rng).items():
            arrays[which] = view
            got = _three_kernels(numba_conv, arrays["x"], arrays["w"], arrays["gy"],
                                 stride, padding, x_shape=x.shape)
            for kernel in got:
                np.testing.assert_array_equal(
                    got[kernel], expected[kernel], err_msg=f"{which} {view_name} {kernel}")


# ---- the transposed convolution -----------------------------------------------------------------

# gy shape (the transposed convolution's input), w shape, stride, padding, output_padding
TRANSPOSED_CASES = [
    ((2, 6, 4, 5), (6, 5, 3, 3), (2, 2), (1, 1), (1, 1)),
    ((1, 8, 3, 4), (8, 16, 4, 4), (3, 2), (1, 0), (2, 1)),
    ((3, 4, 5, 3), (4, 3, 2, 3), (2, 1), (0, 1), (1, 0)),
    ((2, 9, 4, 4), (9, 1, 4, 4), (2, 2), (1, 1), (1, 0)),  # DCGAN's last layer, to 1 channel
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", TRANSPOSED_CASES, ids=["s22", "s32", "s21", "to1ch"])
def test_grad_input_with_output_padding_equals_numpy_conv(path, case, dtype):
    gy_shape, w_shape, stride, padding, output_padding = case
    rng = np.random.default_rng(2)
    gy = rng.standard_normal(gy_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    # the transposed convolution's output size, as in ConvTranspose2d
    h, wd = ((gy_shape[2 + a] - 1) * stride[a] - 2 * padding[a] + w_shape[2 + a]
             + output_padding[a] for a in (0, 1))
    x_shape = (gy_shape[0], w_shape[1], h, wd)
    assert numpy_conv.output_size(h, w_shape[2], stride[0], padding[0]) == gy_shape[2]
    assert numpy_conv.output_size(wd, w_shape[3], stride[1], padding[1]) == gy_shape[3]
    got = numba_conv.conv2d_grad_input(gy, w, x_shape, stride, padding)
    expected = numpy_conv.conv2d_grad_input(gy, w, x_shape, stride, padding)
    _assert_close(got, expected, dtype, f"{path} transposed")
    # and the weight gradient of a convolution of that larger input (its extra rows and columns
    # are read by no window)
    x = rng.standard_normal(x_shape).astype(dtype)
    _assert_close(numba_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding),
                  numpy_conv.conv2d_grad_weight(x, gy, w_shape, stride, padding), dtype,
                  f"{path} transposed weight")


# ---- outputs, workspace -------------------------------------------------------------------------

def _workspace_arrays():
    return list(getattr(numba_conv._workspace, "buffers", {}).values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("path", ["channels_last", "thin"], indirect=True)
def test_outputs_are_fresh_and_survive_the_next_call(path, dtype):
    case = CASES[2]
    _, _, stride, padding = case
    x1, w1, gy1 = _arrays(case, dtype, seed=1)
    x2, w2, gy2 = _arrays(case, dtype, seed=2)
    first = _three_kernels(numba_conv, x1, w1, gy1, stride, padding)
    kept = {k: v.copy() for k, v in first.items()}
    second = _three_kernels(numba_conv, x2, w2, gy2, stride, padding)
    workspace = _workspace_arrays()
    if path == "channels_last":
        assert workspace, "the channels-last path should have used its workspace"
    everything = list(first.values()) + list(second.values())
    for i, a in enumerate(everything):
        for buf in workspace:
            assert not np.shares_memory(a, buf), f"output {i} aliases the workspace"
        for b in (x1, w1, gy1, x2, w2, gy2):
            assert not np.shares_memory(a, b), f"output {i} aliases an input"
        for j, b in enumerate(everything[:i]):
            assert not np.shares_memory(a, b), f"outputs {j} and {i} alias each other"
    for kernel in first:
        np.testing.assert_array_equal(first[kernel], kept[kernel], err_msg=kernel)
    expected2 = _three_kernels(numpy_conv, x2, w2, gy2, stride, padding)
    for kernel in second:
        _assert_close(second[kernel], expected2[kernel], dtype, kernel)


@pytest.mark.parametrize("path", ["channels_last"], indirect=True)
def test_workspace_serves_bigger_then_smaller_then_bigger_layers(path):
    big, small = CASES[9], CASES[1]  # 3x9x13x10 then 3x5x9x7
    for case in (big, small, big, small):
        _, _, stride, padding = case
        x, w, gy = _arrays(case, np.float64)
        got = _three_kernels(numba_conv, x, w, gy, stride, padding)
        expected = _three_kernels(numpy_conv, x, w, gy, stride, padding)
        for kernel in got:
            _assert_close(got[kernel], expected[kernel], np.float64, kernel)


@pytest.mark.parametrize("path", ["channels_last"], indirect=True)
def test_clear_workspace_frees_the_buffers_and_the_next_call_still_works(path):
    case = CASES[1]
    _, _, stride, padding = case
    x, w, gy = _arrays(case, np.float32)
    first = _three_kernels(numba_conv, x, w, gy, stride, padding)
    kept = {k: v.copy() for k, v in first.items()}
    assert _workspace_arrays()
    numba_conv.clear_workspace()
    assert _workspace_arrays() == []
    numba_conv.clear_workspace()  # twice is fine
    again = _three_kernels(numba_conv, x, w, gy, stride, padding)
    for kernel in first:
        np.testing.assert_array_equal(first[kernel], kept[kernel])  # results outlive the buffers
        np.testing.assert_array_equal(again[kernel], kept[kernel])
    assert _workspace_arrays()


def test_clear_workspace_before_any_call_is_fine():
    numba_conv.clear_workspace()
    assert _workspace_arrays() == []


@pytest.mark.parametrize("path", ["channels_last", "thin"], indirect=True)
def test_kept_windows_give_the_same_forward_and_weight_gradient(path):
    case = CASES[1]
    _, _, stride, padding = case
    x, w, gy = _arrays(case, np.float64)
    y, cols = numba_conv.conv2d_keeping_windows(x, w, stride, padding)
    _assert_close(y, numpy_conv.conv2d(x, w, stride, padding), np.float64, "forward")
    if path == "thin":
        assert cols is None
        return
    kept = cols.copy()
    _three_kernels(numba_conv, *_arrays(case, np.float64, seed=5), stride, padding)
    for buf in _workspace_arrays():
        assert not np.shares_memory(cols, buf)
    np.testing.assert_array_equal(cols, kept)  # the caller's own, untouched by later calls
    _assert_close(numba_conv.conv2d_grad_weight_from_windows(cols, gy, w.shape),
                  numpy_conv.conv2d_grad_weight(x, gy, w.shape, stride, padding), np.float64,
                  "grad_weight_from_windows")


@pytest.mark.parametrize("path", ["channels_last", "thin"], indirect=True)
def test_mixed_float32_and_float64_inputs_give_numpys_result_dtype(path):
    x, w, gy = _arrays(CASES[1], np.float32)
    w = w.astype(np.float64)
    _, _, stride, padding = CASES[1]
    got = _three_kernels(numba_conv, x, w, gy, stride, padding)
    expected = _three_kernels(numpy_conv, x, w, gy, stride, padding)
    for kernel in got:
        _assert_close(got[kernel], expected[kernel], expected[kernel].dtype.type, kernel)


# ---- compilation --------------------------------------------------------------------------------

def test_importing_tinygen_compiles_no_numba_kernel(tmp_path):
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    code = textwrap.dedent("""
        import sys
        from numba.core.dispatcher import Dispatcher
        import tinygen
        import tinygen.kernels.numba_conv as k
        # every jitted function of every tinygen module now loaded (numba_conv and the fused
        # kernels it re-exports, whatever their module is called)
        found = {f"{name}.{attr}": obj.signatures
                 for name, module in list(sys.modules.items()) if name.startswith("tinygen")
                 for attr, obj in vars(module).items() if isinstance(obj, Dispatcher)}
        assert sum(name.startswith(k.__name__) for name in found) >= 4, found
        compiled = {name: sigs for name, sigs in found.items() if sigs != []}
        print("dispatchers", len(found))
        print("compiled", compiled)
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "compiled {}" in result.stdout, result.stdout
    assert list(cache.rglob("*.nbi")) == [], "import wrote numba cache files"


# ---- window matrices given back after the backward, reused by the next forward ---------------
def _conv_step(x_data, layer, retain_graph=False):
    """A forward and backward of an nn.Conv2d under the numba backend -> (x grad, weight grad)."""
    import tinygen as tg

    x = tg.tensor(x_data, requires_grad=True)
    with tg.backend.use("numba"):
        y = layer(x)
        (y * y).sum().backward(retain_graph=retain_graph)
    grads = (x.grad.data.copy(), layer.weight.grad.data.copy())
    layer.zero_grad()
    return grads


def test_a_backward_gives_the_window_matrix_back_and_the_next_forward_reuses_it(monkeypatch):
    from tinygen import nn

    monkeypatch.setattr(numba_conv, "_returned_windows", [])
    rng = np.random.default_rng(0)
    layer = nn.Conv2d(16, 6, 3, stride=2, padding=1)  # a window row of 144: numba's windows
    x = rng.standard_normal((2, 16, 9, 9)).astype(np.float32)
    first = _conv_step(x, layer)
    assert len(numba_conv._returned_windows) == 1  # given back once its gradient was computed
    returned = numba_conv._returned_windows[0]
    returned[...] = np.nan  # stale values must not leak into the next forward
    second = _conv_step(x, layer)
    assert len(numba_conv._returned_windows) == 1 and numba_conv._returned_windows[0] is returned
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    _conv_step(x, layer, retain_graph=True)  # the graph may run again: its windows stay with it
    assert numba_conv._returned_windows == []


def test_windows_are_given_back_only_up_to_the_limit_and_cleared_with_the_workspace(monkeypatch):
    monkeypatch.setattr(numba_conv, "_returned_windows", [])
    monkeypatch.setattr(numba_conv, "RETURNED_WINDOWS_LIMIT_BYTES", 1000)
    numba_conv.give_back_windows(np.empty(100, np.float32))  # 400 bytes
    numba_conv.give_back_windows(np.empty(100, np.float32))  # 800
    numba_conv.give_back_windows(np.empty(100, np.float32))  # would be 1200: dropped
    assert len(numba_conv._returned_windows) == 2
    taken = numba_conv._fresh_windows((10, 10), np.float32)  # another shape: a new array
    assert all(taken is not kept for kept in numba_conv._returned_windows)
    numba_conv.clear_workspace()
    assert numba_conv._returned_windows == []
