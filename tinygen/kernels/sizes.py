"""The size arithmetic every convolution kernel shares, whichever backend runs it."""


def output_size(size, kernel, stride, padding):
    """Output length of a convolution along one axis:
    floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1
