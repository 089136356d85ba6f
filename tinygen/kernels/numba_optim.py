"""Adam's update, and a moving average's, as one pass over a parameter (numba backend).

tinygen/optim.py writes Adam's step with NumPy: about ten passes over every parameter (scale m,
add, square g, scale v, add, square root, divide, ...), each reading and writing the whole array.
On the 13.2M-parameter infogan DCGAN that was a quarter of a training step (issue 23's profile).
This kernel reads p, g, m and v once and writes p, m and v once, element by element:

    adam_update(p, g, m, v, beta1, beta2, step_size, bias2_sqrt, eps, weight_decay)
        g_i <- g_i + weight_decay * p_i       (where weight_decay is not 0)
        m_i <- beta1 m_i + (1 - beta1) g_i
        v_i <- beta2 v_i + (1 - beta2) g_i^2
        p_i <- p_i - step_size * m_i / (sqrt(v_i) / bias2_sqrt + eps)
    with step_size = lr / (1 - beta1^t) and bias2_sqrt = sqrt(1 - beta2^t): Adam.step's formula,
    arranged as PyTorch arranges it. p, g, m and v are C-contiguous arrays of one shape and dtype
    (tinygen.optim.Adam checks, and uses NumPy otherwise); the arithmetic runs in float64 and is
    rounded to the parameter's dtype once per stored value. A parameter of PARALLEL_MIN_SIZE
    elements or more is split into chunks that numba's threads update in parallel; a smaller one
    is updated by the calling thread (the same arithmetic on every element either way).

    ema_update(averaged, current, decay)
        averaged_i <- decay averaged_i + (1 - decay) current_i
    tinygen.ema.ExponentialMovingAverage.update's rule, in one pass instead of three (arrays as
    for adam_update).
"""
import numpy as np
from numba import njit, prange

# Below this many elements a parameter is updated by one thread. A parallel loop wakes numba's
# thread pool, and on a 2-core machine those threads wait for BLAS's, which spin for a while
# after every product: in the VAE's training loop (650k parameters, none above 314k) Adam took
# 1.9 ms per step in parallel and 1.1 ms on one thread; on the infogan DCGAN's 6.4M-weight
# matrices the parallel loop stays the faster (ARCHITECTURE.md, issue 25).
PARALLEL_MIN_SIZE = 2**20

# error_model="numpy": a division by zero gives inf or nan as in NumPy instead of raising as in
# Python. Python's model tests every divisor, and that test kept LLVM from vectorising the loop:
# one thread took 6.1 ns per element with it, 1.5 ns without (313,600 float32 weights).


@njit(cache=True, error_model="numpy")
def _adam_flat(p, g, m, v, beta1, beta2, step_size, bias2_sqrt, eps, weight_decay):
    for i in range(p.size):
        grad = g[i]
        if weight_decay != 0.0:  # skipped at 0, as NumPy's path does (0 * inf would be NaN)
            grad += weight_decay * p[i]
        m_i = beta1 * m[i] + (1.0 - beta1) * grad
        v_i = beta2 * v[i] + (1.0 - beta2) * grad * grad
        m[i] = m_i
        v[i] = v_i
        p[i] = p[i] - step_size * m_i / (np.sqrt(v_i) / bias2_sqrt + eps)


@njit(parallel=True, cache=True, error_model="numpy")
def _adam_chunks(p, g, m, v, chunk, beta1, beta2, step_size, bias2_sqrt, eps, weight_decay):
    for c in prange((p.size + chunk - 1) // chunk):
        part = slice(c * chunk, min(p.size, (c + 1) * chunk))
        _adam_flat(p[part], g[part], m[part], v[part], beta1, beta2, step_size, bias2_sqrt, eps,
                   weight_decay)


def adam_update(p, g, m, v, beta1, beta2, step_size, bias2_sqrt, eps, weight_decay):
    """Adam's step on p, m and v in place (see the module docstring)."""
    flat = (p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1))
    hyper = (float(beta1), float(beta2), float(step_size), float(bias2_sqrt), float(eps),
             float(weight_decay))
    if p.size < PARALLEL_MIN_SIZE:
        _adam_flat(*flat, *hyper)
    else:
        _adam_chunks(*flat, _chunk(p.size), *hyper)


@njit(cache=True, error_model="numpy")
def _ema_flat(averaged, current, decay):
    for i in range(averaged.size):
        averaged[i] = decay * averaged[i] + (1.0 - decay) * current[i]


@njit(parallel=True, cache=True, error_model="numpy")
def _ema_chunks(averaged, current, chunk, decay):
    for c in prange((averaged.size + chunk - 1) // chunk):
        part = slice(c * chunk, min(averaged.size, (c + 1) * chunk))
        _ema_flat(averaged[part], current[part], decay)


def ema_update(averaged, current, decay):
    """averaged <- decay * averaged + (1 - decay) * current, in place (see the docstring)."""
    flat = (averaged.reshape(-1), current.reshape(-1))
    if averaged.size < PARALLEL_MIN_SIZE:
        _ema_flat(*flat, float(decay))
    else:
        _ema_chunks(*flat, _chunk(averaged.size), float(decay))


def _chunk(size):
    """Elements per task of a parallel update: a few tasks per thread, whole cache lines."""
    return max(4096, (size // 16 + 15) // 16 * 16)
