"""Adam's update, and a moving average's, as one parallel pass over a parameter (numba backend).

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
    rounded to the parameter's dtype once per stored value.

    ema_update(averaged, current, decay)
        averaged_i <- decay averaged_i + (1 - decay) current_i
    tinygen.ema.ExponentialMovingAverage.update's rule, in one pass instead of three (arrays as
    for adam_update).
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _adam_flat(p, g, m, v, beta1, beta2, step_size, bias2_sqrt, eps, weight_decay):
    for i in prange(p.size):
        grad = g[i]
        if weight_decay != 0.0:  # skipped at 0, as NumPy's path does (0 * inf would be NaN)
            grad += weight_decay * p[i]
        m_i = beta1 * m[i] + (1.0 - beta1) * grad
        v_i = beta2 * v[i] + (1.0 - beta2) * grad * grad
        m[i] = m_i
        v[i] = v_i
        p[i] = p[i] - step_size * m_i / (np.sqrt(v_i) / bias2_sqrt + eps)


def adam_update(p, g, m, v, beta1, beta2, step_size, bias2_sqrt, eps, weight_decay):
    """Adam's step on p, m and v in place (see the module docstring)."""
    _adam_flat(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), float(beta1),
               float(beta2), float(step_size), float(bias2_sqrt), float(eps), float(weight_decay))


@njit(parallel=True, cache=True)
def _ema_flat(averaged, current, decay):
    for i in prange(averaged.size):
        averaged[i] = decay * averaged[i] + (1.0 - decay) * current[i]


def ema_update(averaged, current, decay):
    """averaged <- decay * averaged + (1 - decay) * current, in place (see the docstring)."""
    _ema_flat(averaged.reshape(-1), current.reshape(-1), float(decay))
