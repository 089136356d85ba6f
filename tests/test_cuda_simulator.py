"""tinygen/kernels/cuda_simulator.py: the lock on numba's simulated cuda.shared.array.

The race it repairs is rare by itself (two threads of a block must switch between the simulator's
lookup and its store), so this test makes it certain: np.empty, which the simulator calls between
the two, is slowed down (it sleeps, so every thread of the block gets to the lookup first) and
fills its arrays with NaN (so a thread left with a private copy sums NaN). A kernel where each
thread fills its slot of one shared array and then sums them all must see the full sum in every
thread with the lock, and does not without it: the check proves that it can fail.

Like test_cuda_conv.py, it runs this file as a script in a child process started with
NUMBA_ENABLE_CUDASIM=1 (the simulator must be on before numba is first imported).
"""
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numba import cuda, float64  # in the child, the simulator (switched on before this import)

ROOT = Path(__file__).resolve().parent.parent
THREADS = 8


@contextmanager
def _slow_nan_empty():
    """np.empty that sleeps (letting the other threads run) and returns arrays of NaN."""
    real_empty = np.empty

    def slow_empty(shape, dtype=float, *args, **kwargs):
        time.sleep(0.01)
        made = real_empty(shape, dtype, *args, **kwargs)
        made.fill(np.nan)
        return made

    np.empty = slow_empty
    try:
        yield
    finally:
        np.empty = real_empty


@cuda.jit
def block_sum(out):
    """out[t] = the sum of the block's shared slots, slot t filled by thread t with t + 1."""
    slots = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    slots[t] = t + 1
    cuda.syncthreads()
    total = 0.0
    for i in range(THREADS):
        total += slots[i]
    out[t] = total


def _block_sums():
    """Every thread's sum, with the race forced."""
    out = np.zeros(THREADS)
    with _slow_nan_empty():
        block_sum[1, THREADS](out)
    return out


def simulator_checks():
    """The locked method gives one array per block; the simulator's own, raced, does not."""
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    import tinygen.kernels.cuda_conv  # noqa: F401  (importing the kernels puts the lock in)

    full_sum = THREADS * (THREADS + 1) / 2
    locked = FakeCUDAShared.array
    assert getattr(locked, "is_locked_by_tinygen", False), "the kernels did not lock the method"
    with_lock = _block_sums()
    FakeCUDAShared.array = locked.simulators_array
    try:
        without_lock = _block_sums()
    finally:
        FakeCUDAShared.array = locked
    failures = []
    if not np.all(with_lock == full_sum):
        failures.append(f"with the lock, the block sums are {with_lock}, not all {full_sum}")
    if np.all(without_lock == full_sum):
        failures.append("without the lock the forced race did not show: this test cannot fail")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


def test_simulated_shared_arrays_are_one_per_block_even_when_threads_race():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", TINYGEN_BACKEND="")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, __file__], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


if __name__ == "__main__":
    sys.exit(simulator_checks())
