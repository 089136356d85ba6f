"""The `tinygen` command line: its parser (one sub-command per module of this package) and main."""
import argparse
import sys
import warnings
from contextlib import contextmanager

from .. import devices, kernels
from ..models.vae import LIKELIHOODS
from . import info, sample, score, train
from .errors import CommandError, Interrupted
from .recipes import RECIPES
from .sample import SAMPLES_KEY
from .score import MIN_SCORED

DESCRIPTION = ("The `tinygen` command: train a model of the course, sample from a checkpoint, "
               "score samples.")


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygen", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train a model of the course on MNIST")
    p.add_argument("model", choices=sorted(RECIPES), help="which model")
    p.add_argument("--epochs", type=_positive_int,
                   help="default: the model's recipe (1 with --quick)")
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=_positive_float,
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
    p.set_defaults(run=train.run)

    p = commands.add_parser("sample", help="images from a checkpoint written by `tinygen train`")
    p.add_argument("checkpoint")
    p.add_argument("--n", type=_positive_int, default=64, help="how many (default: 64)")
    p.add_argument("--out", default="samples.png",
                   help="a .png: a grid of the images (default: samples.png); a .npz: the raw "
                        f"samples for `tinygen score`, array '{SAMPLES_KEY}', float32 "
                        "(N, 1, 28, 28) in [0, 1], written atomically")
    p.add_argument("--data", default=None, help="MNIST folder or 'bundled' (for reconstructions)")
    _add_device_option(p, "generate on")
    p.set_defaults(run=sample.run)

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
    p.set_defaults(run=score.run)

    p = commands.add_parser("info", help="version, backends, where MNIST is")
    p.set_defaults(run=info.run)
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


def _positive_float(text):
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


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
