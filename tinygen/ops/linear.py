"""The fully connected layer as one op: y = x W^T + b.

Written as three ops (a transpose, a product, an add) the layer allocates its output twice and
its weight gradient arrives as the transpose of a product: a strided view that had to be copied
into order before Adam could read it (issue 25's profile of the infogan DCGAN: 120 ms of copies in
a 680 ms step). As one op, the bias is added in place to the product, and the weight gradient is
computed in the weight's own layout, g^T x.
"""
import numpy as np

from ..autograd import Function
from .elementwise import add_in_place


class Linear(Function):
    def forward(self, x, weight, bias=None):
        y = np.matmul(x, weight.T)  # BLAS reads W^T through a flag: no copy of W
        return y if bias is None else add_in_place(y, bias)  # y is fresh: the bias goes into it

    def backward(self, grad):
        x, weight = self.inputs[:2]
        out_features, in_features = weight.shape
        # y = x W^T + b:  dL/dx = g W,  dL/dW = g^T x,  dL/db = sum of g over the rows
        # (leading axes of x, if any, are rows too: x is (..., in) and g is (..., out))
        rows_of_grad = grad.reshape(-1, out_features)
        grad_x = grad @ weight if self.needs_input_grad[0] else None
        grad_weight = None
        if self.needs_input_grad[1]:
            grad_weight = rows_of_grad.T @ x.reshape(-1, in_features)
        grad_bias = None
        if len(self.inputs) == 3 and self.needs_input_grad[2]:
            grad_bias = rows_of_grad.sum(axis=0)
        return grad_x, grad_weight, grad_bias


def linear(x, weight, bias=None):
    """x W^T + b as one op (shapes checked by nn.functional.linear)."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)
