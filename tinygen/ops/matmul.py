"""Matrix product with NumPy's rules: 1-D operands are promoted, leading (batch) axes broadcast."""
import numpy as np

from ..autograd import Function
from .elementwise import as_tensor_pair
from .shape import sum_to_shape


def _swap_last_two(t):
    axes = list(range(t.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return t.transpose(*axes)


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}"
            )
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} do not align ({a.shape[-1]} != {inner_b})"
            )
        try:
            return np.matmul(a, b)
        except ValueError:
            raise ValueError(
                f"matmul: batch axes of shapes {a.shape} and {b.shape} cannot be broadcast together"
            ) from None

    def backward(self, grad):
        a, b = self.inputs
        # Promote 1-D operands to matrices, as forward did: a (k,) -> (1, k), b (k,) -> (k, 1).
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        grad = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        # C = A B:  dL/dA = dL/dC B^T,  dL/dB = A^T dL/dC  (summed over broadcast batch axes)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = sum_to_shape(grad @ _swap_last_two(b2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            grad_b = sum_to_shape(_swap_last_two(a2) @ grad, b2.shape).reshape(b.shape)
        return grad_a, grad_b


def matmul(a, b):
    """a @ b (batched, broadcasting), as np.matmul."""
    return MatMul.apply(*as_tensor_pair(a, b))
