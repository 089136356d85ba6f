"""One global random generator for tinygen, seeded by tinygen.manual_seed (as torch.manual_seed)."""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Reseed the generator that randn, rand, dropout and weight initialisation draw from."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator():
    """The current global numpy.random.Generator."""
    return _generator
