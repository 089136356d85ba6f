"""A small MNIST classifier that ships trained, and the sample-quality scores built on it.

    from tinygen import mnist_classifier as mc
    clf = mc.load_classifier()          # trained weights from tinygen/mnist_classifier.npz
    mc.fid(real, fake)                  # Fréchet distance of 128-d features; 0: same statistics
    mc.mnist_score(fake)                # Inception Score with this classifier: 1 (one class) .. 10
    mc.real_floor()                     # what real images score against real images
    mc.quiz(real, fake, "quiz.png")     # can you tell which digits the computer drew?

FID (Heusel et al. 2017) and the Inception Score (Salimans et al. 2016) were defined with the
Inception network on ImageNet; on MNIST a small CNN trained on the digits takes its place, as is
common practice, so the numbers are comparable between models scored here and not with papers
that used another classifier. Always print the real-vs-real floor (real_floor) beside a model's
score: no model can be expected to beat the test set.

Images are NumPy arrays or Tensors of shape (N, 784), (N, 28, 28) or (N, 1, 28, 28): uint8 in
[0, 255], or floats in value_range, (0, 1) by default; pass value_range=(-1, 1) for tanh outputs.
bench/train_mnist_classifier.py trains the classifier and writes the weights file.
"""
import copy
import functools
from pathlib import Path

import numpy as np

from . import devices, nn
from .autograd import no_grad
from .checkpoint import load
from .nn.losses import cross_entropy
from .nn.module import parameter_device
from .tensor import Tensor

WEIGHTS = Path(__file__).parent / "mnist_classifier.npz"
FEATURES = 128  # the size of the penultimate layer, which FID compares
PIXEL_MEAN, PIXEL_STD = 0.1307, 0.3081  # of MNIST's training pixels in [0, 1]
_BATCH = 500  # images per forward pass when scoring (bounded memory, no graph)


class MNISTClassifier(nn.Module):
    """A CNN for 28 x 28 digits: (N, 784) or (N, 1, 28, 28) in [0, 1] -> logits (N, 10).

    Pixels are first standardised with the training set's mean and standard deviation (better
    conditioned than [0, 1], so it trains faster). Three stride-2 convolutions halve the image
    28 -> 14 -> 7 -> 4; the flattened (32, 4, 4) map feeds a 128-unit layer whose activations are
    the features FID compares. The last convolution narrows to 32 channels so that the shipped
    weights stay small (~135k parameters, about 540 kB in float32).
    """

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),  # (N, 784) -> (N, 1, 28, 28)
            nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(),  # (N, 32, 28, 28)
            nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),  # (N, 32, 14, 14)
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),  # (N, 64, 7, 7)
            nn.Conv2d(64, 32, 3, 2, 1), nn.ReLU(),  # (N, 32, 4, 4)
            nn.Flatten(),  # (N, 512)
            nn.Linear(32 * 4 * 4, FEATURES), nn.ReLU(),  # (N, 128)
        )
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x):
        """The penultimate activations: images (N, 784) or (N, 1, 28, 28) -> (N, 128)."""
        if x.ndim == 4:
            x = x.reshape((x.shape[0], 28 * 28))
        return self.body((x - PIXEL_MEAN) / PIXEL_STD)

    def forward(self, x):
        """Logits (N, 10) of images (N, 784) or (N, 1, 28, 28) in [0, 1]."""
        return self.head(self.features(x))

    def loss(self, x, y):
        """(mean cross-entropy, {"accuracy": fraction of argmax logits equal to y})."""
        logits = self(x)
        labels = np.asarray(getattr(y, "data", y)).astype(np.int64)
        accuracy = float(np.mean(np.argmax(logits.data, axis=1) == labels))
        return cross_entropy(logits, labels), {"accuracy": accuracy}


