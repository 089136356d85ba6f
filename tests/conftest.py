"""Shared test settings: one OpenBLAS thread per test worker; hypothesis runs a bounded number of
examples, with no deadline."""
import os

# pytest.ini runs one worker process per core (pytest-xdist). OpenBLAS would start a thread per
# core in each, and its idle threads spin (about 0.1 s after every product) on the cores that the
# other workers need: two trainings at once run several times slower that way
# (bench/concurrent_runs.py). One OpenBLAS thread per worker, set before NumPy loads (it reads the
# variable then); the lessons and benches the tests start inherit it. numba keeps its threads: its
# pool sleeps between loops, and the parallel kernels stay tested with more than one thread.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("tinygen", max_examples=60, deadline=None)
settings.load_profile("tinygen")


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator for test data."""
    return np.random.default_rng(0)
