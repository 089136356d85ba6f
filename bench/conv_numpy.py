"""How fast are the NumPy convolution kernels? The DCGAN discriminator layer, tinygen vs torch.

The layer: x (128, 64, 14, 14) float32, w (128, 64, 4, 4), stride 2, padding 1 -> y (128, 128,
7, 7). Timed per kernel (tinygen/kernels/numpy_conv.py): the forward conv2d, the input gradient
conv2d_grad_input and the weight gradient conv2d_grad_weight, each in milliseconds (median). Then
the same layer through autograd (tinygen.ops.conv2d forward, y.backward(gy)), to show what the
graph costs over the raw kernels.

When torch is installed (it is not a tinygen dependency) its CPU kernels are the baseline:
F.conv2d, torch.nn.grad.conv2d_input and conv2d_weight, and the autograd step through
torch.autograd.grad. Before any timing, tinygen's three results are checked against torch's
(float32, rtol 1e-4, atol 1e-4 times the largest |entry| when that exceeds 1: a weight-gradient
entry sums 6272 products and its rounding error grows with it), and always against each other
through the adjoint identity
    <conv2d(x, w), gy> = <x, grad_input(gy, w)> = <w, grad_weight(x, gy)>
in float64 on small shapes.

Timings alternate between the implementations in blocks of calls in one run (the machine is
noisy; see bench/engine_overhead.py for why blocks rather than call by call) and the ratio
tinygen / torch of the medians is printed per kernel and for the sum of the three.
TINYGEN_QUICK=1 runs batch 8 with few repeats (a few seconds).

    python bench/conv_numpy.py [--blocks 10] [--repeats 5] [--batch 128]
"""
import argparse
import os
import time

import numpy as np

import tinygen as tg
from tinygen.kernels import numpy_conv as kernels
from tinygen.ops import conv2d as tg_conv2d

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

C_IN, C_OUT, SIZE, KERNEL = 64, 128, 14, 4
STRIDE, PADDING = (2, 2), (1, 1)
KERNEL_NAMES = ["forward", "grad_input", "grad_weight"]


def check_adjoint():
    """<conv(x, w), gy> = <x, grad_input(gy, w)> = <w, grad_weight(x, gy)>, float64, small shapes.

    The three kernels are each other's adjoints; this checks them against one another with no
    reference implementation. Odd sizes leave input pixels no window reads (their gradient is 0).
    """
    rng = np.random.default_rng(1)
    cases = [  # x shape, w shape, stride, padding
        ((2, 3, 9, 9), (5, 3, 4, 4), STRIDE, PADDING),  # the DCGAN layer, shrunk
        ((3, 2, 7, 6), (4, 2, 3, 2), (2, 1), (1, 0)),
        ((1, 4, 5, 8), (2, 4, 1, 3), (1, 3), (0, 2)),
    ]
    for x_shape, w_shape, stride, padding in cases:
        x = rng.standard_normal(x_shape)
        w = rng.standard_normal(w_shape)
        y = kernels.conv2d(x, w, stride, padding)
        gy = rng.standard_normal(y.shape)
        gx = kernels.conv2d_grad_input(gy, w, x_shape, stride, padding)
        gw = kernels.conv2d_grad_weight(x, gy, w_shape, stride, padding)
        assert gx.shape == x_shape and gw.shape == w_shape, (gx.shape, gw.shape)
        products = [np.vdot(y, gy), np.vdot(x, gx), np.vdot(w, gw)]
        np.testing.assert_allclose(products[1:], [products[0]] * 2, rtol=1e-12,
                                   err_msg=f"adjoint identity, x {x_shape} w {w_shape}")


def assert_close(actual, desired, what):
    """float32 agreement: rtol 1e-4, atol 1e-4 relative to the largest entry of desired."""
    scale = max(float(np.abs(desired).max()), 1.0)
    np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


def tinygen_autograd_step(x, w, gy):
    """Forward and backward through the ops: returns dL/dx, dL/dw for dL/dy = gy."""
    x.grad = w.grad = None
    y = tg_conv2d(x, w, stride=STRIDE, padding=PADDING)
    y.backward(gy)
    return x.grad.data, w.grad.data


