"""Measurements for the lessons and benchmarks: PCA, subspace angles, PSNR, AUROC, a linear probe,
data completion, the Jacobian norm a contractive autoencoder penalises, and densities on a 1-D
grid (a kernel density estimate, a GAN's optimal discriminator, the Jensen-Shannon divergence).

    mean, comps, var = pca(x_train, 32)
    r = pca_reconstruct(pca_project(x_test, mean, comps), mean, comps)
    psnr(x_test, r)                           # dB, from the whole set's mean squared error
    auroc(errors, is_anomaly)                 # 0.5 = chance, 1.0 = every anomaly scores higher
    linear_probe(z_train, y_train, z_test, y_test)
    jensen_shannon(p_data, binned_gaussian_kde_1d(samples, grid, 0.1), dx)  # in [0, log 2]

Inputs are NumPy arrays or tinygen Tensors (their .data is used); outputs are NumPy arrays and
Python floats. linear_probe (with nn.functional.cross_entropy) and jacobian_frobenius_sq use
tinygen's autograd; the rest is plain NumPy, computed in float64.
"""
import math

import numpy as np

from . import random as _random
from .autograd import grad, no_grad
from .data.loader import DataLoader
from .devices import host_array
from .nn.layers import Linear
from .nn.losses import cross_entropy
from .optim import Adam
from .tensor import Tensor, as_tensor


def _rows(name, x, what="X"):
    """x as a float64 matrix (N, D); raises for any other number of dimensions."""
    x = host_array(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: {what} must be a matrix (N, D), got shape {x.shape}")
    return x


def _check_same_shape(name, a, b, a_name, b_name):
    if a.shape != b.shape:
        raise ValueError(f"{name}: {a_name} shape {a.shape} and {b_name} shape {b.shape} differ")


# ---- PCA and subspaces ---------------------------------------------------------------------------
def pca(X, k):
    """Principal components of X (N, D) -> mean (D,), components (k, D), explained_variance (k,).

    components are orthonormal rows, sorted by decreasing variance, each signed so that its entry
    of largest magnitude is positive (the SVD's signs are arbitrary). explained_variance[i] is the
    variance of the data along component i with ddof=0, i.e. np.var(codes[:, i]) and the i-th
    eigenvalue of the covariance (1/N) Xc^T Xc; the mean squared error (summed over D) of a k-term
    reconstruction is the sum of the discarded eigenvalues.
    """
    X = _rows("pca", X)
    n, d = X.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= min(n, d):
        raise ValueError(f"pca: k must be an integer in [1, min(N, D) = {min(n, d)}], got {k!r}")
    mean = X.mean(axis=0)
    Xc = X - mean
    if n > d:
        # Many more rows than columns (MNIST: 60,000 x 784): eigenvectors of the D x D covariance
        # (1/N) Xc^T Xc, several times faster than an SVD of the whole N x D matrix.
        eigenvalues, eigenvectors = np.linalg.eigh(Xc.T @ Xc / n)  # ascending order
        order = np.argsort(eigenvalues)[::-1][:k]
        components = eigenvectors[:, order].T
        explained_variance = np.maximum(eigenvalues[order], 0.0)
    else:
        # Xc = U S V^T  =>  covariance (1/N) Xc^T Xc = V diag(S^2 / N) V^T
        _, s, vt = np.linalg.svd(Xc, full_matrices=False)
        components = vt[:k]
        explained_variance = s[:k] ** 2 / n
    biggest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(k), biggest])
    components = components * signs[:, None]
    return mean, components, explained_variance


def pca_project(X, mean, components):
    """Codes of X (N, D) on the principal components (k, D) -> (N, k)."""
    X = _rows("pca_project", X)
    return (X - host_array(mean, np.float64)) @ host_array(components, np.float64).T


def pca_reconstruct(codes, mean, components):
    """Images (N, D) from codes (N, k), the mean (D,) and the components (k, D)."""
    codes = _rows("pca_reconstruct", codes, "codes")
    return codes @ host_array(components, np.float64) + host_array(mean, np.float64)


