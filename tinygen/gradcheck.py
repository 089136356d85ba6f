"""Check analytic gradients against central finite differences, as a student would by hand.

gradcheck(fn, inputs):   first derivatives of fn at inputs.
gradgradcheck(fn, inputs): second derivatives, by gradchecking the gradient function itself.

To keep the check to one backward pass, the outputs are first reduced to one random scalar,
S = sum_k <v_k, out_k>, with fixed random weights v_k. For any Jacobian error there is almost surely
some input element whose dS/dx_i is wrong, so checking dS/dx_i for every element i checks the whole
Jacobian. The numeric estimate is (S(x_i + eps) - S(x_i - eps)) / (2 eps).
"""
import numpy as np

from .autograd import enable_grad, grad, no_grad
from .tensor import Tensor, float64


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message lists the worst mismatches."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _scalar_projection(outputs, weights):
    """S = sum_k sum(out_k * v_k), built with Tensor ops so it can be differentiated."""
    total = None
    for out, v in zip(outputs, weights):
        term = (out * v).sum()
        total = term if total is None else total + term
    return total


def _elements_to_check(size, max_elements, rng):
    if max_elements is None or size <= max_elements:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_elements, replace=False))


def _mismatch_table(rows, limit=5):
    rows = sorted(rows, key=lambda r: -abs(r[2] - r[3]))[:limit]
    lines = [f"{'input':>5}  {'index':<16}{'analytic':>14}{'numeric':>14}{'diff':>12}"]
    for which, index, analytic, numeric in rows:
        lines.append(
            f"{which:>5}  {str(index):<16}{analytic:>14.6g}{numeric:>14.6g}"
            f"{abs(analytic - numeric):>12.3g}"
        )
    return "\n".join(lines)


def _check_inputs(inputs, fn_name):
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn_name}: input {i} is a {type(t).__name__}, not a Tensor")
        if t.requires_grad and t.dtype != float64:
            raise TypeError(
                f"{fn_name}: input {i} is {t.dtype}; finite differences need float64 "
                "(make it with tinygen.tensor(data, dtype='float64', requires_grad=True))"
            )
    if not any(t.requires_grad for t in inputs):
        raise ValueError(f"{fn_name}: no input has requires_grad=True, nothing to check")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, max_elements=None, seed=0):
    """Compare fn's autograd gradient with central differences for every element of every input.

    fn: Tensors -> Tensor or tuple of Tensors; inputs: a Tensor or a sequence (float64 where
    requires_grad). max_elements: check a random sample of that many elements per input instead of
    all of them (for large inputs). Returns True, or raises GradcheckError with a table of the worst
    mismatches (input number, element index, analytic, numeric).
    """
    inputs = _as_tuple(inputs)
    _check_inputs(inputs, "gradcheck")
    rng = np.random.default_rng(seed)
    with no_grad():
        outputs = _as_tuple(fn(*inputs))
    weights = [Tensor(rng.standard_normal(out.shape), dtype=out.dtype) for out in outputs]

    positions = [i for i, t in enumerate(inputs) if t.requires_grad]
    differentiable = [inputs[i] for i in positions]
    projected = _scalar_projection(_as_tuple(fn(*inputs)), weights)
    if projected.requires_grad:
        analytic = grad(projected, differentiable, allow_unused=True)
    else:
        analytic = (None,) * len(differentiable)  # outputs do not depend on inputs at all

    def numeric_projection():
        with no_grad():
            return _scalar_projection(_as_tuple(fn(*inputs)), weights).item()

    mismatches = []
    for which, t, g in zip(positions, differentiable, analytic):
        g = np.zeros(t.shape) if g is None else g.data
        for i in _elements_to_check(t.data.size, max_elements, rng):
            # Index the array itself (a reshaped view would be a copy for non-contiguous data).
            index = np.unravel_index(i, t.shape)
            original = t.data[index]
            t.data[index] = original + eps
            plus = numeric_projection()
            t.data[index] = original - eps
            minus = numeric_projection()
            t.data[index] = original
            numeric = (plus - minus) / (2 * eps)
            analytic_i = g[index]
            if not abs(analytic_i - numeric) <= atol + rtol * abs(numeric):
                mismatches.append((which, tuple(int(k) for k in index), analytic_i, numeric))
    if mismatches:
        raise GradcheckError(
            f"gradcheck: {len(mismatches)} gradient element(s) differ from finite differences "
            f"(atol={atol}, rtol={rtol}, eps={eps}); worst:\n{_mismatch_table(mismatches)}"
        )
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, max_elements=None, seed=0):
    """Check second derivatives: gradcheck the map (inputs, v) -> d<fn(inputs), v>/d inputs.

    The gradient is taken with create_graph=True, so this checks that every backward is itself
    differentiable and right. v (a random fixed "grad_output") is checked as an input too.
    """
    inputs = _as_tuple(inputs)
    _check_inputs(inputs, "gradgradcheck")
    rng = np.random.default_rng(seed + 1)
    with no_grad():
        outputs = _as_tuple(fn(*inputs))
    grad_outputs = [
        Tensor(rng.standard_normal(out.shape), dtype=out.dtype, requires_grad=True)
        for out in outputs
    ]

    def first_gradient(*args):
        xs, vs = args[: len(inputs)], args[len(inputs):]
        wanted = [x for x in xs if x.requires_grad]
        with enable_grad():  # the numeric pass runs under no_grad, but this needs a graph
            outs = _as_tuple(fn(*xs))
            grads = grad(outs, wanted, grad_outputs=list(vs), create_graph=True, allow_unused=True)
        # An input the outputs do not depend on has gradient zero (None from grad).
        return tuple(
            g if g is not None else Tensor(np.zeros(x.shape), dtype=x.dtype)
            for g, x in zip(grads, wanted)
        )

    return gradcheck(
        first_gradient, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
        max_elements=max_elements, seed=seed,
    )
