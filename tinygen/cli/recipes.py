"""The recipes of `tinygen train NAME`: how each model of the course is built and trained, and
how MNIST's pixels are turned into its inputs.

The measured choices behind the recipes (learning rates, epochs, networks) are in
ARCHITECTURE.md and the lessons; the comments here point there rather than repeat figures.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import models, nn
from ..data.transforms import Dequantizer, dequantize, flatten, to_symmetric, to_unit
from .errors import CommandError


def unit_vectors(images):
    """MNIST images, uint8 (N, 28, 28), as float32 rows (N, 784) in [0, 1]: the autoencoders'."""
    return flatten(to_unit(images))


def dequantized_vectors(images, seed=0):
    """MNIST images as float32 rows (N, 784) of (pixel + u) / 256, u ~ U[0, 1): one fixed draw of
    the noise (for the test set; training draws new noise for every batch)."""
    return flatten(dequantize(images, np.random.default_rng(seed)))


def symmetric_vectors(images):
    """MNIST images as float32 rows (N, 784) in [-1, 1]: the scale of a tanh generator's output."""
    return flatten(to_symmetric(images))


def symmetric_images(images):
    """MNIST images as float32 (N, 1, 28, 28) in [-1, 1]: one channel, for convolutional GANs."""
    return to_symmetric(images).reshape(-1, 1, 28, 28)


@dataclass
class Recipe:
    """How `tinygen train NAME` builds and trains one model."""

    build: Callable  # () -> Module with loss(x), or with train_step (adversarial)
    epochs: int
    lr: float  # Adam's learning rate (a GAN's generator's, and its discriminator's unless below)
    batch_size: int = 128
    description: str = ""
    pixels: Callable = unit_vectors  # uint8 images (N, 28, 28) -> the model's float32 input
    adversarial: bool = False  # a GAN: two optimizers, no validation loss, no reconstructions
    lr_discriminator: float = None  # a GAN's discriminator's rate where it differs from lr
    likelihood: str = None  # the decoder's p(x|z), for a model that has one (the VAE)
    # seed -> a transform that draws new noise for every training batch of flat uint8 images
    # (dequantisation); None: the training images go through `pixels` once, like the test images.
    train_transform: Callable = None


def _encoder(code_activation=None, code=32):
    """The MLP encoder 784-256-code of the autoencoder recipes,
    optionally ending in an activation."""
    encoder = models.mlp([784, 256, code])
    if code_activation is not None:
        encoder.append(code_activation)
    return encoder


def _decoder(code=32):
    return models.mlp([code, 256, 784])