def principal_angles(A, B):
    """Principal angles in radians, ascending, between the column spaces of A (D, p) and B (D, q).

    Returns min(p, q) angles in [0, pi/2]. Columns span the subspaces (they need not be
    orthonormal, but must be linearly independent): pass PCA's components (k, D) as components.T
    and a linear decoder's weight (D, k) as it is. Björck & Golub 1973: with A = Q_A R_A and
    B = Q_B R_B, the singular values of Q_A^T Q_B are the cosines of the angles. Through arccos,
    angles near 0 are accurate to about 1e-8 rad in float64.
    """
    A = _rows("principal_angles", A, "A")
    B = _rows("principal_angles", B, "B")
    if A.shape[0] != B.shape[0]:
        raise ValueError(
            f"principal_angles: A {A.shape} and B {B.shape} must have the same number of rows "
            "(the ambient dimension D; subspaces are spanned by the columns)"
        )
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)  # descending, so the angles ascend
    return np.arccos(np.clip(cosines, 0.0, 1.0))


# ---- reconstruction quality ----------------------------------------------------------------------
def mse_per_pixel(x, r):
    """Mean of (x - r)^2 over every element; x, r of the same shape (N, ...)."""
    x = host_array(x, np.float64)
    r = host_array(r, np.float64)
    _check_same_shape("mse_per_pixel", x, r, "x", "r")
    return float(np.mean((x - r) ** 2))


def psnr(x, r, max_value=1.0):
    """Peak signal-to-noise ratio in dB of the whole set: 10 log10(max_value^2 / mse_per_pixel).

    x, r: (N, ...) of the same shape. The MSE is averaged over the whole set first (not a mean of
    per-image PSNRs), so MSE 0.0168 per pixel gives 17.75 dB. Identical sets give inf.
    """
    mse = mse_per_pixel(x, r)
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(max_value**2 / mse)


# ---- anomaly detection ---------------------------------------------------------------------------
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


# ---- linear probe --------------------------------------------------------------------------------
def linear_probe(train_features, train_labels, test_features, test_labels, epochs=20, lr=1e-2,
                 weight_decay=1e-4, batch_size=256, seed=0, return_layer=False):
    """Test accuracy of softmax regression trained on frozen features (N, F) with labels (N,).

    Features are standardised with the training mean and std (a constant feature is left at 0).
    The layer starts at zero (the problem is convex) and trains with Adam on mini-batches shuffled
    with `seed`, so the result is repeatable and tinygen's global generator is left untouched.
    return_layer=True also returns the trained Linear(F, C), with the standardisation folded into
    its weights so that it takes raw features: returns (accuracy, layer).
    """
    x_train = _rows("linear_probe", train_features, "train_features")
    x_test = _rows("linear_probe", test_features, "test_features")
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


# ---- data completion -----------------------------------------------------------------------------
def _mask(name, mask, shape, what="observed_mask"):
    """A boolean mask broadcast to shape; raises for other dtypes and shapes."""
    mask = host_array(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}: {what} must be boolean, got {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"{name}: {what} of shape {mask.shape} does not broadcast to {shape}"
        ) from None


