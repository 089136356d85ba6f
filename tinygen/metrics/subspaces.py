"""PCA (the optimal linear autoencoder: lesson 02) and the principal angles between subspaces."""
import numpy as np

from ..devices import host_array
from .arrays import as_rows


def pca(X, k):
    """Principal components of X (N, D) -> mean (D,), components (k, D), explained_variance (k,).

    components are orthonormal rows, sorted by decreasing variance, each signed so that its entry
    of largest magnitude is positive (the SVD's signs are arbitrary). explained_variance[i] is the
    variance of the data along component i with ddof=0, i.e. np.var(codes[:, i]) and the i-th
    eigenvalue of the covariance (1/N) Xc^T Xc; the mean squared error (summed over D) of a k-term
    reconstruction is the sum of the discarded eigenvalues.
    """
    X = as_rows("pca", X)
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
    X = as_rows("pca_project", X)
    return (X - host_array(mean, np.float64)) @ host_array(components, np.float64).T


def pca_reconstruct(codes, mean, components):
    """Images (N, D) from codes (N, k), the mean (D,) and the components (k, D)."""
    codes = as_rows("pca_reconstruct", codes, "codes")
    return codes @ host_array(components, np.float64) + host_array(mean, np.float64)


def principal_angles(A, B):
    """Principal angles in radians, ascending, between the column spaces of A (D, p) and B (D, q).

    Returns min(p, q) angles in [0, pi/2]. Columns span the subspaces (they need not be
    orthonormal, but must be linearly independent): pass PCA's components (k, D) as components.T
    and a linear decoder's weight (D, k) as it is. Björck & Golub 1973: with A = Q_A R_A and
    B = Q_B R_B, the singular values of Q_A^T Q_B are the cosines of the angles. Through arccos,
    angles near 0 are accurate to about 1e-8 rad in float64.
    """
    A = as_rows("principal_angles", A, "A")
    B = as_rows("principal_angles", B, "B")
    if A.shape[0] != B.shape[0]:
        raise ValueError(
            f"principal_angles: A {A.shape} and B {B.shape} must have the same number of rows "
            "(the ambient dimension D; subspaces are spanned by the columns)"
        )
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)  # descending, so the angles ascend
    return np.arccos(np.clip(cosines, 0.0, 1.0))
