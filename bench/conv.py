"""Convolution kernels per backend: the four DCGAN MNIST layers, numpy vs numba (vs cuda) vs torch.

The layers (stride 2, padding 1, 4x4 kernels, float32):
    D1  Conv2d(1, 64)            x (B, 1, 28, 28)   -> (B, 64, 14, 14)
    D2  Conv2d(64, 128)          x (B, 64, 14, 14)  -> (B, 128, 7, 7)
    G1  ConvTranspose2d(128, 64) x (B, 128, 7, 7)   -> (B, 64, 14, 14)
    G2  ConvTranspose2d(64, 1)   x (B, 64, 14, 14)  -> (B, 1, 28, 28)
at batch 64 and 128. For each backend that runs here (numpy and numba; cuda only on a real GPU,
never numba's simulator) the kernel module's functions are called directly, no autograd: the
forward, the input gradient and the weight gradient, in milliseconds (median) and summed. For a
transposed convolution the roles swap (as in tinygen/ops/conv.py): its forward is
conv2d_grad_input(x, w), its input gradient conv2d(gy, w) and its weight gradient
conv2d_grad_weight(gy, x).

When torch is installed (it is not a tinygen dependency) its kernels are the baseline:
F.conv2d / F.conv_transpose2d forward, and for the gradients torch.ops.aten.convolution_backward,
the call torch.autograd makes for both layer kinds (torch.nn.grad.conv2d_input / conv2d_weight
call it too), one output at a time so that each gradient is timed alone. --torch-device chooses
where they run: cpu (the default) or cuda, cuDNN on the GPU. With cuda the inputs are copied to
the GPU once, before any timing, every timed call ends with torch.cuda.synchronize() (GPU work is
queued asynchronously: without the wait only the launch would be timed), the results come back
with .cpu() for the checks only, and TF32 is switched off (cuDNN would otherwise use it for float32
convolutions on Ampere and later, about 1e-3 relative error: not the float32 that the other
implementations compute, and outside the checks' tolerance). The tinygen cuda backend is timed as
it is: it copies its numpy inputs to the GPU and the result back on every call. The device of the
torch baseline is printed; --torch-device cuda without a CUDA GPU for torch is an error (exit 2).

Before any timing: every layer's three kernels are checked against one another through the adjoint
identity <fwd(x, w), gy> = <x, grad_input(gy, w)> = <w, grad_weight(x, gy)> (numpy backend,
float64, batch 2), then every backend's results against numpy's and torch's against numpy's
(float32: rtol 1e-4, atol 1e-4 times the largest |entry| when that exceeds 1), and torch's
convolution_backward against torch.autograd.grad.

Timings alternate between the implementations in blocks of calls in one run (the machine is
noisy; see bench/engine_overhead.py for why blocks rather than call by call); ratios of medians
are printed per kernel and for the sum of the three.

Cold start: numba compiles its kernels on first use and, with cache=True, writes the machine code
to disk for the next process. Two fresh subprocesses in a row, both with NUMBA_CACHE_DIR set to a
new empty temporary directory, each time the first and second numba conv2d + both gradients on a
small shape wide enough for the channels-last kernels (16 channels: C*kH*kW = 256): the first
process compiles and writes the cache, the second should load it.

Thread pools: numba's parallel kernels and the BLAS products between them (OpenBLAS, whose
threads busy-wait after a call) share the cores. Where numba picks its 'omp' threading layer, the
two can take turns at scheduler-tick granularity (milliseconds per call on a 2-core machine);
NUMBA_THREADING_LAYER=workqueue or OPENBLAS_NUM_THREADS=1 shows the kernels without that. The
threading layer and any such setting in the environment are printed.

TINYGEN_QUICK=1 runs batch 8 with few repeats (all checks still run, the cold start too).

    python bench/conv.py [--blocks 10] [--repeats 5] [--batch 64 128] [--no-cold-start]
                         [--torch-device {cpu,cuda}] [--device {cpu,cuda}]

--device cuda adds the cuda backend's kernels on device arrays (CuPy's, copied there once), one
column per method: "gpu:im2col" (numpy_conv's code on CuPy arrays, the products in cuBLAS) and
"gpu:implicit_gemm" (the tiled numba.cuda kernels); each timed call ends with a synchronize.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import machine_report, prepare_torch_device, torch_device_report

import tinygen as tg
from tinygen import kernels as tg_kernels

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

STRIDE, PADDING = (2, 2), (1, 1)
KERNEL = 4
# name, transposed?, in channels, out channels, input size (square)
LAYERS = [
    ("D1 Conv2d(1, 64, 4, 2, 1)", False, 1, 64, 28),
    ("D2 Conv2d(64, 128, 4, 2, 1)", False, 64, 128, 14),
    ("G1 ConvTranspose2d(128, 64, 4, 2, 1)", True, 128, 64, 7),
    ("G2 ConvTranspose2d(64, 1, 4, 2, 1)", True, 64, 1, 14),
]
KERNEL_NAMES = ["forward", "grad_input", "grad_weight"]


# What the device line says of the torch baseline when it runs on a GPU.
HOW_TIMED_ON_GPU = ("inputs on the GPU before timing, torch.cuda.synchronize() after every "
                    "timed call")


def backends():
    """The tinygen backends to time: every available one except cuda in numba's simulator."""
    return tg.backend.available(simulated=False)


