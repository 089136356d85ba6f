"""The `tinygen` command: train a model of the course, sample from a checkpoint, score samples.

    tinygen train ae                      # MNIST, downloaded once (offline: the bundled subset);
                                          # a couple of minutes on a laptop
    tinygen train ae --epochs 20 --data ~/mnist --out runs/my-ae
    tinygen train vae --likelihood gaussian   # the decoder outputs a Gaussian's mean and variance
    tinygen train ae > train.log 2>&1     # a log gets one line per epoch, no progress bars
    tinygen train dcgan --checkpoint-every 100   # Ctrl-C saves and says how to resume:
    tinygen train dcgan --resume runs/dcgan-20261128-120000/checkpoint.npz
    tinygen sample runs/my-ae/checkpoint.npz --n 64 --out samples.png
    tinygen sample runs/my-gan/checkpoint.npz --n 10000 --out samples.npz   # the raw samples
    tinygen score samples.npz             # FID beside the real-vs-real floor, MNIST score
    tinygen info                          # backends, and where MNIST was found
"""
import argparse
import json
import os
import shlex
import sys
import time
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import __version__, backend, devices, kernels, mnist_classifier, models, nn, plot
from .autograd import no_grad
from .checkpoint import load, write_atomically
from .data import load_mnist
from .data.loader import DataLoader
from .data.mnist import cache_dir, find_mnist
from .data.transforms import Dequantizer, dequantize, flatten, to_symmetric, to_unit
from .interrupt import TrainingInterrupted
from .models.vae import LIKELIHOODS, bits_per_dim
from .nn.module import parameter_device
from .optim import Adam
from .random import manual_seed
from .tensor import tensor
from .train import fit


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
        # lr 8e-4 as for the DCGAN: in bench/dcgan_recipe.py --model mlp (10 epochs) FID 116
        # against 1050 at the paper's 2e-4 (lesson 11)
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


def _mnist_inputs(split, data, quick, pixels=unit_vectors):
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


def _write_json(obj, path):
    """Write JSON to a temporary file beside path, then rename (an interruption loses nothing)."""
    write_atomically(path, lambda f: f.write(json.dumps(obj, indent=2).encode("utf-8")))


@no_grad()
def _reconstruction_grid(model, x, path, value_range=None):
    """Originals (odd rows) above their reconstructions (even rows), 8 per row."""
    originals = x[:32]
    reconstructions = model(tensor(originals, device=parameter_device(model))).cpu().numpy()
    rows = []
    for start in range(0, len(originals), 8):
        rows.append(originals[start:start + 8])
        rows.append(reconstructions[start:start + 8])
    return plot.image_grid(np.concatenate(rows), path, nrow=8, value_range=value_range)


def _value_range(recipe):
    """(0, 1) for a Gaussian decoder, whose means may stray a little outside; else automatic."""
    return (0.0, 1.0) if recipe.likelihood == "gaussian" else None


def _training_loader(recipe, data, quick, batch_size, seed, device=None):
    """The training images in mini-batches, with new noise for every batch where the recipe asks,
    put on device."""
    if recipe.train_transform is None:
        x_train = _mnist_inputs("train", data, quick, recipe.pixels)
        return DataLoader(x_train, batch_size, shuffle=True, seed=seed, device=device)
    x_train = _mnist_inputs("train", data, quick, flatten)  # uint8 rows, noised batch by batch
    return DataLoader(x_train, batch_size, shuffle=True, seed=seed,
                      transform=recipe.train_transform(seed), device=device)


def _add_bits_per_dim(history, dim):
    """history["val_bits_per_dim"]: the test -ELBO of dequantised 256-level pixels in bits/dim."""
    history["val_bits_per_dim"] = [bits_per_dim(loss, dim) for loss in history["val_loss"]]
    print(f"test -ELBO {history['val_loss'][-1]:.1f} nats per image = "
          f"{history['val_bits_per_dim'][-1]:.3f} bits/dim "
          f"((-ELBO / {dim} + log 256) / log 2; a uniform model: 8)")


