"""Where the time of one DCGAN training step goes: a cProfile of bench/dcgan_step.py's step.

The step is bench/dcgan_step.py's (D on real + fake, then G; Adam; float32), on one tinygen
backend (--backend, numba by default), after a warm-up (compilation, workspaces). Printed: the
functions with the most time of their own (tottime), in ms per step, and the same for cumulative
time (cumtime), so that both the leaves (kernels, NumPy calls) and the ops above them show.
cProfile adds a little time to every Python call, so the step's total here is above its timed
value; read the shares, and time changes with bench/dcgan_step.py.

    python bench/profile_step.py [--batch 64] [--architecture classic] [--steps 10]
                                 [--backend numba] [--top 25]
TINYGEN_QUICK=1 runs batch 8 for 2 steps.
"""
import argparse
import cProfile
import os
import pstats
import time

from dcgan_step import TinygenGAN, starting_point

from tinygen import models


def profile_steps(gan, steps):
    """Run `steps` steps under cProfile -> (pstats.Stats, wall seconds per step)."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(steps):
        gan.step()
    profiler.disable()
    return pstats.Stats(profiler), (time.perf_counter() - start) / steps


def rows(stats, key, steps, top):
    """The `top` functions by `key` ("tottime" or "cumtime") as (ms per step, calls, name)."""
    entries = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():
        seconds = tottime if key == "tottime" else cumtime
        where = f"{os.path.basename(filename)}:{line}" if line else "~"
        entries.append((1000 * seconds / steps, calls // steps, f"{where}({name})"))
    entries.sort(reverse=True)
    return entries[:top]


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8 if quick else 64)
    parser.add_argument("--architecture", choices=models.gan.ARCHITECTURES, default="classic")
    parser.add_argument("--steps", type=int, default=2 if quick else 10)
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    real, z, g_state, d_state = starting_point(args.batch, args.architecture)
    gan = TinygenGAN(g_state, d_state, args.backend, real, z, args.architecture)
    for _ in range(3):  # warm-up: compilation, workspaces
        gan.step()
    stats, seconds = profile_steps(gan, args.steps)
    print(f"{args.architecture} DCGAN step, batch {args.batch}, backend {args.backend}, "
          f"{args.steps} steps profiled: {1000 * seconds:.1f} ms per step under cProfile")
    for key in ("tottime", "cumtime"):
        print(f"\nby {key} (ms per step, calls per step, function):")
        for ms, calls, name in rows(stats, key, args.steps, args.top):
            print(f"{ms:9.2f} {calls:7d}  {name}")


if __name__ == "__main__":
    main()
