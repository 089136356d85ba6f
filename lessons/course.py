"""What every lesson shares: quick mode, where figures go, the MNIST it trains on.

A lesson is meant to be read top to bottom; this file keeps the plumbing out of its way.
    QUICK        True when TINYGEN_QUICK=1: a small sample and few steps (the tests use it)
    pick(f, q)   f in a full run, q in a quick one: epochs = pick(20, 1)
    figure(name) the path a figure is saved to: lessons/figures/ in a full run (committed with the
                 course), lessons/figures/quick/ in a quick one, or $TINYGEN_FIGURES when set;
                 in a notebook the figure is also shown under the cell that saved it
    mnist(split) MNIST images as float32 (N, 784) in [0, 1] and their labels
    encode(model, images), reconstruct(model, images)
                 an autoencoder's codes z = f(x) and reconstructions r = g(f(x)) of a NumPy batch,
                 as NumPy arrays (evaluation mode, no graph)

Ctrl-C stops a lesson run as a script with one line instead of a traceback (exit status 130).
Lessons do not checkpoint: a full run takes a few minutes, and its figures and the numbers its
text quotes come from one run from the start (lessons 09 and 12 also share out training time by
the clock, which no resumed run could repeat); so an interrupted lesson is simply run again.
"""
import os
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen.data import flatten, load_mnist, to_unit
from tinygen.interrupt import exit_quietly_on_ctrl_c

QUICK = os.environ.get("TINYGEN_QUICK") == "1"
HERE = Path(__file__).resolve().parent
FIGURES = Path(os.environ.get("TINYGEN_FIGURES")
               or (HERE / "figures" / "quick" if QUICK else HERE / "figures"))


exit_quietly_on_ctrl_c("lesson interrupted (Ctrl-C): figures written so far are in "
                       f"{FIGURES}; run it again to start over")


def pick(full, quick):
    """The full run's setting, or the quick run's when TINYGEN_QUICK=1."""
    return quick if QUICK else full


def figure(name):
    """Where to save the figure `name` (e.g. "03_codes.png"); creates the folder. In a notebook,
    the figure is shown under the cell once that cell has saved it."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / name
    _not_shown_yet[str(path)] = path.stat().st_mtime_ns if path.exists() else None
    return str(path)


# In a notebook the plots still go to PNG files (tinygen.plot draws without pyplot), so nothing
# would appear on the page: after each cell, IPython's post_execute event shows the figures the
# cell saved, as matplotlib's inline backend shows its own. {path: its mtime when figure() named
# it}: a file not rewritten since (an old run's) is not shown, and waits for a later cell.
_not_shown_yet = {}


def _show_saved_figures():
    from IPython.display import Image, display

    for path, mtime_before in list(_not_shown_yet.items()):
        if os.path.exists(path) and os.stat(path).st_mtime_ns != mtime_before:
            display(Image(filename=path))
            del _not_shown_yet[path]


def _notebook_kernel():
    """The IPython kernel running this lesson as a notebook, or None (a script, a plain shell)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


if _notebook_kernel() is not None:
    _notebook_kernel().events.register("post_execute", _show_saved_figures)


def mnist(split="train", n=None):
    """(images (N, 784) float32 in [0, 1], labels (N,) int64) of the "train" or "test" split.

    A full run uses the real MNIST (found through $TINYGEN_DATA or the cache, else downloaded;
    offline, tinygen falls back to its bundled subset of 10,000 train / 2,000 test digits and says
    so). A quick run always uses the bundled subset, so it needs no files and no network.
    n: keep the first n images (the bundled subset is shuffled, so every digit is there).
    """
    if QUICK:
        images, labels = load_mnist(split, subset="bundled")
    else:
        images, labels = load_mnist(split)
    images, labels = flatten(to_unit(images)), labels.astype(np.int64)
    if n is not None:
        images, labels = images[:n], labels[:n]
    return images, labels


def encode(model, images):
    """The codes z = f(x) of a batch of images, as a NumPy array: the model in evaluation mode
    (dropout off, batch norm on its running statistics), no graph recorded."""
    model.eval()
    with tg.no_grad():
        return model.encode(tg.tensor(images)).numpy()


def reconstruct(model, images):
    """The reconstructions r = g(f(x)) of a batch of images, as a NumPy array (evaluation mode,
    no graph recorded)."""
    model.eval()
    with tg.no_grad():
        return model(tg.tensor(images)).numpy()
