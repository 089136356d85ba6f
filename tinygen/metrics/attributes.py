"""Attributes measured from the pixels (ink, slant), for latent arithmetic (lesson 08)."""
import numpy as np

from ..devices import host_array


def ink(images):
    """Mean pixel intensity per image, (N,): thick strokes have more ink than thin ones."""
    x = host_array(images, np.float64)
    return x.reshape(len(x), -1).mean(axis=1)


def slant(images, side=28):
    """The shear of each digit, (N,): cov(column, row) / var(row) of the pixel coordinates
    weighted by intensity. 0 is upright; positive leans right (its top is further right)."""
    x = host_array(images, np.float64).reshape(-1, side, side)
    rows, cols = np.mgrid[0:side, 0:side].astype(np.float64)
    up = side - 1 - rows  # y grows upwards, so a positive slant means leaning right
    mass = x.sum(axis=(1, 2))
    mass = np.where(mass > 0, mass, 1.0)
    mean_y = (x * up).sum(axis=(1, 2)) / mass
    mean_x = (x * cols).sum(axis=(1, 2)) / mass
    dy = up[None] - mean_y[:, None, None]
    dx = cols[None] - mean_x[:, None, None]
    cov_xy = (x * dx * dy).sum(axis=(1, 2)) / mass
    var_y = (x * dy * dy).sum(axis=(1, 2)) / mass
    return cov_xy / np.where(var_y > 0, var_y, 1.0)
