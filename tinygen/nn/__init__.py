"""Neural-network building blocks (functional activations now; modules, layers and losses to come)."""
from . import functional  # noqa: F401
