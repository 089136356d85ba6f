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


Each command is a module of this package (train.py, sample.py, score.py, info.py), beside the
recipes (recipes.py), what the commands share (common.py, errors.py) and the parser (parser.py).
"""
from .errors import CommandError, Interrupted  # noqa: F401
from .parser import build_parser, main  # noqa: F401
from .recipes import (  # noqa: F401
    LIKELIHOOD_RECIPES,
    RECIPES,
    Recipe,
    dequantized_vectors,
    recipe_for,
    symmetric_images,
    symmetric_vectors,
    unit_vectors,
)
from .score import MIN_SCORED  # noqa: F401
