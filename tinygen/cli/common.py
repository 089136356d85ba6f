"""What the commands share: MNIST as model inputs, atomic JSON, the reconstruction grid, and the
--device check."""
import json
import os

import numpy as np

from .. import devices, plot
from ..autograd import no_grad
from ..checkpoint import write_atomically
from ..data import load_mnist
from ..nn.module import parameter_device
from ..tensor import tensor
from .errors import CommandError
from .recipes import unit_vectors


def mnist_inputs(split, data, quick, pixels=unit_vectors):
    """The MNIST images of a split turned into model inputs by `pixels`; a small slice if quick."""
    if data not in (None, "bundled") and not os.path.isdir(data):
        raise CommandError(f"--data {data}: no such folder (give the MNIST folder, or 'bundled')")
    try:
        if data == "bundled":
            images, _ = load_mnist(split, subset="bundled")
        else:
            images, _ = load_mnist(split, root=data)
    except (OSError, ValueError) as error:  # missing folder, bad checksum, corrupt file
        raise CommandError(str(error)) from None
    if quick:
        images = images[:1000 if split == "train" else 200]
    return pixels(images)


def write_json(obj, path):
    """Write JSON to a temporary file beside path, then rename (an interruption loses nothing)."""
    write_atomically(path, lambda f: f.write(json.dumps(obj, indent=2).encode("utf-8")))


@no_grad()
def reconstruction_grid(model, x, path, value_range=None):
    """Originals (odd rows) above their reconstructions (even rows), 8 per row."""
    originals = x[:32]
    reconstructions = model(tensor(originals, device=parameter_device(model))).cpu().numpy()
    rows = []
    for start in range(0, len(originals), 8):
        rows.append(originals[start:start + 8])
        rows.append(reconstructions[start:start + 8])
    return plot.image_grid(np.concatenate(rows), path, nrow=8, value_range=value_range)


def grid_value_range(recipe):
    """(0, 1) for a Gaussian decoder, whose means may stray a little outside; else automatic."""
    return (0.0, 1.0) if recipe.likelihood == "gaussian" else None


def usable_device(name):
    """The Device for --device NAME; CommandError saying what is missing if it cannot run here."""
    why_not = devices.why_unavailable(name)
    if why_not:
        raise CommandError(f"--device {name}: not available here: {why_not}")
    return devices.device(name)
