"""Where the numba backend's channels-last kernels start to beat NumPy's: a sweep over channels.

tinygen/kernels/numba_conv.py sends layers whose window row C*kH*kW is below THIN_WINDOW to the
NumPy kernels. This script measures the two paths on the DCGAN's first-layer geometry (28x28 ->
14x14, 4x4 kernel, stride 2, padding 1, 64 output channels, float32) for C = 1, 2, 4, 8, 16, 32:
the forward, the input gradient and the weight gradient, summed, in medians of interleaved blocks.
The channels-last path is forced by calling the module with THIN_WINDOW = 0.

    python bench/conv_thin.py [--batch 64] [--blocks 8] [--repeats 5]
TINYGEN_QUICK=1 runs batch 4 and C = 1, 4 with few repeats.
"""
import argparse
import os

import numpy as np
from machine import interleaved_medians, machine_report

from tinygen.kernels import numba_conv, numpy_conv

STRIDE, PADDING, OUT_CHANNELS = (2, 2), (1, 1), 64


def three_kernels(module, x, w, gy):
    module.conv2d(x, w, STRIDE, PADDING)
    module.conv2d_grad_input(gy, w, x.shape, STRIDE, PADDING)
    module.conv2d_grad_weight(x, gy, w.shape, STRIDE, PADDING)


def channels_last(x, w, gy):
    """numba_conv's own kernels, whatever the layer's width."""
    kept = numba_conv.THIN_WINDOW
    numba_conv.THIN_WINDOW = 0
    try:
        three_kernels(numba_conv, x, w, gy)
    finally:
        numba_conv.THIN_WINDOW = kept


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4 if quick else 64)
    parser.add_argument("--blocks", type=int, default=2 if quick else 8)
    parser.add_argument("--repeats", type=int, default=2 if quick else 5)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    channels = [1, 4] if quick else [1, 2, 4, 8, 16, 32]
    rng = np.random.default_rng(0)

    rows = []
    for c in channels:
        x = rng.standard_normal((args.batch, c, 28, 28)).astype(np.float32)
        w = rng.standard_normal((OUT_CHANNELS, c, 4, 4)).astype(np.float32)
        gy = rng.standard_normal((args.batch, OUT_CHANNELS, 14, 14)).astype(np.float32)
        calls = {"numpy": lambda: three_kernels(numpy_conv, x, w, gy),
                 "channels-last": lambda: channels_last(x, w, gy)}
        for call in calls.values():
            call()  # compile, allocate the workspace
        seconds = interleaved_medians(calls, args.blocks, args.repeats)
        rows.append((c, c * 16, seconds["numpy"] * 1e3, seconds["channels-last"] * 1e3))

    print(f"conv 28x28 -> 14x14, C -> {OUT_CHANNELS} channels, 4x4, stride 2, padding 1, batch "
          f"{args.batch}, float32: forward + grad_input + grad_weight, median of {args.blocks} "
          f"blocks x {args.repeats} calls")
    for line in machine_report(["numba"], load_start, compares_with_torch=False):
        print(line)
    print(f"  {'C':>3} {'C*kH*kW':>8} {'numpy ms':>10} {'channels-last ms':>17} {'ratio':>7}")
    for c, width, numpy_ms, numba_ms in rows:
        print(f"  {c:3d} {width:8d} {numpy_ms:10.2f} {numba_ms:17.2f} {numba_ms / numpy_ms:7.2f}")
    print(f"  numba_conv.THIN_WINDOW = {numba_conv.THIN_WINDOW}: "
          "narrower layers run NumPy's kernels")


if __name__ == "__main__":
    main()