@functools.lru_cache(maxsize=1)
def _cached_classifier(path):
    if not Path(path).exists():
        raise FileNotFoundError(
            f"load_classifier: the trained weights {path} are missing; they ship with tinygen "
            "(setup.py's package_data) and bench/train_mnist_classifier.py rebuilds them"
        )
    state = load(path)
    model = MNISTClassifier()
    model.load_state_dict(state["model"])
    model.eval()
    model.metadata = state.get("metadata", {})
    return model


def load_classifier(path=None):
    """The trained MNISTClassifier (eval mode, loaded once and cached) from the shipped weights.

    path: another weights file written by bench/train_mnist_classifier.py (default: WEIGHTS).
    The model's `metadata` holds the test accuracy, epochs and date of its training.
    """
    return _cached_classifier(str(path if path is not None else WEIGHTS))


def _unit_images(images, value_range, who):
    """images as float32 (N, 784) in [0, 1]: uint8 / 255, floats mapped from value_range."""
    x = np.asarray(getattr(images, "data", images))
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 3:
        x = x.reshape(len(x), -1)
    if x.ndim != 2 or x.shape[1] != 28 * 28:
        raise ValueError(f"{who}: expected images (N, 784), (N, 28, 28) or (N, 1, 28, 28), "
                         f"got shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{who}: got no images (shape {x.shape})")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{who}: images must be uint8 or floats, got dtype {x.dtype}")
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"{who}: value_range must be (lo, hi) with lo < hi, got {value_range}")
    return ((x.astype(np.float64) - lo) / (hi - lo)).astype(np.float32)


def classifier_on(device=None, classifier=None):
    """classifier (default: the shipped one) on device: itself if it is there (or device is
    None), else a copy moved there, so that the cached one stays where it is. Move it once and
    pass it to several classify calls."""
    classifier = classifier if classifier is not None else load_classifier()
    if device is None or parameter_device(classifier) == devices.device(device):
        return classifier
    return copy.deepcopy(classifier).to(device)


def _outputs(images, value_range, classifier, who, device=None):
    """(features (N, 128) float64, softmax probabilities (N, 10) float64), in batches, no graph;
    the network runs on device (default: where the classifier is, the CPU for the bundled one)."""
    x = _unit_images(images, value_range, who)
    classifier = classifier_on(device, classifier)
    where = parameter_device(classifier)
    feats, probs = [], []
    with no_grad():
        for start in range(0, len(x), _BATCH):
            h = classifier.features(Tensor(x[start:start + _BATCH], device=where))
            logits = classifier.head(h).cpu().numpy().astype(np.float64)
            feats.append(h.cpu().numpy().astype(np.float64))
            logits -= logits.max(axis=1, keepdims=True)  # softmax without overflow
            p = np.exp(logits)
            probs.append(p / p.sum(axis=1, keepdims=True))
    return np.concatenate(feats), np.concatenate(probs)


def classify(images, value_range=(0, 1), classifier=None, device=None):
    """(features (N, 128), class probabilities p(y|x) (N, 10)), both float64, from one pass of
    the classifier: what FID, the MNIST score and the class histogram each need. device: where
    the classifier runs ("cuda"); the results come back to the host."""
    return _outputs(images, value_range, classifier, "classify", device)


def features(images, value_range=(0, 1), classifier=None):
    """The classifier's 128-d penultimate features of images -> (N, 128) float64."""
    return _outputs(images, value_range, classifier, "features")[0]


def predict(images, value_range=(0, 1), classifier=None):
    """The classifier's digit for each image -> (N,) int64 (argmax of the logits)."""
    return np.argmax(_outputs(images, value_range, classifier, "predict")[1], axis=1)


