"""`tinygen score SAMPLES.npz`: the FID of samples against the MNIST test digits beside the
real-vs-real floor, their MNIST score, and their class histogram."""
import os
import shlex
import zipfile
import zlib

import numpy as np

from .. import mnist_classifier
from .common import mnist_inputs, usable_device
from .errors import CommandError
from .sample import SAMPLES_KEY

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


def run(args):
    device = usable_device(args.device)
    fake = _load_samples(args.samples)
    n = len(fake)
    test = mnist_inputs("test", args.data, quick=False, pixels=np.asarray)  # uint8 (N, 28, 28)
    training = mnist_inputs("train", args.data, quick=False, pixels=np.asarray)
    classifier = mnist_classifier.classifier_on(device)  # moved to the device once, if need be
    fake_features, fake_probs = mnist_classifier.classify(fake, classifier=classifier)
    test_features, test_probs = mnist_classifier.classify(test, classifier=classifier)
    fid = mnist_classifier.fid_from_features(fake_features, test_features)
    # The floor: n training digits against the same test digits (real_floor's draw).
    picked = mnist_classifier.real_floor_draw(len(training), n)
    n_real = len(picked)
    real_features, _ = mnist_classifier.classify(training[picked], classifier=classifier)
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
