"""The autograd engine: grad mode, the Function base class, and reverse-mode traversal.

A Tensor produced by an op remembers the op (a Function instance, `tensor._ctx`), and the op
remembers its input Tensors. `backward` walks that graph from the output back to the leaves in
reverse topological order, asking each Function for the gradients of its inputs.

Every Function.backward is written with Tensor ops. Under `no_grad` those ops build no graph and
cost what the NumPy calls cost; with `create_graph=True` they build a graph of their own, so the
gradient can be differentiated again.
"""
import functools
import weakref

import numpy as np

from . import devices

_grad_enabled = True


def is_grad_enabled():
    """True when ops record the graph for backward (the default)."""
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode on entry and restores it on exit."""

    enabled = True

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self.enabled

    def __exit__(self, *exc_info):
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Ops inside `with tinygen.no_grad():` (or a function decorated with it) record no graph."""

    enabled = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a `no_grad` block."""

    enabled = True


class Function:
    """One differentiable op: `forward` on NumPy arrays, `backward` on Tensors, side by side.

    Subclasses implement
        forward(self, *arrays, **params) -> array    (may save what backward needs on self)
        backward(self, grad) -> one gradient Tensor per input (None where not needed)
    and are called through `apply`, which wraps arrays into Tensors and records the graph.
    """

    def __init__(self, inputs):
        self.inputs = inputs
        self.needs_input_grad = tuple([t.requires_grad for t in inputs])
        self._output_ref = None

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays; record the op if any input needs a gradient."""
        fn = cls(inputs)
        arrays = [t.data for t in inputs]
        for array in arrays[1:]:
            if type(array) is not type(arrays[0]):  # NumPy's and CuPy's arrays, or two others
                devices.check_same_device(fn.name.lower(), arrays)
        out_data = fn.forward(*arrays, **params)
        requires_grad = _grad_enabled and any(fn.needs_input_grad)
        out = Tensor._wrap(out_data, requires_grad)
        if requires_grad:
            out._ctx = fn
            # A weak reference: ops like exp and sigmoid reuse their output in backward, and a
            # strong one would make a reference cycle (output -> ctx -> output).
            fn._output_ref = weakref.ref(out)
        return out

    @property
    def output(self):
        """The Tensor this op produced (alive while backward runs through it)."""
        return self._output_ref()

    def release(self):
        """Forget the inputs and whatever forward saved on self: a backward without
        retain_graph calls this once the op's backward has run, as PyTorch frees a graph's saved
        tensors, so that activations and saved arrays go as soon as the gradient has passed."""
        self.__dict__.clear()
        self.released = True

    released = False  # True once release() has run: the op can no longer run its backward

    @property
    def name(self):
        return type(self).__name__


GRAPH_FREED = (
    "backward: trying to backward through the graph a second time: the first backward (or grad) "
    "freed what the graph saved; pass retain_graph=True to the first one if you need the graph "
    "again")