def _symmetric_sqrt(s):
    """The square root of a symmetric PSD matrix (D, D); round-off negative eigenvalues -> 0."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma_a, sigma_b):
    """Tr((S_a S_b)^(1/2)) for covariance matrices S_a, S_b (D, D), with NumPy alone.

    S_a S_b is not symmetric, but it is similar to the symmetric PSD matrix
    M = S_a^(1/2) S_b S_a^(1/2) (conjugate by S_a^(1/2)), so both have the same eigenvalues,
    all >= 0, and Tr((S_a S_b)^(1/2)) = sum_i sqrt(lambda_i(M)). eigh on the symmetric M is
    stable and real, unlike a general eigensolver or matrix sqrt of S_a S_b; round-off can make a
    few lambda_i slightly negative (singular covariances: dead ReLU units, fewer images than
    dimensions), so they are clipped at 0.
    """
    root_a = _symmetric_sqrt(np.asarray(sigma_a, dtype=np.float64))
    m = root_a @ np.asarray(sigma_b, dtype=np.float64) @ root_a
    m = (m + m.T) / 2  # exactly symmetric for eigvalsh
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(m), 0.0, None)).sum())


def frechet_distance(mu_a, sigma_a, mu_b, sigma_b):
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)): the squared 2-Wasserstein distance
    between the Gaussians N(mu_a, S_a) and N(mu_b, S_b); mu (D,), sigma (D, D)."""
    diff = np.asarray(mu_a, dtype=np.float64) - np.asarray(mu_b, dtype=np.float64)
    trace = np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt_product(sigma_a, sigma_b)
    return float(max(diff @ diff + trace, 0.0))  # >= 0 in exact arithmetic