def torch_autograd_step(x, w, gy):
    y = F.conv2d(x, w, stride=STRIDE, padding=PADDING)
    return torch.autograd.grad(y, (x, w), gy)


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=3 if quick else 10)
    parser.add_argument("--repeats", "--block-size", type=int, default=2 if quick else 5,
                        help="calls per block")
    parser.add_argument("--batch", type=int, default=8 if quick else 128)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_shape = (args.batch, C_IN, SIZE, SIZE)
    w_shape = (C_OUT, C_IN, KERNEL, KERNEL)
    bound = 1 / np.sqrt(C_IN * KERNEL * KERNEL)  # PyTorch's default init scale
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.uniform(-bound, bound, w_shape).astype(np.float32)
    y = kernels.conv2d(x, w, STRIDE, PADDING)
    gy = rng.standard_normal(y.shape).astype(np.float32)

    calls = {  # (implementation, what) -> a call with no arguments
        ("tinygen", "forward"): lambda: kernels.conv2d(x, w, STRIDE, PADDING),
        ("tinygen", "grad_input"): lambda: kernels.conv2d_grad_input(gy, w, x_shape, STRIDE,
                                                                     PADDING),
        ("tinygen", "grad_weight"): lambda: kernels.conv2d_grad_weight(x, gy, w_shape, STRIDE,
                                                                       PADDING),
    }
    tg_x = tg.tensor(x, requires_grad=True)
    tg_w = tg.tensor(w, requires_grad=True)
    tg_gy = tg.tensor(gy)
    calls["tinygen", "autograd"] = lambda: tinygen_autograd_step(tg_x, tg_w, tg_gy)

    # Same numbers first: the timings mean nothing otherwise.
    check_adjoint()
    results = {what: calls["tinygen", what]() for what in KERNEL_NAMES}
    assert results["forward"].shape == y.shape and results["forward"].dtype == np.float32
    auto_gx, auto_gw = calls["tinygen", "autograd"]()
    # The op may take another route to the same gradient (the weight gradient from the kept
    # window matrix), which sums in another order: float32 rounding, relative to the largest
    # entry (an absolute 1e-6 is below float32's resolution for entries of ~40; it failed on an
    # AMD EPYC's BLAS by 4e-5).
    for got, expected in ((auto_gx, results["grad_input"]), (auto_gw, results["grad_weight"])):
        scale = max(float(np.abs(expected).max()), 1.0)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)
    checks = "adjoint identity (float64) ok, autograd == kernels ok"

    if torch is not None:
        t_x, t_w, t_gy = (torch.from_numpy(a) for a in (x, w, gy))
        t_xg = t_x.clone().requires_grad_(True)
        t_wg = t_w.clone().requires_grad_(True)
        calls.update({
            ("torch", "forward"): lambda: F.conv2d(t_x, t_w, stride=STRIDE, padding=PADDING),
            ("torch", "grad_input"): lambda: torch.nn.grad.conv2d_input(
                x_shape, t_w, t_gy, stride=STRIDE, padding=PADDING),
            ("torch", "grad_weight"): lambda: torch.nn.grad.conv2d_weight(
                t_x, w_shape, t_gy, stride=STRIDE, padding=PADDING),
            ("torch", "autograd"): lambda: torch_autograd_step(t_xg, t_wg, t_gy),
        })
        for what in KERNEL_NAMES:
            assert_close(results[what], calls["torch", what]().numpy(), f"tinygen vs torch: {what}")
        for g_torch, g_tg in zip(calls["torch", "autograd"](), (auto_gx, auto_gw)):
            assert_close(g_tg, g_torch.numpy(), "tinygen vs torch: autograd")
        checks += ", tinygen == torch (float32) ok"

    # Kernel by kernel, tinygen then torch, each in a block of back-to-back calls.
    order = sorted(calls, key=lambda key: (KERNEL_NAMES + ["autograd"]).index(key[1]))
    times = {key: [] for key in calls}
    for _ in range(args.blocks):
        for key in order:
            call = calls[key]
            for _ in range(args.repeats):
                start = time.perf_counter()
                call()
                times[key].append(time.perf_counter() - start)
    ms = {key: float(np.median(t)) * 1e3 for key, t in times.items()}
    impls = ["tinygen"] + (["torch"] if torch is not None else [])
    for impl in impls:
        ms[impl, "sum of three"] = sum(ms[impl, what] for what in KERNEL_NAMES)

    oh = kernels.output_size(SIZE, KERNEL, STRIDE[0], PADDING[0])
    print(f"DCGAN discriminator conv, float32: x {x_shape} * w {w_shape}, "
          f"stride {STRIDE[0]}, padding {PADDING[0]}")
    print(f"  -> y {(args.batch, C_OUT, oh, oh)}; median of {args.blocks} blocks x "
          f"{args.repeats} calls")
    print(f"CPU count {os.cpu_count()}; "
          + (f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}"
             if torch is not None else "torch not installed: no baseline"))
    print(f"checks: {checks}")
    rows = KERNEL_NAMES + ["sum of three", "autograd"]
    labels = {"autograd": "autograd fwd+bwd"}
    if torch is not None:
        print(f"  {'':18}{'tinygen ms':>12}{'torch ms':>12}{'ratio tinygen/torch':>22}")
        for row in rows:
            print(f"  {labels.get(row, row):18}{ms['tinygen', row]:12.2f}{ms['torch', row]:12.2f}"
                  f"{ms['tinygen', row] / ms['torch', row]:22.2f}")
    else:
        print(f"  {'':18}{'tinygen ms':>12}")
        for row in rows:
            print(f"  {labels.get(row, row):18}{ms['tinygen', row]:12.2f}")
    for impl in impls:
        ratio = ms[impl, "autograd"] / ms[impl, "sum of three"]
        print(f"  {impl} autograd overhead: ratio autograd / sum of three kernels = {ratio:.3f}")


if __name__ == "__main__":
    main()