def complete(reconstruct, x, observed_mask, steps=20, init=None):
    """Fill the missing pixels of x (N, D) by iterating a reconstruction -> completed (N, D).

    Start with each image's missing pixels set to the mean of its observed pixels (or to `init`,
    (N, D) or (D,), e.g. the mean image), then repeat `steps` times: keep the observed pixels of x,
    take the missing ones from reconstruct(current). reconstruct: a callable (N, D) float32 array
    -> (N, D) array (for a model, lambda a: model(tinygen.tensor(a)).data under tinygen.no_grad).
    observed_mask: boolean, True = observed, broadcastable to x's shape. x's missing pixels are
    never read. steps = 0 gives the starting fill. Returns float32.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"complete: steps must be an integer >= 0, got {steps!r}")
    x = host_array(x, np.float32)
    observed = _mask("complete", observed_mask, x.shape)
    if init is None:
        axes = tuple(range(1, x.ndim))
        count = observed.sum(axis=axes, keepdims=True)
        if np.any(count == 0):
            raise ValueError("complete: an image has no observed pixel; pass init")
        fill = np.where(observed, x, 0).sum(axis=axes, keepdims=True) / count
    else:
        fill = host_array(init, np.float32)
    current = np.where(observed, x, fill).astype(np.float32)
    for _ in range(steps):
        guess = host_array(reconstruct(current), np.float32)
        _check_same_shape("complete", guess, x, "reconstruct's output", "x")
        current = np.where(observed, x, guess)
    return current


def mean_image_fill(x, observed_mask, mean_image):
    """Baseline completion: observed pixels of x (N, D), missing ones from mean_image (D,)."""
    x = host_array(x, np.float32)
    observed = _mask("mean_image_fill", observed_mask, x.shape)
    return np.where(observed, x, host_array(mean_image, np.float32))


def masked_mse(x_true, x_filled, missing_mask):
    """Mean squared error over the missing pixels only (missing_mask True) of (N, D) arrays."""
    x_true = host_array(x_true, np.float64)
    x_filled = host_array(x_filled, np.float64)
    _check_same_shape("masked_mse", x_true, x_filled, "x_true", "x_filled")
    missing = _mask("masked_mse", missing_mask, x_true.shape, "missing_mask")
    if not missing.any():
        raise ValueError("masked_mse: missing_mask selects no pixel")
    return float(np.mean((x_true - x_filled)[missing] ** 2))


def bottom_half_mask(n, side=28):
    """Observed mask (n, side*side) hiding the bottom half: rows >= side // 2 are missing."""
    image = np.zeros((side, side), dtype=bool)
    image[: side // 2] = True
    return np.broadcast_to(image.reshape(1, -1), (n, side * side)).copy()


def random_block_mask(n, side=28, block=12, rng=None):
    """Observed mask (n, side*side) hiding one block x block square per image, placed at random.

    The square lies wholly inside the image. rng: a numpy Generator or a seed (None: drawn from
    tinygen's global generator, so tinygen.manual_seed makes it repeatable).
    """
    if not 1 <= block <= side:
        raise ValueError(f"random_block_mask: block must be in [1, side={side}], got {block}")
    if rng is None:
        rng = np.random.default_rng(int(_random.generator().integers(2**63)))
    rng = np.random.default_rng(rng)
    top = rng.integers(0, side - block + 1, size=n)
    left = rng.integers(0, side - block + 1, size=n)
    rows = np.arange(side)
    # (n, side, 1) & (n, 1, side): inside the block in both directions
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + block)
    in_cols = (rows >= left[:, None]) & (rows < left[:, None] + block)
    missing = in_rows[:, :, None] & in_cols[:, None, :]
    return ~missing.reshape(n, side * side)


# ---- contractive penalty -------------------------------------------------------------------------
def jacobian_frobenius_sq(encode, x):
    """Per-sample squared Frobenius norm of the encoder's Jacobian ||dz/dx||_F^2 -> (N,) float64.

    encode: a callable Tensor (N, D) -> Tensor (N, K); x: (N, D) array or Tensor. Exact: one
    backward pass per code unit k gives the rows dz_k/dx of every sample at once, which assumes
    samples do not interact (true for any encoder without batch statistics; put BatchNorm in eval).
    """
    data = host_array(x)
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    x = Tensor(data, requires_grad=True, dtype=data.dtype)
    z = encode(x)
    if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[0] != x.shape[0]:
        shape = getattr(z, "shape", type(z).__name__)
        raise ValueError(f"jacobian_frobenius_sq: encode must return a Tensor (N, K), got {shape}")
    total = np.zeros(x.shape[0])
    if not z.requires_grad:
        return total  # z does not depend on x
    for k in range(z.shape[1]):
        unit = np.zeros(z.shape, dtype=z.dtype)
        unit[:, k] = 1
        # ||J||_F^2 = sum_k ||dz_k/dx||^2
        (g,) = grad(z, x, grad_outputs=as_tensor(unit), allow_unused=True)
        if g is not None:
            rows = g.data.reshape(x.shape[0], -1).astype(np.float64)
            total += np.sum(rows**2, axis=1)
    return total


# ---- densities on a 1-D grid (a GAN's optimal discriminator) ------------------------------------
def _grid_density(name, p, what):
    """p as a float64 vector (K,) of non-negative, finite values; raises otherwise."""
    p = host_array(p, np.float64)
    if p.ndim != 1 or len(p) == 0:
        raise ValueError(f"{name}: {what} must be a vector (K,), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name}: {what} must be finite and non-negative")
    return p