def _gaussian(feats):
    """Mean (D,) and covariance (D, D) (ddof=1, as FID's reference code) of features (N, D)."""
    if len(feats) < 2:
        raise ValueError(f"fid: need at least 2 images per set to fit a covariance, "
                         f"got {len(feats)}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def fid(images_a, images_b, value_range=(0, 1), value_range_b=None, classifier=None):
    """Fréchet distance between Gaussians fitted to the classifier features of two image sets.

    images_a, images_b: (N, 784), (N, 28, 28) or (N, 1, 28, 28), any N >= 2 each. The estimate
    is biased upward, strongly for small sets: two halves of 1,000 test digits each score about
    121, 10,000 training digits against the 10,000 test digits 5.6 (real_floor); compare models
    only at equal N, beside that floor. value_range applies to both sets unless
    value_range_b is given for the second. Returns a float >= 0; 0 for identical statistics.
    """
    fa = _outputs(images_a, value_range, classifier, "fid")[0]
    fb = _outputs(images_b, value_range_b or value_range, classifier, "fid")[0]
    return fid_from_features(fa, fb)


def fid_from_features(features_a, features_b):
    """The FID of two sets of classifier features (N, 128) (fid, once the features are known)."""
    return frechet_distance(*_gaussian(features_a), *_gaussian(features_b))


def mnist_score(images, splits=10, value_range=(0, 1), classifier=None):
    """The Inception Score with this classifier: exp(E_x KL(p(y|x) || p(y))) -> (mean, std).

    The images are cut into `splits` equal parts (the remainder is left out); p(y) is the mean of
    p(y|x) over each part, and the mean and standard deviation are over the parts (Salimans et al.
    2016). 1 when every image gets the same class distribution; at most 10, reached by confident
    predictions spread evenly over the ten digits.
    """
    probs = _outputs(images, value_range, classifier, "mnist_score")[1]
    return mnist_score_from_probs(probs, splits)


def mnist_score_from_probs(probs, splits=10):
    """mnist_score once the class probabilities p(y|x) (N, 10) are known -> (mean, std)."""
    if isinstance(splits, bool) or not isinstance(splits, (int, np.integer)) \
            or not 1 <= splits <= len(probs):
        raise ValueError(f"mnist_score: splits must be an integer in [1, {len(probs)}] "
                         f"(the number of images), got {splits!r}")
    size = len(probs) // splits
    scores = []
    for i in range(splits):
        p = probs[i * size:(i + 1) * size]
        p_y = p.mean(axis=0, keepdims=True)
        # KL(p(y|x) || p(y)) = sum_y p log(p / p_y), with 0 log 0 = 0
        kl = np.sum(p * (np.log(np.maximum(p, 1e-300)) - np.log(np.maximum(p_y, 1e-300))), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# A digit is under-represented among samples when its share is below this fraction of its share
# among the real test digits (which are not spread evenly: 11.4% ones, 8.9% fives).
UNDER_REPRESENTED = 2 / 3


def class_counts(probs):
    """How many images the classifier gives to each digit (its most likely class) -> (10,)."""
    return np.bincount(np.argmax(probs, axis=1), minlength=10)


def under_represented(counts, reference_counts, fraction=UNDER_REPRESENTED):
    """The digits whose share of `counts` is below `fraction` of their share of
    `reference_counts` (the test digits'), as a list, rarest (relative to the reference) first."""
    share = np.asarray(counts, np.float64) / np.sum(counts)
    reference = np.asarray(reference_counts, np.float64) / np.sum(reference_counts)
    ratio = share / reference
    return [int(d) for d in np.argsort(ratio, kind="stable") if ratio[d] < fraction]


def real_floor_draw(available, n, seed=0):
    """The rows of the training set that the real-vs-real floor uses: min(n, available) drawn
    without replacement with np.random.default_rng(seed), in increasing order."""
    n = min(int(n), available)
    return np.sort(np.random.default_rng(seed).choice(available, size=n, replace=False))


def real_floor(n=10000, seed=0, root=None, classifier=None, subset=None):
    """The real-vs-real reference: {"fid": FID of n training images vs the 10,000 test images,
    "mnist_score": (mean, std) of the test images, "n_train": n}.

    A generative model's FID is to be read against this floor (finite-sample bias and the
    train/test difference), not against 0. The data come from load_mnist (root, $TINYGEN_DATA,
    the cache), else the bundled subset (with its warning): then n <= 10,000 and 2,000 test digits;
    subset="bundled" asks for the bundled subset directly (no search, no download).
    n training digits are drawn without replacement with np.random.default_rng(seed).
    """
    from .data import load_mnist
    train, _ = load_mnist("train", root=root, subset=subset)
    test, _ = load_mnist("test", root=root, subset=subset)
    picked = real_floor_draw(len(train), n, seed)
    n = len(picked)
    return {
        "fid": fid(train[picked], test, classifier=classifier),
        "mnist_score": mnist_score(test, classifier=classifier),
        "n_train": n,
        "n_test": len(test),
    }


def quiz(real, fake, path, n=16, seed=0, value_range=(0, 1), value_range_fake=None):
    """Save a grid of n real and n generated digits in random order to path (PNG), and the answer
    key to path with suffix .answers.txt; returns the key: a sorted list of the grid positions
    (0-based, row by row) that hold generated digits.

    real, fake: at least n images each (the first n are used), shapes as fid's.
    """
    from .plot import image_grid
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"quiz: n must be a positive integer, got {n!r}")
    real = _unit_images(real, value_range, "quiz")
    fake = _unit_images(fake, value_range_fake or value_range, "quiz")
    for name, x in (("real", real), ("fake", fake)):
        if len(x) < n:
            raise ValueError(f"quiz: need n = {n} {name} images, got {len(x)}")
    order = np.random.default_rng(seed).permutation(2 * n)
    images = np.concatenate([real[:n], fake[:n]])[order]
    key = sorted(int(i) for i in np.flatnonzero(order >= n))  # positions showing a fake
    path = Path(path)
    ncol = int(np.ceil(np.sqrt(2 * n)))  # a square-ish grid
    image_grid(np.clip(images, 0, 1), path, nrow=ncol, value_range=(0, 1))
    cells = ", ".join(f"{i} (row {i // ncol + 1}, column {i % ncol + 1})" for i in key)
    answers = path.with_suffix(".answers.txt")
    answers.write_text(
        f"Answer key for {path.name} ({2 * n} digits, {ncol} per row, seed {seed}).\n"
        f"Computer-generated cells, counted from 0 row by row:\n{cells}\n",
        encoding="utf-8",
    )
    return key
