"""How tinygen's work shares the cores: thread counts from the usual variables, and idle threads
that sleep instead of spinning.

Two pools of threads do the work of a training step: numba's (tinygen's parallel kernels) and
OpenBLAS's (NumPy's matrix products). After each product OpenBLAS's idle threads spin, waiting for
the next one, for 2^28 processor cycles (about 0.1 s) before they sleep. Within one process that
only delays the numba kernels that come next; with two trainings on a 2-core laptop, four pools
spin against each other and every step waits for a time slice (steps ran ~10x slower).
bench/concurrent_runs.py measures one and two runs at once.

  * OPENBLAS_THREAD_TIMEOUT (log2 of the cycles an idle OpenBLAS thread spins, 4 to 30): tinygen
    sets it to SPIN_LOG2_CYCLES when it is imported before NumPy (as in the `tinygen` command) and
    the user has not set it. OpenBLAS reads it once, when NumPy loads it; a program that imports
    NumPy first keeps OpenBLAS's own setting (set the variable in the shell then).
  * numba's threads: NUMBA_NUM_THREADS if set, else OMP_NUM_THREADS (the variable most tools
    read, as OpenBLAS does) caps them; numba's workqueue layer sleeps between parallel loops
    (kernels/numba_conv.py).
"""
import os
import sys

# 2^16 cycles: about 20 microseconds at 3 GHz, long enough to catch the next product of a layer,
# short enough that a sleeping pool gives its cores away (bench/concurrent_runs.py; see
# ARCHITECTURE.md for what it measured).
SPIN_LOG2_CYCLES = 16


def calm_blas_threads():
    """Set OPENBLAS_THREAD_TIMEOUT (unless the user did) while NumPy is not loaded yet; True if
    it takes effect in this process."""
    if "numpy" in sys.modules:
        return False  # OpenBLAS read its settings when NumPy loaded it
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(SPIN_LOG2_CYCLES))
    return True


def numba_thread_count(available):
    """How many threads numba's parallel loops should use, of the `available` it started with:
    NUMBA_NUM_THREADS set decides (numba applied it already); else OMP_NUM_THREADS, if set, caps."""
    if "NUMBA_NUM_THREADS" in os.environ:
        return available
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not requested.isdigit() or int(requested) < 1:
        return available
    return min(int(requested), available)


calm_blas_threads()  # at import: `import tinygen` imports this module before NumPy