# What `tinygen train` adds to fit's checkpoint: "recipe", "run" (the settings below) and this.
RUN_FORMAT = 1


class Interrupted(Exception):
    """Ctrl-C ended the command; the message says what was kept and how to go on (exit 130)."""


def _new_run_settings(args, recipe, quick):
    """The settings of a new run: the options given, else the recipe's."""
    return {"epochs": args.epochs or (1 if quick else recipe.epochs),
            "batch_size": args.batch_size or recipe.batch_size, "lr": args.lr or recipe.lr,
            # --lr sets every rate of the run, a GAN's two players' alike
            "lr_discriminator": None if args.lr else recipe.lr_discriminator,
            "seed": 0 if args.seed is None else args.seed, "likelihood": recipe.likelihood,
            "data": args.data, "quick": quick}


def _resumed_run_settings(args, quick):
    """(settings, state): the settings stored in the --resume checkpoint (only --epochs may
    change them), and the checkpoint itself."""
    path = args.resume
    try:
        state = load(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"--resume: {error}") from None
    if not isinstance(state, dict) or "recipe" not in state or "run" not in state:
        raise CommandError(f"--resume {path}: not a checkpoint of `tinygen train` (it names no "
                           "recipe and no run settings; those of older versions cannot resume)")
    if state["recipe"] != args.model:
        raise CommandError(f"--resume {path}: a checkpoint of the '{state['recipe']}' recipe, "
                           f"not '{args.model}'")
    if state.get("run_format", 1) > RUN_FORMAT:
        raise CommandError(f"--resume {path}: written by a newer tinygen (run format "
                           f"{state['run_format']}; this one reads up to {RUN_FORMAT})")
    settings = dict(state["run"])
    given = {"batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
             "likelihood": args.likelihood, "data": args.data, "quick": quick or None}
    for name, value in given.items():
        if value is not None and value != settings[name]:
            raise CommandError(f"--resume goes on with the run's own settings, and it was started "
                               f"with {name} {settings[name]!r}, not {value!r} (only --epochs "
                               "may change)")
    if args.epochs:
        settings["epochs"] = args.epochs
    return settings, state


def _resume_command(model_name, checkpoint):
    return f"tinygen train {model_name} --resume {shlex.quote(checkpoint)}"


