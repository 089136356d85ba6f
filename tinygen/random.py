"""One global random generator for tinygen, seeded by tinygen.manual_seed (as torch.manual_seed).

get_rng_state / set_rng_state save and restore where it is in its stream (torch's names), so that
a training run resumed from a checkpoint draws the same noise as one that never stopped.
"""
import copy

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


def get_rng_state():
    """Where the global generator is in its stream: a dict of plain values (a checkpoint entry)."""
    return copy.deepcopy(_generator.bit_generator.state)


def set_rng_state(state):
    """Put the global generator back where get_rng_state found it."""
    _generator.bit_generator.state = copy.deepcopy(state)
