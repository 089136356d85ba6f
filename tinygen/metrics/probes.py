"""How well scores or features separate classes: AUROC (anomaly scores, lesson 07) and a linear
probe (a softmax classifier trained on frozen features)."""
import numpy as np

from .. import random as _random
from ..autograd import no_grad
from ..data.loader import DataLoader
from ..devices import host_array
from ..nn.layers import Linear
from ..nn.losses import cross_entropy
from ..optim import Adam
from ..tensor import Tensor
from .arrays import as_rows


def auroc(scores, labels):
    """Area under the ROC curve of scores (N,) for labels (N,), 1 = positive (an anomaly).

    The probability that a random positive scores above a random negative, ties counting 1/2,
    computed by the rank-sum (Mann-Whitney U) formula with average ranks for tied scores.
    """
    scores = host_array(scores, np.float64).ravel()
    labels = host_array(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"auroc: {scores.size} scores but {labels.size} labels")
    if np.any(np.isnan(scores)):
        raise ValueError("auroc: scores contain nan")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError(f"auroc: labels must be 0 or 1, got values {np.unique(labels)[:10]}")
    positive = labels == 1
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"auroc: needs both classes, got {n_pos} positive(s) and {n_neg} negative(s)"
        )
    # Average rank (1-based) of each distinct score: the tied run occupies ranks start+1..start+c.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    ranks = (starts + (counts + 1) / 2.0)[inverse.ravel()]
    # U = R_pos - n_pos (n_pos + 1) / 2 counts the (positive, negative) pairs ordered correctly.
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def linear_probe(train_features, train_labels, test_features, test_labels, epochs=20, lr=1e-2,
                 weight_decay=1e-4, batch_size=256, seed=0, return_layer=False):
    """Test accuracy of softmax regression trained on frozen features (N, F) with labels (N,).

    Features are standardised with the training mean and std (a constant feature is left at 0).
    The layer starts at zero (the problem is convex) and trains with Adam on mini-batches shuffled
    with `seed`, so the result is repeatable and tinygen's global generator is left untouched.
    return_layer=True also returns the trained Linear(F, C), with the standardisation folded into
    its weights so that it takes raw features: returns (accuracy, layer).
    """
    x_train = as_rows("linear_probe", train_features, "train_features")
    x_test = as_rows("linear_probe", test_features, "test_features")
    y_train = host_array(train_labels).ravel().astype(np.int64)
    y_test = host_array(test_labels).ravel().astype(np.int64)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(
            f"linear_probe: {len(x_train)} train features but {len(y_train)} labels, "
            f"{len(x_test)} test features but {len(y_test)} labels"
        )
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"linear_probe: train features have {x_train.shape[1]} columns, test features "
            f"{x_test.shape[1]}"
        )
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0

    # Linear draws its initial weights from the global generator: restore its state afterwards.
    state = _random.generator().bit_generator.state
    layer = Linear(x_train.shape[1], n_classes)
    _random.generator().bit_generator.state = state
    layer.weight.data[...] = 0
    layer.bias.data[...] = 0

    optimizer = Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
    loader = DataLoader(((x_train - mean) / std, y_train), batch_size=batch_size, seed=seed)
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            cross_entropy(layer(x), y.data).backward()
            optimizer.step()

    with no_grad():
        logits = layer(Tensor((x_test - mean) / std)).data
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    if not return_layer:
        return accuracy
    # W ((x - m) / s) + b = (W / s) x + (b - W (m / s))
    w = layer.weight.data.astype(np.float64)
    layer.bias.data[...] = layer.bias.data - w @ (mean / std)
    layer.weight.data[...] = w / std
    return accuracy, layer
