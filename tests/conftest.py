"""Shared test settings: hypothesis runs a bounded number of examples, with no deadline."""
import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("tinygen", max_examples=60, deadline=None)
settings.load_profile("tinygen")


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator for test data."""
    return np.random.default_rng(0)
