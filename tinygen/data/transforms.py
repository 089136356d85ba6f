"""Turn images into training inputs: scale, flatten, binarise, dequantise.

    x = transforms.flatten(transforms.to_unit(images))   # (N, 28, 28) uint8 -> (N, 784) in [0, 1]
    loader = DataLoader(x, 128, transform=transforms.Binarizer(seed=0))  # new {0, 1} each epoch
    loader = DataLoader(flatten(images), 128, transform=transforms.Dequantizer(seed=0))
                                                          # (pixel + u) / 256, new u each epoch

Every function takes images either as uint8 in [0, 255] (as MNIST is stored) or as floats already
in [0, 1]; anything else is an error that says which (dequantisation takes uint8 only: it needs the
256 levels). All return NumPy arrays, float32.
"""
import copy

import numpy as np

from .. import random as _random


def _intensities(images, who):
    """images as float32 intensities in [0, 1]: uint8 is divided by 255, floats are checked."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(
            f"{who}: expected uint8 images in [0, 255] or floats in [0, 1], "
            f"got dtype {images.dtype}"
        )
    if images.size:
        lo, hi = float(np.min(images)), float(np.max(images))
        if not (lo >= 0.0 and hi <= 1.0):  # also false for NaN
            raise ValueError(
                f"{who}: float images must lie in [0, 1], got values in [{lo}, {hi}] "
                "(pass uint8 images in [0, 255] as they are, not as floats)"
            )
    return images.astype(np.float32)


def to_unit(images):
    """Pixel intensities in [0, 1] (x / 255 for uint8): any shape -> the same shape, float32."""
    return _intensities(images, "to_unit")


def to_symmetric(images):
    """Pixel intensities in [-1, 1] (2 x / 255 - 1), for tanh outputs: same shape, float32."""
    return 2.0 * _intensities(images, "to_symmetric") - 1.0


def flatten(images):
    """One row per image: (N, ...) -> (N, prod(...)), e.g. (N, 28, 28) -> (N, 784)."""
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"flatten: expected images of shape (N, ...), got shape {images.shape}")
    return images.reshape(len(images), -1)


def binarize_static(images, threshold=0.5):
    """1 where the intensity (in [0, 1]) is above threshold, else 0: same shape, float32.

    The same {0, 1} images every epoch. uint8 images are compared as x / 255.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"binarize_static: threshold must be in [0, 1], got {threshold!r}")
    p = _intensities(images, "binarize_static")
    return (p > threshold).astype(np.float32)


def binarize_dynamic(images, rng=None):
    """Each pixel drawn as Bernoulli(intensity in [0, 1]), anew on every call: same shape, float32.

    Salakhutdinov & Murray 2008 binarised MNIST by such sampling; resampling every time a batch
    is used ("dynamic binarisation", as in Burda et al. 2016, IWAE) acts as data augmentation and
    keeps a Bernoulli likelihood honest. rng: a numpy Generator, or None for tinygen's global one.
    """
    p = _intensities(images, "binarize_dynamic")
    if rng is None:
        rng = _random.generator()
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(
            "binarize_dynamic: rng must be a numpy.random.Generator or None, "
            f"got {type(rng).__name__}"
        )
    # P(u < p) = p for u ~ U[0, 1)
    return (rng.random(p.shape) < p).astype(np.float32)


class _RandomTransform:
    """A transform with its own generator: seeded on creation, its place in the stream saved by
    state_dict (a resumed run then draws the same noise for the same batches)."""

    def __init__(self, seed=None):
        if seed is None:
            seed = int(_random.generator().integers(2**63))
        self.rng = np.random.default_rng(seed)

    def state_dict(self):
        return {"rng": copy.deepcopy(self.rng.bit_generator.state)}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])


class Binarizer(_RandomTransform):
    """Dynamic binarisation as a callable with its own generator, for DataLoader(transform=...).

    Each call draws new {0, 1} images, so every epoch sees a different binarisation; the same
    seed gives the same draws. seed=None seeds it from tinygen's global generator.
    """

    def __call__(self, images):
        """images (B, ...) uint8 or floats in [0, 1] -> (B, ...) float32 in {0, 1}."""
        return binarize_dynamic(images, self.rng)

    def __repr__(self):
        return "Binarizer()"


# Below 1 in float32: (255 + u) / 256 for u just under 1 would round up to 1.0.
_BELOW_ONE = np.nextafter(np.float32(1.0), np.float32(0.0))


def _generator(rng, who):
    """rng itself, or tinygen's global generator when rng is None."""
    if rng is None:
        return _random.generator()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who}: rng must be a numpy.random.Generator or None, "
                        f"got {type(rng).__name__}")
    return rng


def dequantize(images, rng=None):
    """x = (pixel + u) / 256 with u ~ U[0, 1) per pixel, drawn anew on every call: uint8 images
    -> the same shape, float32 in [0, 1).

    Each of the 256 levels k becomes the interval [k / 256, (k + 1) / 256), filled evenly. A
    density model of x then cannot pile unbounded density on one exact value (a pixel that is
    always 0). For an image of D pixels, its discrete probability P(k) is the model's mass on the
    image's cube of side 1/256, and by Jensen's inequality E_u[-log p(x)] + D log 256 bounds
    -log P(k) from above, per image (not pixel by pixel; Theis et al. 2016, "A note on the
    evaluation of generative models"; lesson 08b derives it). rng: a numpy Generator, or None for
    tinygen's global one.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"dequantize: expected uint8 images with levels 0..255, got dtype "
                        f"{images.dtype} (dequantise the stored pixels, before scaling to [0, 1])")
    u = _generator(rng, "dequantize").random(images.shape)
    x = ((images + u) / 256.0).astype(np.float32)
    return np.minimum(x, _BELOW_ONE)


class Dequantizer(_RandomTransform):
    """Dequantisation as a callable with its own generator, for DataLoader(transform=...).

    Each call draws new noise, so every epoch sees the pixels at new places inside their bins; the
    same seed gives the same draws. seed=None seeds it from tinygen's global generator.
    """

    def __call__(self, images):
        """images (B, ...) uint8 -> (B, ...) float32 in [0, 1), (pixel + u) / 256."""
        return dequantize(images, self.rng)

    def __repr__(self):
        return "Dequantizer()"
