"""The same numbers on the GPU as on the CPU: a DCGAN's parameters after 5 training steps on
device tensors against the numba backend's on the host, from the same weights and data.

    python bench/device_same_numbers.py [--steps 5] [--batch 64] [--architecture classic]

For each way of running the convolutions on the GPU (im2col with cuBLAS, and the tiled
implicit-GEMM kernels) the models, optimizer state and data go to the GPU; after the steps every
parameter of G and D comes back to the host and is compared with the numba run's, as one vector:
|theta_gpu - theta_cpu| / |theta_cpu| (Euclidean norms over all parameters). The issue's bound,
1e-4 relative, applies to that; the exit status is 1 when a method exceeds it, 2 when there is
no usable GPU.

Why not entry by entry: a convolution's bias followed by batch norm has a gradient of exactly 0
in exact arithmetic (the norm subtracts the channel mean), so in float32 it is rounding noise, and
Adam, which moves every weight by about lr whatever its gradient's size, turns the noise's sign
into steps of lr. Two correct runs whose sums are added in another order (numba's kernels against
the numpy backend's, on the CPU) then differ by 3e-2 of such a bias's size after 5 steps, while
the whole parameter vector differs by 4e-5 (batch 8, classic network). The worst tensor is printed
too, for information.
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
        for name, value in model.named_parameters():
            found[f"{prefix}.{name}"] = value.cpu().numpy().copy()
    return found


def relative_difference(got, expected):
    """|got - expected| / |expected|, all parameters as one vector."""
    squares = sum(float(np.sum((got[name] - value).astype(np.float64) ** 2))
                  for name, value in expected.items())
    norm = sum(float(np.sum(value.astype(np.float64) ** 2)) for value in expected.values())
    return (squares / norm) ** 0.5


def worst_tensor(got, expected):
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
        got = parameters(on_gpu)
        difference = relative_difference(got, expected)
        worst, where = worst_tensor(got, expected)
        verdict = "ok" if difference <= BOUND else f"ABOVE the bound {BOUND:g}"
        failed |= difference > BOUND
        print(f"{args.architecture} DCGAN, batch {args.batch}, {args.steps} steps: gpu:{method} "
              f"vs numba on the CPU: relative difference of the parameters {difference:.2e}: "
              f"{verdict} (worst tensor {where}: {worst:.1e} of its largest entry)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