def _kde_inputs(samples, grid, bandwidth, who):
    """samples and grid as flat arrays, once there are samples and the bandwidth is positive."""
    s = host_array(samples, np.float64).ravel()
    x = host_array(grid, np.float64).ravel()
    if len(s) == 0:
        raise ValueError(f"{who}: samples is empty")
    if not bandwidth > 0:
        raise ValueError(f"{who}: bandwidth must be positive, got {bandwidth!r}")
    return s, x


def gaussian_kde_1d(samples, grid, bandwidth, chunk=4096):
    """A Gaussian kernel density estimate of samples (M,), evaluated on grid (K,) -> (K,).

    p_hat(x) = (1/M) sum_i N(x; s_i, bandwidth^2): each sample spreads one M-th of the mass as a
    Gaussian of standard deviation `bandwidth`. The samples are taken `chunk` at a time, so that
    memory stays at chunk x K numbers.
    """
    s, x = _kde_inputs(samples, grid, bandwidth, "gaussian_kde_1d")
    total = np.zeros_like(x)
    for start in range(0, len(s), chunk):
        z = (x[None, :] - s[start:start + chunk, None]) / bandwidth  # (chunk, K)
        total += np.exp(-0.5 * z**2).sum(axis=0)
    return total / (len(s) * bandwidth * math.sqrt(2.0 * math.pi))


def binned_gaussian_kde_1d(samples, grid, bandwidth):
    """gaussian_kde_1d made fast for an evenly spaced grid (K,) -> (K,), by binning first.

    Each sample is moved to its nearest grid point (by at most half a step, negligible when the
    step is much smaller than the bandwidth), and the counts are smoothed with the Gaussian kernel
    cut at 6 bandwidths: one convolution of K numbers instead of M x K kernel evaluations.
    Samples beyond the grid's ends are left out, but still count in the 1 / M.
    """
    s, x = _kde_inputs(samples, grid, bandwidth, "binned_gaussian_kde_1d")
    step = (x[-1] - x[0]) / (len(x) - 1) if len(x) > 1 else 0.0
    if not step > 0 or not np.allclose(np.diff(x), step, rtol=1e-6, atol=0):
        raise ValueError("binned_gaussian_kde_1d: grid must be evenly spaced and increasing")
    index = np.rint((s - x[0]) / step).astype(np.int64)
    counts = np.bincount(index[(index >= 0) & (index < len(x))], minlength=len(x))
    half_width = int(math.ceil(6 * bandwidth / step))
    offsets = np.arange(-half_width, half_width + 1) * step
    kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2) / (bandwidth * math.sqrt(2.0 * math.pi))
    smoothed = np.convolve(counts, kernel)[half_width:half_width + len(x)]  # centred on x
    return smoothed / len(s)


def optimal_discriminator(p_data, p_model):
    """D*(x) = p_data(x) / (p_data(x) + p_model(x)), elementwise over a grid (K,) -> (K,).

    The discriminator that maximises the GAN value function against a fixed generator of density
    p_model. Where both densities are 0 no point is ever seen and D* is undefined; it is 1/2 there.
    """
    p = _grid_density("optimal_discriminator", p_data, "p_data")
    q = _grid_density("optimal_discriminator", p_model, "p_model")
    _check_same_shape("optimal_discriminator", p, q, "p_data", "p_model")
    total = p + q
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.5)


def jensen_shannon(p, q, dx=1.0):
    """JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, in nats.

    p and q are densities on an evenly spaced grid of step dx (K,), and the integrals are the sums
    times dx; with dx = 1 they are probability vectors. 0 log 0 counts as 0. The result lies in
    [0, log 2] when p and q each integrate to 1: 0 when they are equal, log 2 when they never
    overlap.
    """
    p = _grid_density("jensen_shannon", p, "p")
    q = _grid_density("jensen_shannon", q, "q")
    _check_same_shape("jensen_shannon", p, q, "p", "q")
    if not dx > 0:
        raise ValueError(f"jensen_shannon: dx must be positive, got {dx!r}")
    m = (p + q) / 2

    def kl_to_m(a):
        inside = a > 0  # where a > 0, m >= a / 2 > 0 too
        return float(np.sum(a[inside] * np.log(a[inside] / m[inside])) * dx)

    return 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q)


# ---- attributes measured from the pixels (for latent arithmetic) ------------------------------
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


# ---- scoring generated MNIST digits (with the shipped classifier; see mnist_classifier.py) -----
from .mnist_classifier import fid, mnist_score, quiz, real_floor  # noqa: E402,F401
