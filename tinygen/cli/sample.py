"""`tinygen sample CHECKPOINT`: images from a checkpoint written by `tinygen train`, as a picture
(.png) or as the raw samples (.npz) that `tinygen score` reads."""
import os
import shlex

import numpy as np

from .. import plot
from ..checkpoint import load, write_atomically
from .common import grid_value_range, mnist_inputs, reconstruction_grid, usable_device
from .errors import CommandError
from .recipes import RECIPES, RENAMED_RECIPES, pixel_range, recipe_for


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


def run(args):
    device = usable_device(args.device)
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
        samples = _unit_samples(model, args.n, pixel_range(recipe))
        _save_samples(samples, args.out)
        print(f"{args.n} samples from {name} written to {args.out} ('{SAMPLES_KEY}': float32 "
              f"{samples.shape} in [0, 1]); next: tinygen score {shlex.quote(args.out)}")
    elif hasattr(model, "sample"):
        images = model.sample(args.n).cpu().numpy()
        path = plot.image_grid(images, args.out, value_range=grid_value_range(recipe))
        print(f"{args.n} samples from {name} written to {path}")
    else:
        x = mnist_inputs("test", args.data, quick=False, pixels=recipe.pixels)[:args.n]
        path = reconstruction_grid(model, x, args.out, grid_value_range(recipe))
        print(f"{name} has no sampler (an autoencoder's codes have no prior): "
              f"test images above their reconstructions written to {path}")