def layer_shapes(transposed, c_in, c_out, size, batch):
    """x shape, w shape, y shape of one layer."""
    if transposed:
        out = (size - 1) * STRIDE[0] - 2 * PADDING[0] + KERNEL
        return (batch, c_in, size, size), (c_in, c_out, KERNEL, KERNEL), (batch, c_out, out, out)
    out = (size + 2 * PADDING[0] - KERNEL) // STRIDE[0] + 1
    return (batch, c_in, size, size), (c_out, c_in, KERNEL, KERNEL), (batch, c_out, out, out)


def kernel_calls(k, transposed, x, w, gy):
    """{kernel name: call with no arguments} for kernel module k on one layer."""
    if transposed:  # y = conv2d_grad_input(x, w): the gradient of a conv from y's shape to x's
        return {
            "forward": lambda: k.conv2d_grad_input(x, w, gy.shape, STRIDE, PADDING),
            "grad_input": lambda: k.conv2d(gy, w, STRIDE, PADDING),
            "grad_weight": lambda: k.conv2d_grad_weight(gy, x, w.shape, STRIDE, PADDING),
        }
    return {
        "forward": lambda: k.conv2d(x, w, STRIDE, PADDING),
        "grad_input": lambda: k.conv2d_grad_input(gy, w, x.shape, STRIDE, PADDING),
        "grad_weight": lambda: k.conv2d_grad_weight(x, gy, w.shape, STRIDE, PADDING),
    }


def synchronized(call):
    """call, then wait for the GPU: CUDA kernels run asynchronously, after their launch returns."""
    def call_and_wait():
        result = call()
        torch.cuda.synchronize()
        return result
    return call_and_wait


# --device cuda: the cuda kernels on arrays that live on the GPU (CuPy's), once per method
DEVICE_CONV_METHODS = ("im2col", "implicit_gemm")


def device_calls(transposed, x, w, gy, method):
    """The cuda backend's three kernels on device arrays, run by `method`; the inputs are copied
    to the GPU here, once, and every call waits for the GPU before it returns."""
    k = tg_kernels.load("cuda")
    on_gpu = [tg.devices.to_device(a, "cuda") for a in (x, w, gy)]
    calls = kernel_calls(k, transposed, *on_gpu)

    def run(call):
        def call_and_wait():
            k.use_conv_method(method)
            result = call()
            tg.devices.synchronize("cuda")
            return result
        return call_and_wait

    return {what: run(call) for what, call in calls.items()}


def torch_calls(transposed, x, w, gy, device):
    """The same three results from torch's kernels on device (what autograd runs for the layer).

    The inputs are copied to the device here, once, so that no timed call includes the copy."""
    t_x, t_w, t_gy = (torch.from_numpy(a).to(device) for a in (x, w, gy))
    forward = F.conv_transpose2d if transposed else F.conv2d

    def backward(mask):
        return torch.ops.aten.convolution_backward(
            t_gy, t_x, t_w, None, list(STRIDE), list(PADDING), [1, 1], transposed, [0, 0], 1,
            mask)

    calls = {
        "forward": lambda: forward(t_x, t_w, stride=STRIDE, padding=PADDING),
        "grad_input": lambda: backward([True, False, False])[0],
        "grad_weight": lambda: backward([False, True, False])[1],
    }
    if device == "cuda":
        calls = {what: synchronized(call) for what, call in calls.items()}
    return calls


def torch_autograd(transposed, x, w, gy, device):
    """dL/dx, dL/dw through torch.autograd.grad on device, to check the convolution_backward
    calls; returned on the CPU."""
    t_x = torch.from_numpy(x).to(device).requires_grad_(True)
    t_w = torch.from_numpy(w).to(device).requires_grad_(True)
    forward = F.conv_transpose2d if transposed else F.conv2d
    y = forward(t_x, t_w, stride=STRIDE, padding=PADDING)
    grads = torch.autograd.grad(y, (t_x, t_w), torch.from_numpy(gy).to(device))
    return [grad.cpu() for grad in grads]


