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

One module per topic: subspaces.py (PCA, principal angles), reconstruction.py (MSE, PSNR, the
contractive penalty's Jacobian norm), probes.py (AUROC, linear probe), completion.py (filling in
missing pixels), density.py (KDE, D*, Jensen-Shannon), attributes.py (ink, slant); FID and the
MNIST score come from tinygen.mnist_classifier. Every name is importable from tinygen.metrics.
"""
from ..mnist_classifier import fid, mnist_score, quiz, real_floor  # noqa: F401
from .attributes import ink, slant  # noqa: F401
from .completion import (  # noqa: F401
    bottom_half_mask,
    complete,
    masked_mse,
    mean_image_fill,
    random_block_mask,
)
from .density import (  # noqa: F401
    binned_gaussian_kde_1d,
    gaussian_kde_1d,
    jensen_shannon,
    optimal_discriminator,
)
from .probes import auroc, linear_probe  # noqa: F401
from .reconstruction import jacobian_frobenius_sq, mse_per_pixel, psnr  # noqa: F401
from .subspaces import pca, pca_project, pca_reconstruct, principal_angles  # noqa: F401
