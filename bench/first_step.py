"""What numba's compilation costs a user: import, first DCGAN step and later steps, cold and cached.

The numba backend compiles its kernels on first use and, with cache=True, writes the machine code to
disk, so that the next process loads it. This script runs the DCGAN training step of
bench/dcgan_step.py (batch 64, float32) in fresh subprocesses that share one new, empty
NUMBA_CACHE_DIR:
    process 1   compiles every kernel it calls and writes the cache (what a user's first run pays)
    process 2   loads the cache (every later run)
and, for comparison, one process with the numpy backend (nothing to compile). Each prints the
seconds of `import tinygen`, whether any numba function was compiled by the import (none should
be), the first step, and the median of the next steps. The target: in the cached process the first
step costs at most 1 s more than the later ones.

    python bench/first_step.py [--steps 5] [--batch 64]
TINYGEN_QUICK=1 runs batch 8 and 2 later steps.
"""
import argparse
import os
import tempfile
from pathlib import Path

from machine import json_from_subprocess, machine_report

import tinygen.kernels.numba_conv  # noqa: F401  (sets the threading layer the report prints)

STEP_CODE = r"""
import json, sys, time
start = time.perf_counter()
import tinygen as tg
imported = time.perf_counter() - start
sys.path.insert(0, BENCH)
from dcgan_step import starting_point, TinygenGAN
real, z, g_state, d_state = starting_point(BATCH)
gan = TinygenGAN(g_state, d_state, BACKEND, real, z)
seconds = []
for _ in range(STEPS + 1):
    start = time.perf_counter()
    gan.step()
    seconds.append(time.perf_counter() - start)
print(json.dumps({"import": imported, "first": seconds[0],
                  "later": sorted(seconds[1:])[len(seconds[1:]) // 2]}))
"""

IMPORT_CODE = r"""
import json
import tinygen
import tinygen.kernels.numba_conv as conv
import tinygen.kernels.numba_fused as bn
from numba.core.registry import CPUDispatcher
compiled = {module.__name__ + "." + name: len(f.signatures)
            for module in (conv, bn) for name, f in vars(module).items()
            if isinstance(f, CPUDispatcher)}
print(json.dumps(compiled))
"""


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2 if quick else 5)
    parser.add_argument("--batch", type=int, default=8 if quick else 64)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    bench = str(Path(__file__).resolve().parent)
    repo = str(Path(bench).parent)

    results = {}
    with tempfile.TemporaryDirectory(prefix="tinygen-numba-cache-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
        env.pop("TINYGEN_BACKEND", None)
        compiled = json_from_subprocess(IMPORT_CODE, "the import check", env)
        for label, backend in (("numba, process 1 (compiles)", "numba"),
                               ("numba, process 2 (cached)", "numba"),
                               ("numpy", "numpy")):
            code = STEP_CODE.replace("BENCH", repr(bench)).replace("BATCH", str(args.batch))
            code = code.replace("STEPS", str(args.steps)).replace("BACKEND", repr(backend))
            results[label] = json_from_subprocess(code, label, env)
        cache_files = sum(1 for p in Path(cache_dir).rglob("*") if p.suffix in (".nbi", ".nbc"))

    print(f"First DCGAN step (bench/dcgan_step.py, batch {args.batch}, float32) in fresh processes "
          f"sharing one new NUMBA_CACHE_DIR; later = median of {args.steps} steps")
    for line in machine_report(["numba"], load_start, compares_with_torch=False):
        print(line)
    print(f"  numba functions compiled by importing tinygen and its numba kernel modules: "
          f"{sum(compiled.values())} (of {len(compiled)} jitted functions)")
    print(f"  {'':30}{'import s':>10}{'first step s':>14}{'later step s':>14}{'extra s':>10}")
    for label, r in results.items():
        print(f"  {label:30}{r['import']:10.2f}{r['first']:14.3f}{r['later']:14.3f}"
              f"{r['first'] - r['later']:10.3f}")
    cold, cached = results["numba, process 1 (compiles)"], results["numba, process 2 (cached)"]
    print(f"  ratio first step cached / cold = {cached['first'] / cold['first']:.3f}")
    print(f"  cache files written by process 1: {cache_files}")


if __name__ == "__main__":
    main()
