"""The same numbers on every CPU backend: a DCGAN's parameters after 5 training steps with the
numba backend against the numpy backend's, from the same weights and data, in float32 and in
float64.

    python bench/backends_same_numbers.py [--steps 5] [--batch 64] [--architecture classic]

Printed per dtype: |theta_numba - theta_numpy| / |theta_numpy| over all parameters as one vector
(as bench/device_same_numbers.py measures), and the same difference against how far the
parameters moved, |theta_numba - theta_numpy| / |theta_numpy - theta_start|. The two backends
add their sums in different orders. In float64 that leaves differences of about 1e-13; in float32
Adam amplifies them: it moves every weight by about lr whatever the size of its gradient, so a
gradient that rounding can flip in sign (a bias before batch norm has a gradient of exactly 0
in exact arithmetic) gives steps of lr in either direction, and those change the next steps'
gradients. The exit status is 1 when float64 differs by more than FLOAT64_BOUND.
TINYGEN_QUICK=1 runs batch 4.
"""
import argparse
import os
import sys

import numpy as np
from dcgan_step import BETAS, LR, TinygenGAN, starting_point
from device_same_numbers import parameters, relative_difference

import tinygen as tg
from tinygen import models

FLOAT64_BOUND = 1e-10


def trained(backend, dtype, steps, batch, architecture):
    """The parameters after `steps` steps on `backend` in `dtype` -> ({name: array}, start)."""
    real, z, g_state, d_state = starting_point(batch, architecture)
    gan = TinygenGAN(g_state, d_state, backend, real, z, architecture)
    if dtype == "float64":
        gan.G.double()
        gan.D.double()
        gan.opt_g = tg.optim.Adam(gan.G.parameters(), lr=LR, betas=BETAS)
        gan.opt_d = tg.optim.Adam(gan.D.parameters(), lr=LR, betas=BETAS)
        gan.real, gan.z, gan.ones, gan.zeros = (t.double() for t in
                                               (gan.real, gan.z, gan.ones, gan.zeros))
    start = parameters(gan)
    for _ in range(steps):
        gan.step()
    return parameters(gan), start


def moved_from(start, run):
    """{name: run's parameter - its starting value}, in float64."""
    return {name: value.astype(np.float64) - start[name] for name, value in run.items()}


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4 if quick else 64)
    parser.add_argument("--architecture", choices=models.gan.ARCHITECTURES, default="classic")
    args = parser.parse_args()
    failed = False
    for dtype in ("float32", "float64"):
        numba_run, start = trained("numba", dtype, args.steps, args.batch, args.architecture)
        numpy_run, _ = trained("numpy", dtype, args.steps, args.batch, args.architecture)
        difference = relative_difference(numba_run, numpy_run)
        # |theta_numba - theta_numpy| / |theta_numpy - theta_start|: the same measure, taken
        # on how far each run moved from the start (in float64, so that no rounding is added)
        of_moved = relative_difference(moved_from(start, numba_run), moved_from(start, numpy_run))
        verdict = ""
        if dtype == "float64":
            failed = difference > FLOAT64_BOUND
            verdict = f": {'ok' if not failed else 'ABOVE'} (bound {FLOAT64_BOUND:g})"
        print(f"{args.architecture} DCGAN, batch {args.batch}, {args.steps} steps, {dtype}: "
              f"numba vs numpy, relative difference of the parameters {difference:.2e} "
              f"({of_moved:.2e} of how far they moved){verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