def train(args):
    device = _usable_device(args.device)
    quick = args.quick or os.environ.get("TINYGEN_QUICK") == "1"
    if args.resume:
        settings, resumed_state = _resumed_run_settings(args, quick)
        out = args.out or os.path.dirname(args.resume) or "."
    else:
        settings = _new_run_settings(args, recipe_for(args.model, args.likelihood), quick)
        out = args.out or os.path.join("runs", f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    recipe = recipe_for(args.model, settings["likelihood"])
    if args.backend:
        backend.use(args.backend)
    manual_seed(settings["seed"])
    os.makedirs(out, exist_ok=True)
    loader = _training_loader(recipe, settings["data"], settings["quick"], settings["batch_size"],
                              settings["seed"], device)
    model = recipe.build().to(device)  # before its optimizers are made, as in PyTorch
    if recipe.adversarial:
        optimizer = models.gan_optimizers(model, lr=settings["lr"],
                                          lr_discriminator=settings.get("lr_discriminator"))
        val_loader = x_test = None
    else:
        optimizer = Adam(model.parameters(), lr=settings["lr"])
        x_test = _mnist_inputs("test", settings["data"], settings["quick"], recipe.pixels)
        val_loader = DataLoader(x_test, settings["batch_size"], shuffle=False, device=device)
    epochs = settings["epochs"]
    checkpoint = os.path.join(out, "checkpoint.npz")
    metrics_path = os.path.join(out, "metrics.json")
    print(f"tinygen train {args.model}: {recipe.description}; {loader.n_samples} training images, "
          f"{epochs} epochs, {_where_it_runs(device)}, writing to {out}"
          + (f"; resuming from {args.resume}" if args.resume else ""))
    # A GAN has no loss to watch fall: the same noise through G after every epoch shows progress.
    watch = model.sample_grid_saver(os.path.join(out, "epochs")) if recipe.adversarial else None
    extra = {"recipe": args.model, "tinygen": __version__, "run_format": RUN_FORMAT,
             "run": settings}
    if recipe.likelihood is not None:
        extra["likelihood"] = recipe.likelihood  # so that `tinygen sample` rebuilds this decoder

    def write_metrics(epochs_done, step, history):
        """metrics.json, right after each checkpoint: how far the run got, and its history."""
        _write_json({"model": args.model, "likelihood": recipe.likelihood, "epochs": epochs,
                     "epochs_done": epochs_done, "step": step, "history": history}, metrics_path)

    if args.resume:  # after a crash between the two renames, metrics.json catches up first
        write_metrics(resumed_state["epoch"], resumed_state.get("step", 0),
                      resumed_state["history"])
    try:
        history = fit(model, loader, optimizer, epochs, val_loader=val_loader,
                      checkpoint=checkpoint, resume=args.resume, progress=args.progress,
                      epoch_lines=True, on_epoch_end=watch, checkpoint_extra=extra,
                      checkpoint_every=args.checkpoint_every, on_checkpoint=write_metrics)
    except TrainingInterrupted as stop:
        raise Interrupted(f"{stop}. Resume with: {_resume_command(args.model, checkpoint)}")
    except KeyboardInterrupt:  # the second Ctrl-C: stopped at once
        if os.path.exists(checkpoint):
            raise Interrupted(f"stopped at once; the last checkpoint, {checkpoint}, is whole. "
                              f"Resume with: {_resume_command(args.model, checkpoint)}") from None
        raise Interrupted("stopped at once, before the first checkpoint: nothing to resume")
    except ValueError as error:  # a checkpoint that does not fit the model, a newer format
        if args.resume is None:
            raise
        raise CommandError(f"--resume {args.resume}: {error}") from None
    except OSError as error:  # a full disk, a folder gone: the checkpoint could not be written
        kept = (f"the last checkpoint, {checkpoint}, is whole. Resume with: "
                f"{_resume_command(args.model, checkpoint)}" if os.path.exists(checkpoint)
                else "no checkpoint was written")
        raise CommandError(f"{error}; {kept}") from None
    if recipe.likelihood == "gaussian":  # a density of dequantised pixels: bits/dim make sense
        _add_bits_per_dim(history, x_test.shape[1])
    write_metrics(len(history.get("seconds", [])), 0, history)
    plot.curves({k: v for k, v in history.items() if k != "seconds"},
                os.path.join(out, "curves.png"))
    model.eval()
    written = ["checkpoint.npz", "metrics.json", "curves.png"]
    if x_test is not None:
        _reconstruction_grid(model, x_test, os.path.join(out, "reconstructions.png"),
                             _value_range(recipe))
        written.append("reconstructions.png")
    if hasattr(model, "sample"):
        plot.image_grid(model.sample(64).cpu().numpy(), os.path.join(out, "samples.png"),
                        value_range=_value_range(recipe))
        written.append("samples.png")
    if watch is not None:
        written.append(f"epochs/samples_epoch_NNN.png (fixed noise, {len(watch.paths)} epochs)")
    print(f"done: {', '.join(written)} in {out}")


# Recipes whose network changed, and the name the old network goes by now: a checkpoint of the
# old network still samples (`tinygen train dcgan` trained the classic DCGAN until issue 23).
RENAMED_RECIPES = {"dcgan": "dcgan-classic"}


def _model_of_renamed_recipe(name, weights, path, error):
    """(model, recipe) of the recipe that took over the old network of `name`, if the weights fit
    it; CommandError otherwise (the error of loading them into today's `name`)."""
    old_name = RENAMED_RECIPES.get(name)
    if old_name is not None:
        model = RECIPES[old_name].build()
        try:
            model.load_state_dict(weights)
        except ValueError:
            pass
        else:
            print(f"{path} holds the network that `tinygen train {name}` trained before it "
                  f"changed, today's '{old_name}' recipe: sampling from that")
            return model, RECIPES[old_name]
    raise CommandError(f"{path} does not fit today's '{name}' recipe (was it written by another "
                       f"version of tinygen?): {error}") from None


SAMPLE_FORMATS = (".png", ".npz")  # `tinygen sample --out`: a picture, or the raw samples
SAMPLES_KEY = "samples"  # the array of a samples .npz: float32 (N, 1, 28, 28) in [0, 1]
_SAMPLE_CHUNK = 1000  # images generated at a time for a .npz (bounded memory)


def _model_value_range(recipe):
    """The pixel range of the model's data, read off its recipe: (-1, 1) for a tanh generator
    (its pixels turn a black image into -1), else (0, 1)."""
    black = recipe.pixels(np.zeros((1, 28, 28), np.uint8))
    return (-1.0, 1.0) if np.min(black) < 0 else (0.0, 1.0)


def _unit_samples(model, n, value_range):
    """n samples of the model as float32 (n, 1, 28, 28) in [0, 1], generated _SAMPLE_CHUNK at a
    time (sample records no graph)."""
    lo, hi = value_range
    out = np.empty((n, 1, 28, 28), np.float32)
    for start in range(0, n, _SAMPLE_CHUNK):
        count = min(_SAMPLE_CHUNK, n - start)
        x = model.sample(count).cpu().numpy().astype(np.float64).reshape(count, 1, 28, 28)
        out[start:start + count] = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return out


def _save_samples(samples, path):
    """np.savez(path, samples=...) to a temporary file beside path, then rename: an interrupted
    or failed write leaves no half-written file under the name."""
    try:
        write_atomically(path, lambda f: np.savez(f, **{SAMPLES_KEY: samples}))
    except OSError as error:  # a missing folder, a full disk
        raise CommandError(f"--out {path}: cannot write it ({error.strerror or error})") from None


def sample(args):
    device = _usable_device(args.device)
    suffix = os.path.splitext(args.out)[1].lower()
    if suffix not in SAMPLE_FORMATS:
        raise CommandError(f"--out {args.out}: give a .png (a grid of the images) or a .npz (the "
                           f"raw samples, for `tinygen score`), not {suffix or 'no suffix'}")
    try:
        state = load(args.checkpoint)
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    name = state.get("recipe") if isinstance(state, dict) else None
    if name not in RECIPES or "model" not in state:
        raise CommandError(f"{args.checkpoint} is not a checkpoint written by `tinygen train`")
    recipe = recipe_for(name, state.get("likelihood"))  # older checkpoints: the recipe's own
    model = recipe.build()
    try:
        model.load_state_dict(state["model"])
    except ValueError as error:
        model, recipe = _model_of_renamed_recipe(name, state["model"], args.checkpoint, error)
    model.to(device).eval()
    if suffix == ".npz":
        if not hasattr(model, "sample"):
            raise CommandError(f"{name} has no sampler (an autoencoder's codes have no prior), so "
                               "there are no samples to save; a VAE or a GAN has one")
        samples = _unit_samples(model, args.n, _model_value_range(recipe))
        _save_samples(samples, args.out)
        print(f"{args.n} samples from {name} written to {args.out} ('{SAMPLES_KEY}': float32 "
              f"{samples.shape} in [0, 1]); next: tinygen score {shlex.quote(args.out)}")
    elif hasattr(model, "sample"):
        images = model.sample(args.n).cpu().numpy()
        path = plot.image_grid(images, args.out, value_range=_value_range(recipe))
        print(f"{args.n} samples from {name} written to {path}")
    else:
        x = _mnist_inputs("test", args.data, quick=False, pixels=recipe.pixels)[:args.n]
        path = _reconstruction_grid(model, x, args.out, _value_range(recipe))
        print(f"{name} has no sampler (an autoencoder's codes have no prior): "
              f"test images above their reconstructions written to {path}")


# `tinygen score`: the FID fits a Gaussian to the classifier's 128-d features, whose covariance
# needs more images than dimensions to be of full rank.
MIN_SCORED = 129
_RANGE_TOLERANCE = 1e-3  # how far outside [0, 1] a saved pixel may stray (round-off); clipped


def _load_samples(path):
    """The images of a samples .npz as float32 (N, 784) in [0, 1]; CommandError if unusable."""
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such file" if not os.path.exists(path)
                           else f"{path}: not a file")
    if not zipfile.is_zipfile(path):
        raise CommandError(f"{path}: not an .npz archive (write one with `tinygen sample "
                           "CHECKPOINT --out samples.npz`, or np.savez)")
    try:  # opened here: np.load leaves its own file open when a damaged zip fails
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
            if SAMPLES_KEY not in archive.files:
                raise CommandError(_no_samples_array(path, archive.files))
            x = archive[SAMPLES_KEY]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise CommandError(f"{path}: cannot read '{SAMPLES_KEY}' ({error})") from None
    if x.dtype not in (np.float32, np.float64):
        raise CommandError(f"{path}: '{SAMPLES_KEY}' has dtype {x.dtype}; expected float32 or "
                           "float64 pixels in [0, 1]")
    if x.shape[1:] not in ((1, 28, 28), (28, 28), (784,)):
        raise CommandError(f"{path}: '{SAMPLES_KEY}' has shape {x.shape}; expected MNIST images "
                           "(N, 1, 28, 28), (N, 28, 28) or (N, 784)")
    n = len(x)
    if n < MIN_SCORED:
        raise CommandError(f"{path}: {n} images, and the FID needs at least {MIN_SCORED}: it fits "
                           "a Gaussian to 128-dimensional classifier features, whose covariance "
                           "needs more images than dimensions (thousands are better)")
    if not np.all(np.isfinite(x)):
        raise CommandError(f"{path}: '{SAMPLES_KEY}' holds NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -_RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
        hint = " (tanh outputs x in [-1, 1]: save (x + 1) / 2)" if lo < 0 else ""
        raise CommandError(f"{path}: '{SAMPLES_KEY}' spans [{lo:.4g}, {hi:.4g}]; expected pixels "
                           f"in [0, 1]{hint}")
    return np.clip(x.reshape(n, 784), 0.0, 1.0).astype(np.float32)


def _no_samples_array(path, names):
    """Why the .npz `path`, holding the arrays `names`, has nothing to score, and what to do."""
    if "structure" in names:  # tinygen.checkpoint's entry
        return (f"{path} is a checkpoint, not samples; save samples with `tinygen sample "
                f"{shlex.quote(path)} --n 10000 --out samples.npz`")
    found = ", ".join(repr(name) for name in names[:5]) + (", ..." if len(names) > 5 else "")
    return (f"{path}: no '{SAMPLES_KEY}' array (it holds {found or 'none'}); save the images "
            f"with np.savez(path, {SAMPLES_KEY}=images)")


def score(args):
    device = _usable_device(args.device)
    fake = _load_samples(args.samples)
    n = len(fake)
    test = _mnist_inputs("test", args.data, quick=False, pixels=np.asarray)  # uint8 (N, 28, 28)
    training = _mnist_inputs("train", args.data, quick=False, pixels=np.asarray)
    fake_features, fake_probs = mnist_classifier.classify(fake, device=device)
    test_features, test_probs = mnist_classifier.classify(test, device=device)
    fid = mnist_classifier.fid_from_features(fake_features, test_features)
    # The floor: n training digits against the same test digits, drawn as real_floor draws them.
    n_real = min(n, len(training))
    picked = np.sort(np.random.default_rng(0).choice(len(training), size=n_real, replace=False))
    real_features, _ = mnist_classifier.classify(training[picked], device=device)
    floor = mnist_classifier.fid_from_features(real_features, test_features)
    mean, std = mnist_classifier.mnist_score_from_probs(fake_probs)
    real_mean, real_std = mnist_classifier.mnist_score_from_probs(test_probs)
    real = f"{n_real} real training digits"
    if n_real < n:
        real = f"all {real} (fewer than the {n} samples)"
    print(f"FID {fid:.2f} of the {n} samples against the {len(test)} MNIST test digits "
          "(lower is better)")
    print(f"FID {floor:.2f} of {real} against the same test digits: the floor at this N")
    print(f"MNIST score {mean:.2f} ± {std:.2f} over 10 splits (real test digits {real_mean:.2f} "
          f"± {real_std:.2f}; 1 to 10, higher is better)")
    _print_class_histogram(mnist_classifier.class_counts(fake_probs),
                           mnist_classifier.class_counts(test_probs))


def _print_class_histogram(counts, test_counts):
    """The samples per digit (the classifier's most likely class) beside the test digits' shares,
    a bar each, and the digits under-represented among the samples."""
    share, test_share = counts / counts.sum(), test_counts / test_counts.sum()
    print("digits among the samples (the classifier's most likely class), beside the test digits':")
    for digit in range(10):
        bar = "#" * round(share[digit] * 200)  # 10% = 20 marks
        print(f"  {digit}: {counts[digit]:6d}  {100 * share[digit]:5.1f}%  (test "
              f"{100 * test_share[digit]:4.1f}%)  {bar}")
    rare = mnist_classifier.under_represented(counts, test_counts)
    rule = (f"below {mnist_classifier.UNDER_REPRESENTED:.2f} of their share among the test "
            "digits")
    if rare:
        listed = ", ".join(f"{d} ({100 * share[d]:.1f}% against {100 * test_share[d]:.1f}%)"
                           for d in rare)
        print(f"under-represented ({rule}): {listed}")
    else:
        print(f"under-represented ({rule}): none")


def _usable_device(name):
    """The Device for --device NAME; CommandError saying what is missing if it cannot run here."""
    why_not = devices.why_unavailable(name)
    if why_not:
        raise CommandError(f"--device {name}: not available here: {why_not}")
    return devices.device(name)


def _where_it_runs(device):
    """'on cpu, backend numba' or 'on cuda:0 (CuPy arrays, cuda kernels)', for the first line."""
    if device == devices.CPU:
        return f"on cpu, backend {backend.current()}"
    lib = devices.library(device.type)
    return f"on {device} ({lib.name} arrays, {lib.kernels} kernels)"


def info(args):
    print(f"tinygen {__version__}, numpy {np.__version__}")
    print("devices (tinygen train/sample/score --device):")
    for name in devices.DEVICE_TYPES:
        why_not = devices.why_unavailable(name)
        print(f"  {name:6s} " + ("available" if not why_not else f"not available: {why_not}"))
    print(f"backend in use on the cpu: {backend.current()}")
    for entry in backend.status():
        if not entry.available:
            print(f"  {entry.name:6s} ({entry.device}) not available: {entry.why_not}")
        elif entry.simulated:
            print(f"  {entry.name:6s} ({entry.device}) available, in a simulator (slow)")
        else:
            print(f"  {entry.name:6s} ({entry.device}) available")
    for split in ("train", "test"):
        folder = find_mnist(split)
        where = f"found in {folder}" if folder else "not found: it will be downloaded on first use"
        print(f"MNIST {split}: {where} (search order: TINYGEN_DATA, then {cache_dir()})")


class CommandError(Exception):
    """A problem to report in one line, without a traceback."""


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygen", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train a model of the course on MNIST")
    p.add_argument("model", choices=sorted(RECIPES), help="which model")
    p.add_argument("--epochs", type=int, help="default: the model's recipe (1 with --quick)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float,
                   help="Adam's learning rate, both players' for a GAN (default: the recipe's)")
    p.add_argument("--likelihood", choices=LIKELIHOODS,
                   help="the decoder's p(x|z), for the vae: bernoulli (the default) or gaussian "
                        "(a mean and a log-variance per pixel, trained on dequantised pixels)")
    p.add_argument("--seed", type=int, help="default: 0")
    p.add_argument("--backend", choices=kernels.names(),
                   help="conv kernels for the CPU (default: the fastest)")
    _add_device_option(p, "train on")
    p.add_argument("--data", default=None,
                   help="folder with the MNIST IDX files, or 'bundled' for the packaged subset "
                        "(default: search TINYGEN_DATA and the cache, then download)")
    p.add_argument("--out", help="output folder (default: runs/MODEL-<timestamp>)")
    p.add_argument("--quick", action="store_true", help="a tiny run (also TINYGEN_QUICK=1)")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="go on from a checkpoint this command wrote (same settings; --epochs may "
                        "raise the total), writing beside it unless --out says otherwise")
    p.add_argument("--checkpoint-every", type=_positive_int, metavar="STEPS",
                   help="also checkpoint every STEPS steps within an epoch (a crash then loses at "
                        "most that many; default: at epoch ends only)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on or off (default: on when stderr is a terminal)")
    p.set_defaults(run=train)

    p = commands.add_parser("sample", help="images from a checkpoint written by `tinygen train`")
    p.add_argument("checkpoint")
    p.add_argument("--n", type=_positive_int, default=64, help="how many (default: 64)")
    p.add_argument("--out", default="samples.png",
                   help="a .png: a grid of the images (default: samples.png); a .npz: the raw "
                        f"samples for `tinygen score`, array '{SAMPLES_KEY}', float32 "
                        "(N, 1, 28, 28) in [0, 1], written atomically")
    p.add_argument("--data", default=None, help="MNIST folder or 'bundled' (for reconstructions)")
    _add_device_option(p, "generate on")
    p.set_defaults(run=sample)

    p = commands.add_parser(
        "score", help="FID and MNIST score of samples saved by `tinygen sample --out FILE.npz`",
        description="Print the FID of the samples against the MNIST test digits, beside the "
                    "real-vs-real floor (as many real training digits against the same test "
                    "digits), and their MNIST score (the Inception Score with tinygen's MNIST "
                    "classifier), one line each.")
    p.add_argument("samples", help=f"an .npz with an array '{SAMPLES_KEY}': floats in [0, 1] of "
                                   "shape (N, 1, 28, 28), (N, 28, 28) or (N, 784), "
                                   f"N >= {MIN_SCORED}")
    p.add_argument("--data", default=None,
                   help="folder with the MNIST IDX files, or 'bundled' for the packaged subset "
                        "(default: search TINYGEN_DATA and the cache, then download)")
    _add_device_option(p, "run the classifier on")
    p.set_defaults(run=score)

    p = commands.add_parser("info", help="version, backends, where MNIST is")
    p.set_defaults(run=info)
    return parser


