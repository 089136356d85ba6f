"""Array kernels with no autograd: the raw maths the differentiable ops in `tinygen.ops` call."""
