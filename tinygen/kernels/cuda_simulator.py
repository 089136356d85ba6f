"""A repair to numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): shared arrays made thread-safe.

The simulator runs each GPU thread of a block as a Python thread. `cuda.shared.array(shape,
dtype)` must hand every thread of the block the same array, so the simulator keeps, per block, a
dict from the calling line (file, line number) to its array, and does
    found = allocations.get(line)
    if found is None:
        found = np.empty(shape, dtype)
        allocations[line] = found
with no lock. When the interpreter switches threads between the lookup and the store, two
threads both find nothing and each makes an array; the one that stored first then works alone on
a private copy that the rest of its block never sees: its entries of the tile are garbage
(np.empty) to the others, and its own sums read theirs as garbage. It happened to the tiled
convolution test on CI (one output row of one block wrong, once in many runs). A real GPU has no
such race; it is the simulator's.

make_shared_arrays_thread_safe() replaces that method with the same lookup under a lock, so the
first thread to arrive makes the block's array and every other thread gets that one. tinygen's
CUDA kernel modules call it when they are imported; it does nothing on a real GPU.
"""
import sys
import threading

import numpy as np
from numba import config

_lock = threading.Lock()


def make_shared_arrays_thread_safe():
    """Put a lock around the simulator's cuda.shared.array, once; nothing without the simulator."""
    if not config.ENABLE_CUDASIM:
        return
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    if getattr(FakeCUDAShared.array, "is_locked_by_tinygen", False):
        return
    FakeCUDAShared.array = _locked_shared_array(FakeCUDAShared.array)


def _locked_shared_array(simulators_array):
    """FakeCUDAShared.array with its lookup-and-store under a lock.

    It is a replacement, not a wrapper: the simulator names an array by the line that called it,
    found one frame up, and a wrapper would put its own line there for every array (all the shared
    arrays of a kernel would become one). Dynamic shared memory (shape 0) is one buffer with no
    lookup, so that call goes to the simulator's own method."""
    from numba.core import types
    from numba.np import numpy_support

    def array(self, shape, dtype):
        if shape == 0:
            return simulators_array(self, shape, dtype)
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)  # numba's float64 -> NumPy's
        caller = sys._getframe(1)
        line = (caller.f_code.co_filename, caller.f_lineno)
        with _lock:
            found = self._allocations.get(line)
            if found is None:
                found = np.empty(shape, dtype)
                self._allocations[line] = found
        return found

    array.is_locked_by_tinygen = True
    array.simulators_array = simulators_array  # the unlocked original, for the test that races it
    return array
