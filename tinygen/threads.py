"""How many threads tinygen's kernels use: the usual variables decide.

Two pools of threads do the work of a training step on the CPU: numba's (tinygen's parallel
kernels; its workqueue layer, chosen in kernels/numba_conv.py, sleeps between loops) and
OpenBLAS's (NumPy's matrix products; its idle threads spin for 2^28 cycles, about 0.1 s, before
they sleep). Each process uses every core by default, which is right for one training at a time.
For several at once, give each fewer threads: OMP_NUM_THREADS caps OpenBLAS's (read when NumPy
loads) and, through numba_thread_count, numba's too, unless NUMBA_NUM_THREADS is set.
bench/concurrent_runs.py measures one and two runs at once; the figures, and why tinygen does not
shorten OpenBLAS's spinning itself, are in ARCHITECTURE.md.
"""
import os


def numba_thread_count(available):
    """How many threads numba's parallel loops should use, of the `available` it started with:
    NUMBA_NUM_THREADS set decides (numba applied it already); else OMP_NUM_THREADS, if set, caps."""
    if "NUMBA_NUM_THREADS" in os.environ:
        return available
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not requested.isdigit() or int(requested) < 1:
        return available
    return min(int(requested), available)
