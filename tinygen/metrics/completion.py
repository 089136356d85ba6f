"""Filling in missing pixels: iterated reconstruction (lesson 09), the mean-image baseline, the
error on the missing pixels, and the masks."""
import numpy as np

from .. import random as _random
from ..devices import host_array
from .arrays import check_same_shape


def _mask(name, mask, shape, what="observed_mask"):
    """A boolean mask broadcast to shape; raises for other dtypes and shapes."""
    mask = host_array(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}: {what} must be boolean, got {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"{name}: {what} of shape {mask.shape} does not broadcast to {shape}"
        ) from None


def complete(reconstruct, x, observed_mask, steps=20, init=None):
    """Fill the missing pixels of x (N, D) by iterating a reconstruction -> completed (N, D).

    Start with each image's missing pixels set to the mean of its observed pixels (or to `init`,
    (N, D) or (D,), e.g. the mean image), then repeat `steps` times: keep the observed pixels of x,
    take the missing ones from reconstruct(current). reconstruct: a callable (N, D) float32 array
    -> (N, D) array (for a model, lambda a: model(tinygen.tensor(a)).data under tinygen.no_grad).
    observed_mask: boolean, True = observed, broadcastable to x's shape. x's missing pixels are
    never read. steps = 0 gives the starting fill. Returns float32.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"complete: steps must be an integer >= 0, got {steps!r}")
    x = host_array(x, np.float32)
    observed = _mask("complete", observed_mask, x.shape)
    if init is None:
        axes = tuple(range(1, x.ndim))
        count = observed.sum(axis=axes, keepdims=True)
        if np.any(count == 0):
            raise ValueError("complete: an image has no observed pixel; pass init")
        fill = np.where(observed, x, 0).sum(axis=axes, keepdims=True) / count
    else:
        fill = host_array(init, np.float32)
    current = np.where(observed, x, fill).astype(np.float32)
    for _ in range(steps):
        guess = host_array(reconstruct(current), np.float32)
        check_same_shape("complete", guess, x, "reconstruct's output", "x")
        current = np.where(observed, x, guess)
    return current


def mean_image_fill(x, observed_mask, mean_image):
    """Baseline completion: observed pixels of x (N, D), missing ones from mean_image (D,)."""
    x = host_array(x, np.float32)
    observed = _mask("mean_image_fill", observed_mask, x.shape)
    return np.where(observed, x, host_array(mean_image, np.float32))


def masked_mse(x_true, x_filled, missing_mask):
    """Mean squared error over the missing pixels only (missing_mask True) of (N, D) arrays."""
    x_true = host_array(x_true, np.float64)
    x_filled = host_array(x_filled, np.float64)
    check_same_shape("masked_mse", x_true, x_filled, "x_true", "x_filled")
    missing = _mask("masked_mse", missing_mask, x_true.shape, "missing_mask")
    if not missing.any():
        raise ValueError("masked_mse: missing_mask selects no pixel")
    return float(np.mean((x_true - x_filled)[missing] ** 2))


def bottom_half_mask(n, side=28):
    """Observed mask (n, side*side) hiding the bottom half: rows >= side // 2 are missing."""
    image = np.zeros((side, side), dtype=bool)
    image[: side // 2] = True
    return np.broadcast_to(image.reshape(1, -1), (n, side * side)).copy()


def random_block_mask(n, side=28, block=12, rng=None):
    """Observed mask (n, side*side) hiding one block x block square per image, placed at random.

    The square lies wholly inside the image. rng: a numpy Generator or a seed (None: drawn from
    tinygen's global generator, so tinygen.manual_seed makes it repeatable).
    """
    if not 1 <= block <= side:
        raise ValueError(f"random_block_mask: block must be in [1, side={side}], got {block}")
    if rng is None:
        rng = np.random.default_rng(int(_random.generator().integers(2**63)))
    rng = np.random.default_rng(rng)
    top = rng.integers(0, side - block + 1, size=n)
    left = rng.integers(0, side - block + 1, size=n)
    rows = np.arange(side)
    # (n, side, 1) & (n, 1, side): inside the block in both directions
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + block)
    in_cols = (rows >= left[:, None]) & (rows < left[:, None] + block)
    missing = in_rows[:, :, None] & in_cols[:, None, :]
    return ~missing.reshape(n, side * side)