RECIPES = {
    "ae": Recipe(lambda: models.Autoencoder(_encoder(), _decoder()), epochs=20, lr=1e-3,
                 description="under-complete MLP autoencoder 784-256-32-256-784, BCE loss"),
    "conv-ae": Recipe(lambda: models.conv_autoencoder(32), epochs=10, lr=1e-3,
                      description="convolutional autoencoder (two stride-2 convs, code 32)"),
    "sparse-ae": Recipe(
        lambda: models.SparseAutoencoder(_encoder(nn.ReLU(), code=256), _decoder(code=256),
                                         l1=0.6),
        epochs=20, lr=1e-3,
        description="sparse autoencoder: over-complete ReLU code of 256, lambda sum |z_i| = 0.6"),
    "denoising-ae": Recipe(
        lambda: models.DenoisingAutoencoder(_encoder(), _decoder(), noise="gaussian", level=0.5),
        epochs=20, lr=1e-3, description="denoising autoencoder: Gaussian noise sigma 0.5"),
    "contractive-ae": Recipe(
        lambda: models.ContractiveAutoencoder(_encoder(nn.Sigmoid()), _decoder(), lam=1.0,
                                              penalty="projection", n_projections=4),
        epochs=20, lr=1e-3,
        description="contractive autoencoder: sigmoid code, lam ||dz/dx||^2 (4 projections)"),
    "vae": Recipe(lambda: models.mlp_vae(784, 400, 20), epochs=10, lr=1e-3,
                  description="VAE 784-400-20 (pytorch/examples), Bernoulli decoder, "
                              "-ELBO in nats", likelihood="bernoulli"),
    "gan": Recipe(
        # lr 8e-4 as for the classic DCGAN, measured with bench/dcgan_recipe.py --model mlp:
        # ARCHITECTURE.md, "Data, models and files", and lesson 11
        lambda: models.mlp_gan(100),
        epochs=30, lr=8e-4, batch_size=64, pixels=symmetric_vectors, adversarial=True,
        description="MLP GAN 100-256-512-784 / 784-512-256-1, k = 1, non-saturating"),
    "dcgan": Recipe(
        # measured: lesson 13 ("More capacity, against the rule") and ARCHITECTURE.md
        lambda: models.dcgan(100, architecture="infogan", ema_decay=0.999, ema_warmup=True,
                             ema_batch_norm="recompute"),
        epochs=3, lr=1e-3, lr_discriminator=2e-4, batch_size=128, pixels=symmetric_images,
        adversarial=True,
        description="DCGAN with a fully connected layer of 1,024 on each side (InfoGAN's MNIST "
                    "network), Adam G 1e-3 / D 2e-4, beta1 0.5, batch 128; samples from G's "
                    "moving average"),
    "dcgan-classic": Recipe(
        # the notes' rules to the letter (lesson 13's first network), the default until the
        # capacity screen of issue 23: see ARCHITECTURE.md
        lambda: models.dcgan(100), epochs=6, lr=8e-4, batch_size=64, pixels=symmetric_images,
        adversarial=True,
        description="DCGAN, two (transposed) convs on each side, Adam 8e-4, beta1 0.5"),
}


# `tinygen train NAME --likelihood L`: the recipe NAME with another decoder likelihood.
LIKELIHOOD_RECIPES = {
    ("vae", "gaussian"): Recipe(
        lambda: models.mlp_vae(784, 400, 20, likelihood="gaussian", mean_activation="sigmoid"),
        epochs=10, lr=1e-3,
        description="VAE 784-400-20, Gaussian decoder (a sigmoid mean and a log-variance per "
                    "pixel) on dequantised pixels (pixel + u) / 256; -ELBO in nats and bits/dim",
        pixels=dequantized_vectors, likelihood="gaussian", train_transform=Dequantizer),
}


def recipe_for(name, likelihood=None):
    """The recipe NAME, or its variant with the decoder likelihood `likelihood` (None: its own)."""
    recipe = RECIPES[name]
    if likelihood is None or likelihood == recipe.likelihood:
        return recipe
    if recipe.likelihood is None:
        takers = sorted(n for n, r in RECIPES.items() if r.likelihood is not None)
        raise CommandError(f"--likelihood: the {name} recipe has no decoder likelihood to choose "
                           f"(only {', '.join(takers)} has one)")
    variant = LIKELIHOOD_RECIPES.get((name, likelihood))
    if variant is None:
        variants = {other for owner, other in LIKELIHOOD_RECIPES if owner == name}
        offered = sorted({recipe.likelihood} | variants)
        raise CommandError(f"--likelihood {likelihood}: the {name} recipe offers "
                           f"{', '.join(offered)}")
    return variant


# Recipes whose network changed, and the name the old network goes by now: a checkpoint of the
# old network still samples (`tinygen train dcgan` trained the classic DCGAN until issue 23).
RENAMED_RECIPES = {"dcgan": "dcgan-classic"}


def pixel_range(recipe):
    """The pixel range of the model's data, read off its recipe: (-1, 1) for a tanh generator
    (its pixels turn a black image into -1), else (0, 1)."""
    black = recipe.pixels(np.zeros((1, 28, 28), np.uint8))
    return (-1.0, 1.0) if np.min(black) < 0 else (0.0, 1.0)