def topological_order(roots):
    """The tensors that need gradients and lead to `roots`, each before those it came from."""
    order = []
    visited = set()
    for root in roots:
        # Iterative depth-first search (a deep graph would overflow Python's recursion limit).
        stack = [(root, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            if node._ctx is not None:
                if node._ctx.released:
                    raise RuntimeError(GRAPH_FREED)
                for parent in node._ctx.inputs:
                    if parent.requires_grad and id(parent) not in visited:
                        stack.append((parent, False))
    order.reverse()
    return order


def _as_grad_list(tensors, grad_tensors):
    """Pair each output with its incoming gradient (a scalar's may be omitted: d out/d out = 1)."""
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    if len(grad_tensors) != len(tensors):
        raise ValueError(f"got {len(tensors)} outputs but {len(grad_tensors)} gradients")
    grads = []
    for t, g in zip(tensors, grad_tensors):
        if not t.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph "
                "(was it computed under no_grad, or from inputs with requires_grad=False?)"
            )
        if g is None:
            if t.data.size != 1:
                raise RuntimeError(
                    f"backward: gradient can be implicitly created only for scalar outputs, "
                    f"but the output has shape {t.shape}; pass gradient= (a tensor of that shape)"
                )
            g = Tensor._wrap(np.ones_like(t.data), False)
        else:
            g = g if isinstance(g, Tensor) else Tensor(g, dtype=t.dtype)
            if g.shape != t.shape:
                raise ValueError(f"backward: gradient has shape {g.shape} but output has {t.shape}")
        grads.append(g)
    return grads


def run_backward(outputs, grad_outputs, create_graph=False, inputs=None, retain_graph=None):
    """Propagate gradients from `outputs` to the graph's tensors.

    With `inputs=None` (what `Tensor.backward` does) gradients are accumulated into `.grad` of
    leaves and of tensors that called `retain_grad()`. Otherwise nothing is written and the
    gradients of `inputs` are returned as a dict {id(tensor): Tensor}.

    retain_graph (default: create_graph, as in PyTorch): keep the graph for another backward.
    Without it each op is released as soon as its backward has run, and the list of nodes lets
    go of each tensor as it is passed, so activations are freed during the backward, not after.
    """
    if retain_graph is None:
        retain_graph = create_graph
    grads = {}
    for out, g in zip(outputs, _as_grad_list(outputs, grad_outputs)):
        grads[id(out)] = grads[id(out)] + g if id(out) in grads else g
    wanted = None if inputs is None else {id(t) for t in inputs}
    found = {}

    with enable_grad() if create_graph else no_grad():
        order = topological_order(outputs)
        for position, node in enumerate(order):
            order[position] = None  # the loop's own reference is the last one it holds
            grad = grads.pop(id(node), None)
            if grad is None:
                continue
            if node._hooks:
                for hook in node._hooks.values():
                    new_grad = hook(grad)
                    if new_grad is not None:
                        grad = new_grad
            if wanted is None:
                if node._ctx is None or node._retains_grad:
                    _accumulate(node, grad, create_graph)
            elif id(node) in wanted:
                found[id(node)] = grad
            if node._ctx is None:
                continue
            input_grads = node._ctx.backward(grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, g in zip(node._ctx.inputs, input_grads):
                if g is None or not parent.requires_grad:
                    continue
                if g.data.dtype != parent.data.dtype:  # float32 x op float64 y: x's gradient
                    g = g.astype(parent.dtype)  # is float32
                key = id(parent)
                grads[key] = grads[key] + g if key in grads else g
            grad = input_grads = g = None  # what this node passed on is in `grads` now
            if not retain_graph:
                node._ctx.release()
    return found


def _accumulate(tensor, grad, create_graph):
    """tensor.grad += grad (kept in the graph only with create_graph=True)."""
    if not create_graph:
        data = grad.data
        # CuPy's arrays have no "writeable" flag: they are always writeable.
        if data.base is not None or not getattr(data.flags, "writeable", True):
            # A view (a broadcast, a transpose) may be read-only or shared with another tensor's
            # gradient: .grad gets an array of its own, which the user may modify in place.
            data = data.copy()
        grad = Tensor._wrap(data, False)
    if tensor.grad is None:
        tensor.grad = grad
    else:
        tensor.grad = tensor.grad + grad


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, as a tuple (nothing goes into .grad).

    outputs: a Tensor or a sequence of Tensors; grad_outputs: matching Tensors ("vector" of the
    vector-Jacobian product), optional for scalar outputs. With create_graph=True the returned
    gradients are themselves differentiable. retain_graph=True keeps the graph for another
    backward or grad (by default it is kept only with create_graph, as in PyTorch).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single_input = isinstance(inputs, Tensor)
    inputs = [inputs] if single_input else list(inputs)
    if isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    found = run_backward(outputs, grad_outputs, create_graph=create_graph, inputs=inputs,
                         retain_graph=retain_graph)
    result = []
    for i, t in enumerate(inputs):
        g = found.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {t.shape}) is not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        result.append(g)
    return tuple(result)


# Tensor needs Function and grad mode, so it is imported last to break the import cycle.
from .tensor import Tensor  # noqa: E402