def _add_device_option(p, what):
    p.add_argument("--device", choices=devices.DEVICE_TYPES, default="cpu",
                   help=f"where to {what}: cpu (the default) or cuda (a GPU, with the [cuda] "
                        "extra installed; `tinygen info` says whether it is usable)")


def _show_warning_on_one_line(message, category, filename, lineno, file=None, line=None):
    """Print a warning as `tinygen: warning: <message>`, without the source line Python adds."""
    text = str(message).removeprefix("tinygen: ")  # tinygen's own warnings name it already
    print(f"tinygen: warning: {text}", file=sys.stderr if file is None else file)


@contextmanager
def _warnings_on_one_line():
    """Show warnings as one line each while the command runs; Python's own display afterwards."""
    python_showwarning = warnings.showwarning
    warnings.showwarning = _show_warning_on_one_line
    try:
        yield
    finally:
        warnings.showwarning = python_showwarning


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def main(argv=None):
    """Run the `tinygen` command with argv (default: sys.argv[1:]); returns the exit status:
    0, 2 for an error (one line, no traceback), 130 for Ctrl-C (as shells count it)."""
    args = build_parser().parse_args(argv)
    try:
        with _warnings_on_one_line():
            args.run(args)
    except CommandError as error:
        print(f"tinygen: error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"tinygen: {stop}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before training started, or in sample / info
        print("tinygen: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
