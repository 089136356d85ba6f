"""The same numbers on the GPU as on the CPU: a DCGAN's parameters after 5 training steps on
device tensors against the numba backend's on the host, from the same weights and data.

    python bench/device_same_numbers.py [--steps 5] [--batch 64] [--architecture classic]

For each way of running the convolutions on the GPU (im2col with cuBLAS, and the tiled
implicit-GEMM kernels) the models, optimizer state and data go to the GPU; after the steps every
parameter of G and D comes back to the host and is compared with the numba run's: the largest
|difference| over the parameter's largest |entry|, the worst over all parameters is printed.
The issue's bound is 1e-4 relative; the exit status is 1 when any method exceeds it, 2 when there
is no usable GPU. (Float32 sums in another order differ by ~1e-7 per step; Adam's steps of about
lr per weight, whatever the gradient's size, can turn a rounding difference of a near-zero
gradient into a difference of lr, so the bound is on the relative size, not on each entry.)
"""
import argparse
import sys

import numpy as np
from dcgan_step import DEVICE_CONV_METHODS, TinygenGAN, starting_point

import tinygen as tg
from tinygen import models

BOUND = 1e-4


def parameters(gan):
    """{name: host array} of G's and D's parameters."""
    found = {}
    for prefix, model in (("G", gan.G), ("D", gan.D)):
        for name, value in model.state_dict().items():
            found[f"{prefix}.{name}"] = value
    return found


def worst_relative_difference(got, expected):
    worst, where = 0.0, ""
    for name, value in expected.items():
        scale = max(float(np.abs(value).max()), 1e-12)
        difference = float(np.abs(got[name] - value).max()) / scale
        if difference > worst:
            worst, where = difference, name
    return worst, where


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--architecture", choices=models.gan.ARCHITECTURES, default="classic")
    args = parser.parse_args()
    if not tg.devices.is_available("cuda"):
        print(f"no usable GPU: {tg.devices.why_unavailable('cuda')}")
        return 2
    real, z, g_state, d_state = starting_point(args.batch, args.architecture)
    on_cpu = TinygenGAN(g_state, d_state, "numba", real, z, args.architecture)
    for _ in range(args.steps):
        on_cpu.step()
    expected = parameters(on_cpu)
    failed = False
    for method in DEVICE_CONV_METHODS:
        on_gpu = TinygenGAN(g_state, d_state, "numpy", real, z, args.architecture, "cuda", method)
        for _ in range(args.steps):
            on_gpu.step()
        worst, where = worst_relative_difference(parameters(on_gpu), expected)
        verdict = "ok" if worst <= BOUND else f"ABOVE the bound {BOUND:g}"
        failed |= worst > BOUND
        print(f"{args.architecture} DCGAN, batch {args.batch}, {args.steps} steps: gpu:{method} "
              f"vs numba on the CPU: largest relative difference {worst:.2e} ({where}): {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
