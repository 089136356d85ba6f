"""Peak memory of the DCGAN training step per backend, against torch, and how step time grows.

Each implementation runs in a fresh subprocess (memory peaks cannot be reset inside one): it
builds the models of bench/dcgan_step.py, takes a few steps, and reports its peak resident memory
(ru_maxrss) above what the process held just before the models were built, so that the Python,
NumPy, numba and torch libraries themselves are not counted (what is loaded later is: numba's
compiled kernels, BLAS and oneDNN buffers, thread stacks). The step times come from the same
processes (median of the steps after the first two); they are not interleaved, so read them as a
rough scale, and bench/dcgan_step.py for ratios.

    python bench/dcgan_memory.py [--batch 16 64 256] [--steps 6]
TINYGEN_QUICK=1 runs batch 8 with 3 steps.
"""
import argparse
import os
from pathlib import Path

from machine import json_from_subprocess, machine_report

import tinygen.kernels.numba_conv  # noqa: F401  (sets the threading layer the report prints)

try:
    import torch
except ImportError:
    torch = None

STEP_CODE = r"""
import json, resource, sys, time
sys.path.insert(0, BENCH)
from dcgan_step import starting_point, TinygenGAN, TorchGAN
real, z, g_state, d_state = starting_point(BATCH)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
if IMPL == "torch":
    gan = TorchGAN(g_state, d_state, real, z, "cpu")
else:
    gan = TinygenGAN(g_state, d_state, IMPL, real, z)
seconds = []
for _ in range(STEPS):
    start = time.perf_counter()
    gan.step()
    seconds.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
later = sorted(seconds[2:])
print(json.dumps({"peak_mb": (peak - before) / 1024, "step": later[len(later) // 2]}))
"""


def run(impl, batch, steps, bench):
    code = (STEP_CODE.replace("BENCH", repr(bench)).replace("BATCH", str(batch))
            .replace("STEPS", str(steps)).replace("IMPL", repr(impl)))
    return json_from_subprocess(code, f"{impl} at batch {batch}")


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[8] if quick else [16, 64, 256])
    parser.add_argument("--steps", type=int, default=3 if quick else 6)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    bench = str(Path(__file__).resolve().parent)
    impls = ["numpy", "numba"] + (["torch"] if torch is not None else [])

    results = {(impl, batch): run(impl, batch, max(args.steps, 3), bench)
               for batch in args.batch for impl in impls}

    print("DCGAN step (bench/dcgan_step.py), float32: peak resident memory above the process "
          "before the models were built, and the median step time, one fresh process each")
    for line in machine_report(["numba"], load_start, torch):
        print(line)
    header = "".join(f"{impl + ' MB':>12}{impl + ' s':>10}" for impl in impls)
    print(f"  {'batch':>6}{header}")
    for batch in args.batch:
        row = "".join(f"{results[impl, batch]['peak_mb']:12.0f}{results[impl, batch]['step']:10.4f}"
                      for impl in impls)
        print(f"  {batch:6d}{row}")
    for batch in args.batch:
        numba, base = results["numba", batch], results["numpy", batch]
        print(f"  batch {batch}: ratio numba / numpy: memory "
              f"{numba['peak_mb'] / base['peak_mb']:.2f}, step time "
              f"{numba['step'] / base['step']:.2f}")
    if torch is not None:
        for batch in args.batch:
            numba, base = results["numba", batch], results["torch", batch]
            print(f"  batch {batch}: ratio numba / torch: memory "
                  f"{numba['peak_mb'] / base['peak_mb']:.2f}, step time "
                  f"{numba['step'] / base['step']:.2f}")


if __name__ == "__main__":
    main()
