"""One training and two at once: the seconds per DCGAN step (numba backend) when one process
trains alone and when two train side by side on the same cores, under three thread settings.

    python bench/concurrent_runs.py [--steps 12] [--batch 64]

Each process imports tinygen before NumPy (as the `tinygen` command does), then times `--steps`
steps of bench/dcgan_step.py's classic DCGAN (after 3 warm-up steps) and reports its median. The
settings, each run alone and as two processes started together:
    openblas-spins   OPENBLAS_THREAD_TIMEOUT=28: OpenBLAS's own default (idle threads spin for
                     2^28 cycles, ~0.1 s, after each product): what every run does unless told
    shorter-spin     OPENBLAS_THREAD_TIMEOUT=20: idle threads sleep after ~2^20 cycles
    one-thread-each  OMP_NUM_THREADS=1: one BLAS and one numba thread per process (tinygen's
                     kernels respect it: tinygen/threads.py)
The ratios printed are two-at-once over alone, per setting (each process's median; the slower
of the two), and each setting's alone time over openblas-spins' alone time. Settings run one
after another (never two settings at once), in --rounds interleaved rounds whose medians are
kept (this machine's speed drifts); the machine should be otherwise idle.
TINYGEN_QUICK=1: batch 8, 4 steps, one round, two settings (openblas-spins, one-thread-each).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

SETTINGS = {
    "openblas-spins": {"OPENBLAS_THREAD_TIMEOUT": "28"},
    "shorter-spin": {"OPENBLAS_THREAD_TIMEOUT": "20"},
    "one-thread-each": {"OMP_NUM_THREADS": "1"},
}
THREAD_VARIABLES = ("OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")

CHILD = r"""
import json, statistics, sys, time
import tinygen as tg  # first: before NumPy, as the tinygen command
sys.path.insert(0, {bench!r})
from dcgan_step import TinygenGAN, starting_point
real, z, g_state, d_state = starting_point({batch})
gan = TinygenGAN(g_state, d_state, "numba", real, z)
for _ in range(3):
    gan.step()
seconds = []
for _ in range({steps}):
    start = time.perf_counter()
    gan.step()
    seconds.append(time.perf_counter() - start)
print(json.dumps({{"median": statistics.median(seconds)}}))
"""


def run_together(setting, copies, steps, batch):
    """Start `copies` processes at once under `setting`; their median seconds per step."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(SETTINGS[setting])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    code = CHILD.format(bench=str(BENCH), batch=batch, steps=steps)
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(copies)]
    medians = []
    for process in processes:
        out, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            sys.exit(f"{setting}: a run failed:\n{err}")
        medians.append(json.loads(out.strip().splitlines()[-1])["median"])
    return medians


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4 if quick else 12)
    parser.add_argument("--batch", type=int, default=8 if quick else 64)
    parser.add_argument("--rounds", type=int, default=1 if quick else 3,
                        help="rounds over all settings, interleaved; medians over rounds")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS),
                        default=["openblas-spins", "one-thread-each"] if quick else list(SETTINGS),
                        help="the settings to run (openblas-spins is always run: the baseline)")
    args = parser.parse_args()
    settings = ["openblas-spins"] + [s for s in args.settings if s != "openblas-spins"]
    alone = {setting: [] for setting in settings}
    together = {setting: [] for setting in settings}
    for _ in range(args.rounds):  # the machine's speed drifts: every setting in every round
        for setting in settings:
            alone[setting].append(run_together(setting, 1, args.steps, args.batch)[0])
            together[setting].append(max(run_together(setting, 2, args.steps, args.batch)))
    results = {setting: (statistics.median(alone[setting]), statistics.median(together[setting]))
               for setting in settings}
    print(f"DCGAN step (classic network, batch {args.batch}, numba), median of {args.steps} "
          f"steps per process, then of {args.rounds} interleaved rounds, {os.cpu_count()} CPUs")
    print(f"  {'setting':16}{'alone s':>10}{'two at once s':>15}{'ratio two / alone':>19}"
          f"{'ratio alone / spins':>21}")
    spins_alone = results["openblas-spins"][0]
    for setting, (alone, together) in results.items():
        print(f"  {setting:16}{alone:10.3f}{together:15.3f}{together / alone:19.2f}"
              f"{alone / spins_alone:21.2f}")


if __name__ == "__main__":
    main()