def assert_close(actual, desired, what):
    """float32 agreement: rtol 1e-4, atol 1e-4 relative to the largest entry of desired."""
    actual = np.asarray(actual)
    assert actual.shape == desired.shape, (what, actual.shape, desired.shape)
    scale = max(float(np.abs(desired).max()), 1.0)
    np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


def check_adjoint():
    """<fwd(x, w), gy> = <x, grad_input(gy, w)> = <w, grad_weight(x, gy)> per layer, float64.

    Checks the role swap of the transposed layers with no reference implementation."""
    rng = np.random.default_rng(1)
    k = tg_kernels.load("numpy")
    for name, transposed, c_in, c_out, size in LAYERS:
        x_shape, w_shape, y_shape = layer_shapes(transposed, c_in, c_out, size, 2)
        x, w, gy = (rng.standard_normal(s) for s in (x_shape, w_shape, y_shape))
        out = {what: call() for what, call in kernel_calls(k, transposed, x, w, gy).items()}
        assert out["forward"].shape == y_shape, (name, out["forward"].shape)
        products = [np.vdot(out["forward"], gy), np.vdot(x, out["grad_input"]),
                    np.vdot(w, out["grad_weight"])]
        np.testing.assert_allclose(products[1:], [products[0]] * 2, rtol=1e-10,
                                   err_msg=f"adjoint identity, {name}")


def make_data(rng, transposed, c_in, c_out, size, batch):
    x_shape, w_shape, y_shape = layer_shapes(transposed, c_in, c_out, size, batch)
    fan_in = (c_out if transposed else c_in) * KERNEL * KERNEL
    bound = 1 / np.sqrt(fan_in)  # PyTorch's default init scale
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.uniform(-bound, bound, w_shape).astype(np.float32)
    gy = rng.standard_normal(y_shape).astype(np.float32)
    return x, w, gy


def bench_layer(layer, batch, names, args, rng):
    """Check, then time one layer at one batch size; returns the implementations timed and
    {(implementation, kernel): median ms}."""
    label, transposed, c_in, c_out, size = layer
    x, w, gy = make_data(rng, transposed, c_in, c_out, size, batch)
    calls = {}
    for name in names:
        for what, call in kernel_calls(tg_kernels.load(name), transposed, x, w, gy).items():
            calls[name, what] = call
    gpu_names = []
    if args.device == "cuda":
        for method in DEVICE_CONV_METHODS:
            gpu_names.append(f"gpu:{method}")
            for what, call in device_calls(transposed, x, w, gy, method).items():
                calls[gpu_names[-1], what] = call
    if torch is not None:
        for what, call in torch_calls(transposed, x, w, gy, args.torch_device).items():
            calls["torch", what] = call

    # Same numbers first: the timings mean nothing otherwise.
    reference = {what: calls["numpy", what]() for what in KERNEL_NAMES}
    for name in names + gpu_names:
        if name == "numpy":
            continue
        for what in KERNEL_NAMES:
            result = tg.devices.to_host(calls[name, what]())  # a copy back, for the check only
            assert result.dtype == np.float32, (name, what, result.dtype)
            assert_close(result, reference[what],
                         f"{label}, batch {batch}: {name} vs numpy, {what}")
    if torch is not None:
        for what in KERNEL_NAMES:
            assert_close(calls["torch", what]().cpu().numpy(), reference[what],
                         f"{label}, batch {batch}: torch vs numpy, {what}")
        autograd = torch_autograd(transposed, x, w, gy, args.torch_device)
        for what, auto in zip(KERNEL_NAMES[1:], autograd):
            assert_close(auto.numpy(), reference[what], f"{label}: torch autograd, {what}")

    impls = list(names) + gpu_names + (["torch"] if torch is not None else [])
    times = {key: [] for key in calls}
    for _ in range(args.blocks):
        for impl in impls:
            for what in KERNEL_NAMES:
                call = calls[impl, what]
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    call()
                    times[impl, what].append(time.perf_counter() - start)
    ms = {key: float(np.median(t)) * 1e3 for key, t in times.items()}
    for impl in impls:
        ms[impl, "sum of three"] = sum(ms[impl, what] for what in KERNEL_NAMES)
    return impls, ms


def print_table(label, batch, x_shape, y_shape, impls, ms):
    fast = [name for name in impls if name not in ("numpy", "torch")]
    ratios = [(name, "numpy") for name in fast]
    if "torch" in impls:
        ratios += [(name, "torch") for name in fast]
    print(f"{label}, batch {batch}: x {x_shape} -> y {y_shape}")
    header = f"  {'':14}" + "".join(f"{impl + ' ms':>12}" for impl in impls)
    header += "".join(f"{a + '/' + b:>14}" for a, b in ratios)
    print(header)
    for row in KERNEL_NAMES + ["sum of three"]:
        line = f"  {row:14}" + "".join(f"{ms[impl, row]:12.2f}" for impl in impls)
        line += "".join(f"{ms[a, row] / ms[b, row]:14.2f}" for a, b in ratios)
        print(line)


