"""Moving a tensor between devices, as an op: the gradient goes back to where the input was.

    y = x.to("cuda")     # y lives on the GPU; y's gradient is copied back to x's device
"""
from .. import devices
from ..autograd import Function


class ToDevice(Function):
    def forward(self, a, target):
        self.source = devices.device_of(a)
        return devices.to_device(a, target)  # an explicit copy across, asked for by the user

    def backward(self, grad):
        # y = x, on another device: dL/dx = dL/dy, on x's device
        return ToDevice.apply(grad, target=self.source)


def to_device(a, target):
    """a on the device target (a copy in the graph)."""
    return ToDevice.apply(a, target=devices.device(target))