COLD_START_CODE = r"""
import json, time
start = time.perf_counter()
import numpy as np
import tinygen
from tinygen.kernels import numba_conv as k
imported = time.perf_counter() - start
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 16, 8, 8)).astype(np.float32)
w = rng.standard_normal((4, 16, 4, 4)).astype(np.float32)
s, p = (2, 2), (1, 1)
def call():
    y = k.conv2d(x, w, s, p)
    k.conv2d_grad_input(y, w, x.shape, s, p)
    k.conv2d_grad_weight(x, y, w.shape, s, p)
seconds = []
for _ in range(2):
    start = time.perf_counter()
    call()
    seconds.append(time.perf_counter() - start)
print(json.dumps({"import": imported, "first": seconds[0], "second": seconds[1]}))
"""


def cold_start():
    """Two fresh processes sharing a new, empty NUMBA_CACHE_DIR: their seconds to import and for
    the first and second call, and the number of cache files the first one wrote."""
    repo = str(Path(tg.__file__).resolve().parent.parent)  # the same tinygen as this process
    results = []
    with tempfile.TemporaryDirectory(prefix="tinygen-numba-cache-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
        for process in range(2):
            done = subprocess.run([sys.executable, "-c", COLD_START_CODE], env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            if process == 0:
                written = sum(1 for p in Path(cache_dir).rglob("*") if p.suffix in (".nbi", ".nbc"))
    return results, written


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2 if quick else 10)
    parser.add_argument("--repeats", "--block-size", type=int, default=2 if quick else 5,
                        help="calls per block")
    parser.add_argument("--batch", type=int, nargs="+", default=[8] if quick else [64, 128])
    parser.add_argument("--no-cold-start", action="store_true", help="skip the subprocess timing")
    parser.add_argument("--torch-device", choices=["cpu", "cuda"], default="cpu",
                        help="where the torch baseline runs (cuda: cuDNN on the GPU)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: also time the cuda kernels on arrays that live on the GPU, "
                             f"per method ({', '.join(DEVICE_CONV_METHODS)})")
    args = parser.parse_args()
    prepare_torch_device(parser, args.torch_device, torch)
    if args.device == "cuda" and not tg.devices.is_available("cuda"):
        parser.error(f"--device cuda: {tg.devices.why_unavailable('cuda')}")
    load_start = os.getloadavg()[0]

    names = backends()
    assert names[-1] == "numpy", names
    names = ["numpy"] + names[:-1][::-1]  # numpy first: the reference (then numba, then cuda)
    check_adjoint()

    rng = np.random.default_rng(0)
    tables = []
    for batch in args.batch:
        for layer in LAYERS:
            impls, ms = bench_layer(layer, batch, names, args, rng)
            x_shape, _, y_shape = layer_shapes(*layer[1:], batch)
            tables.append((layer[0], batch, x_shape, y_shape, impls, ms))

    checks = "adjoint identity per layer (float64) ok"
    if len(names) > 1:
        checks += f", {' and '.join(names[1:])} == numpy (float32) ok"
    if torch is not None:
        checks += (f", torch ({args.torch_device}) == numpy ok, torch convolution_backward == "
                   "autograd ok")
    print(f"Convolution kernels of the DCGAN MNIST layers, float32, stride 2, padding 1, 4x4; "
          f"median of {args.blocks} blocks x {args.repeats} calls")
    print(f"backends timed: {', '.join(names)} (available: {', '.join(tg.backend.available())}"
          + ("; cuda is numba's simulator: not timed)" if tg_kernels.is_simulated() else ")"))
    for line in machine_report(names, load_start, torch):
        print(line)
    if torch is not None:
        print(torch_device_report(args.torch_device, torch, HOW_TIMED_ON_GPU))
    print(f"checks: {checks}")
    for table in tables:
        print_table(*table)

    if "numba" in names and not args.no_cold_start:
        (first, second), written = cold_start()
        print("numba cold start (cache=True, NUMBA_CACHE_DIR = a fresh temporary directory), "
              "conv2d + both gradients on x (2, 16, 8, 8), w (4, 16, 4, 4):")
        for label, run in ((f"process 1 (compiles, writes {written} cache files):", first),
                           ("process 2 (loads the cache):", second)):
            print(f"  {label:44} import {run['import']:.2f} s, first call {run['first']:.2f} s, "
                  f"second call {run['second'] * 1e3:.2f} ms")
        print(f"  ratio first call process 2 / process 1 = {second['first'] / first['first']:.3f}")


if __name__ == "__main__":
    main()
