# %% [markdown]
# # 02: A linear autoencoder learns PCA's subspace
#
# The course notes say: *when the decoder is linear and $L$ is the mean squared error, the
# autoencoder is PCA.* In this lesson we check that claim on MNIST, and find out exactly what it
# means. A linear autoencoder trained with the squared error ends up with the same
# $k$-dimensional subspace as PCA's top $k$ principal components, and reconstructs every image as
# well as PCA does; but its code uses a different basis of that subspace, a mixture of the
# principal components rather than the components themselves.
#
# Why care? PCA is the one dimensionality reduction we can solve exactly, with linear algebra.
# Knowing that the simplest autoencoder lands on the same answer by gradient descent tells us
# what the nonlinear autoencoders of the other lessons add: everything they do better than PCA
# comes from their nonlinearities.
#
# Runs in about 15 s on a 2-core CPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 2 s.

# %% [markdown]
# ## Two ways to keep $k$ numbers per image
#
# **PCA.** Centre the data with its mean $\mu$ and form the covariance
# $\Sigma = \frac{1}{N}\sum_n (x_n - \mu)(x_n - \mu)^\top$. Its eigenvectors $u_1, u_2, \dots$
# (the principal components) with eigenvalues $\lambda_1 \ge \lambda_2 \ge \dots$ are the
# directions in which the images vary most. Keep the top $k$, $U_k = [u_1 \dots u_k]$
# ($784 \times k$), and encode and decode with
#
# $$z = U_k^\top (x - \mu), \qquad r = \mu + U_k z = \mu + U_k U_k^\top (x - \mu).$$
#
# $r$ is the orthogonal projection of $x$ on the affine subspace $\mu + \mathrm{span}(U_k)$. Of all
# $k$-dimensional subspaces, this one has the smallest mean squared error, and that error is the
# variance PCA leaves out: $\frac{1}{N}\sum_n \lVert x_n - r_n \rVert^2 = \sum_{i > k} \lambda_i$.
#
# **A linear autoencoder.** An encoder and a decoder that are each one linear layer,
#
# $$z = f(x) = W_e x + b_e, \qquad r = g(z) = W_d z + b_d,$$
#
# with $W_e$ of shape $k \times 784$ and $W_d$ of shape $784 \times k$, trained on the squared
# error $L(x, g(f(x))) = \lVert x - r \rVert^2$ (summed over the pixels, averaged over a batch).
# Nothing tells it about covariances or eigenvectors.
#
# The claim (Baldi and Hornik, 1989): at the minimum of this loss, the columns of $W_d$ span
# exactly PCA's subspace $\mathrm{span}(U_k)$, and $W_d W_e$ is PCA's projection $U_k U_k^\top$.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import metrics, models, plot
from tinygen.data import DataLoader
from tinygen.train import fit

from course import QUICK, figure, mnist, pick, reconstruct

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The data and PCA
#
# We train on 20,000 MNIST training images (4,000 in the quick run) and fit PCA on the *same*
# images, so that both methods solve the same problem. $k = 16$.

# %%
K = 16
N_TRAIN = pick(20000, 4000)

x_train, _ = mnist("train", n=N_TRAIN)
x_test, _ = mnist("test", n=pick(None, 1000))
print(f"train {x_train.shape}, test {x_test.shape}" + ("   (quick mode)" if QUICK else ""))

pca_mean, pca_components, pca_variances = metrics.pca(x_train, K)  # (784,), (K, 784), (K,)
U = pca_components.T  # U_k, (784, K): one principal component per column

# The smallest possible training error: the variance that the top K components leave out
total_variance = x_train.astype(np.float64).var(axis=0).sum()  # sum of all the eigenvalues
pca_train_error = total_variance - pca_variances.sum()
print(f"total variance {total_variance:.2f}; the top {K} components keep "
      f"{pca_variances.sum():.2f} ({100 * pca_variances.sum() / total_variance:.0f} %)")
print(f"PCA-{K} training error: {pca_train_error:.3f} per image (squared error summed over pixels)")
print("eigenvalues 1, 2, 3 ...", np.round(pca_variances[:3], 2), "...",
      np.round(pca_variances[-3:], 3))

# %% [markdown]
# ## The linear autoencoder
#
# `models.LinearAutoencoder(784, K)` is the autoencoder above: `encoder` and `decoder` are
# `nn.Linear` layers, the output is not squashed by a sigmoid, and the loss is the squared error.
# A `Linear` layer stores its weight as (out, in), so the decoder's weight is $W_d$, $784 \times k$,
# one column per code unit.

# %%
linear_ae = models.LinearAutoencoder(784, K)
print(linear_ae)
print("W_e:", linear_ae.encoder.weight.shape, "  W_d:", linear_ae.decoder.weight.shape)

# %% [markdown]
# ## Measuring the distance between two subspaces
#
# Two $k$-dimensional subspaces $A$ and $B$ of $\mathbb{R}^{784}$ can be compared by their
# **principal angles** $\theta_1 \le \dots \le \theta_k$. Take the pair of unit vectors, one in
# each subspace, that make the smallest angle: that is $\theta_1$. Then the smallest angle among
# vectors orthogonal to the first pair gives $\theta_2$, and so on. In practice: with orthonormal
# bases $Q_A$ and $Q_B$, the cosines $\cos\theta_i$ are the singular values of $Q_A^\top Q_B$.
#
# All angles are $0$ when the subspaces are the same, whichever bases we use to describe them.
# The largest angle $\theta_k$ is the one that matters: if it is small, *every* direction of one
# subspace lies close to the other. `metrics.principal_angles` takes the two bases as columns.

# %%
def angles_to_pca(model):
    """Principal angles (degrees, ascending) between span(W_d) and span(U_k)."""
    decoder_columns = model.decoder.weight.data  # W_d, (784, K)
    return np.degrees(metrics.principal_angles(decoder_columns, U))


def error_per_image(images, reconstructions):
    """Mean over images of ||x - r||^2 (squared error summed over the 784 pixels)."""
    difference = images.astype(np.float64) - reconstructions
    return float((difference**2).sum(axis=1).mean())


angles = angles_to_pca(linear_ae)
print(f"before training: largest angle {angles[-1]:.1f} deg, smallest {angles[0]:.1f} deg")
# A random 16-dim subspace of a 784-dim space is almost orthogonal to any given one.

# %% [markdown]
# ## Training
#
# Adam on mini-batches of 64, starting at a learning rate of $3 \cdot 10^{-3}$ that we shrink by a
# factor 0.88 after every epoch: the large steps find the subspace fast, and the small ones at the
# end let it settle instead of jittering around the optimum. After every epoch we record the
# principal angles and the exact training error.

# %%
EPOCHS = pick(30, 10)
LR = 3e-3
LR_DECAY = 0.88

optimizer = tg.optim.Adam(linear_ae.parameters(), lr=LR)
record = {"largest angle": [], "median angle": [], "smallest angle": [], "error gap": []}


def after_each_epoch(epoch, history):
    angles = angles_to_pca(linear_ae)
    train_error = error_per_image(x_train, reconstruct(linear_ae, x_train))
    linear_ae.train()
    record["largest angle"].append(angles[-1])
    record["median angle"].append(float(np.median(angles)))
    record["smallest angle"].append(angles[0])
    record["error gap"].append(train_error - pca_train_error)
    if epoch <= 5 or epoch % 5 == 0:
        print(f"epoch {epoch:2d}: training error {train_error:7.3f} (PCA {pca_train_error:.3f})   "
              f"angles: largest {angles[-1]:5.2f}, median {np.median(angles):5.2f} deg")
    for group in optimizer.param_groups:  # the learning-rate schedule
        group["lr"] *= LR_DECAY


history = fit(linear_ae, DataLoader(x_train, batch_size=64, seed=0), optimizer, EPOCHS,
              progress=False, on_epoch_end=after_each_epoch)

# %%
epochs = np.arange(1, EPOCHS + 1)
fig = plot.new_figure(width=10.0, height=4.0)
left, right = fig.subplots(1, 2)
for name, style in [("largest angle", "o-"), ("median angle", "s-"), ("smallest angle", "^-")]:
    left.plot(epochs, record[name], style, markersize=3, label=name)
left.set_yscale("log")
left.set_xlabel("epoch")
left.set_ylabel("degrees")
left.set_title(f"principal angles between span($W_d$) and PCA's top {K}")
left.grid(True, which="both", alpha=0.3)
left.legend()
right.plot(epochs, np.maximum(record["error gap"], 1e-6), "o-", markersize=3, color="C3")
right.set_yscale("log")
right.set_xlabel("epoch")
right.set_ylabel("training error minus PCA's")
right.set_title("how far the loss is from PCA's optimum")
right.grid(True, which="both", alpha=0.3)
plot.save(fig, figure("02_principal_angles.png"))

# %% [markdown]
# Every angle falls, from nearly $90°$ (unrelated subspaces) to a fraction of a degree, and the
# training error comes down to PCA's minimum. The largest angle is the last to fall. Along the
# directions near $u_{16}$ the loss is nearly flat: swapping a bit of $u_{16}$
# for a bit of $u_{17}$ costs only $\lambda_{16} - \lambda_{17}$ per unit of error, a small
# difference, so the gradient that pushes the subspace there is small too.
#
# On test images, which neither method has seen, the two reconstruct equally well:

# %%
final_angles = angles_to_pca(linear_ae)
ae_test = reconstruct(linear_ae, x_test)
pca_test = metrics.pca_reconstruct(metrics.pca_project(x_test, pca_mean, pca_components),
                                   pca_mean, pca_components)
print("principal angles (degrees):", np.round(final_angles, 2))
print(f"test MSE per pixel: linear autoencoder {metrics.mse_per_pixel(x_test, ae_test):.5f}   "
      f"PCA-{K} {metrics.mse_per_pixel(x_test, pca_test):.5f}")

# %% [markdown]
# ## Same subspace, different basis
#
# Is the decoder then simply $W_d = U_k$? No. Write the decoder's columns in PCA's basis,
# $W_d = U_k C$ with a $k \times k$ matrix $C = U_k^\top W_d$. If $W_d$ were the principal
# components, $C$ would be the identity (up to signs). Let us look at $C$, and at how much of
# $W_d$ lies outside PCA's subspace.

# %%
W_d = linear_ae.decoder.weight.data.astype(np.float64)  # (784, K)
W_e = linear_ae.encoder.weight.data.astype(np.float64)  # (K, 784)
C = U.T @ W_d  # (K, K): the decoder's columns in the basis of principal components

outside = np.linalg.norm(W_d - U @ C) / np.linalg.norm(W_d)
on_diagonal = (np.diag(C) ** 2).sum() / (C**2).sum()
unit_columns = W_d / np.linalg.norm(W_d, axis=0)
column_cosines = unit_columns.T @ unit_columns - np.eye(K)
print(f"part of W_d outside PCA's subspace:      {100 * outside:.2f} %")
print(f"share of C's squared entries on its diagonal: {100 * on_diagonal:.0f} % "
      f"(100 % for the components themselves, about {100 / K:.0f} % for a random mixing)")
print(f"largest |cosine| between two decoder columns: {np.abs(column_cosines).max():.2f} "
      "(0 for orthogonal columns)")
print("C's first 4 rows and columns:\n", np.round(C[:4, :4], 2))

# %% [markdown]
# The columns of $W_d$ lie inside PCA's subspace, but each one is a mixture of many
# principal components, and they are not even orthogonal to each other. What the autoencoder
# got right is the product: $W_d W_e$ maps $x - \mu$ to its reconstruction, just as PCA's
# projection $U_k U_k^\top$ does, and the factors can differ by any invertible $C$:
# $W_d = U_k C$ and $W_e = C^{-1} U_k^\top$ give the same product. Two checks: the encoder undoes
# the decoder on the code ($W_e W_d = I_k$), and the two methods give the same reconstruction of
# each test image, not only the same error on average.

# %%
inverse_error = np.linalg.norm(W_e @ W_d - np.eye(K)) / np.sqrt(K)
print(f"||W_e W_d - I|| / ||I|| = {inverse_error:.4f}")

gap_between_methods = error_per_image(ae_test, pca_test)  # mean ||r_AE - r_PCA||^2
pca_test_error = error_per_image(x_test, pca_test)  # mean ||x - r_PCA||^2
print(f"test images: mean ||r_AE - r_PCA||^2 = {gap_between_methods:.4f}, "
      f"against PCA's own error ||x - r_PCA||^2 = {pca_test_error:.2f}")

never_lit = int((x_train.max(axis=0) == 0).sum())
print(f"{never_lit} pixels are 0 in every training image")

# %% [markdown]
# (The matrices $W_d W_e$ and $U_k U_k^\top$ themselves are *not* equal. The pixels at the
# border are 0 in every training image, so the encoder's weights on them multiply zeros: they
# never get a gradient and keep their random initial values. They make no difference to any
# digit, so the loss does not care about them, and neither do we.)

# %% [markdown]
# ## Getting the principal components back
#
# Since the subspace is right, PCA *inside* it gives back the principal components. Take an
# orthonormal basis $Q$ of $\mathrm{span}(W_d)$ (a QR decomposition), express the centred
# training images in it, $y = Q^\top (x - \mu)$, only $k$ numbers each, and run PCA on these
# $k$-dimensional points: the directions it finds, mapped back by $Q$, are $u_1, \dots, u_k$.
# A $k \times k$ problem instead of a $784 \times 784$ one.

# %%
Q, _ = np.linalg.qr(W_d)  # (784, K), orthonormal columns spanning span(W_d)
inside_coordinates = (x_train - pca_mean) @ Q  # (N, K)
_, inside_directions, inside_variances = metrics.pca(inside_coordinates, K)  # (K, K)
recovered = inside_directions @ Q.T  # (K, 784): PCA's components found inside span(W_d)
recovered *= np.sign((recovered * pca_components).sum(axis=1))[:, None]  # signs are arbitrary

cosines = (recovered * pca_components).sum(axis=1)
print("cosine between recovered and true component, 1 ..", K, ":", np.round(cosines, 3))
print(f"the smallest of them: {cosines.min():.5f}")
print("their variances:", np.round(inside_variances[:4], 3), "... PCA's:",
      np.round(pca_variances[:4], 3), "...")

# %% [markdown]
# The picture: PCA's components (top row), the autoencoder's decoder columns scaled to unit
# length (middle row), and the components recovered from the decoder's subspace (bottom row).
# Red is positive, blue negative, white zero; each image is scaled by its largest
# $|\text{value}|$.

# %%
def for_display(vectors):
    """Rows scaled into [-1, 1] by their largest absolute value."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.abs(vectors).max(axis=1, keepdims=True)


rows = [for_display(pca_components), for_display(W_d.T), for_display(recovered)]
titles = ([f"PC {i + 1}" for i in range(K)] + [f"W_d {i + 1}" for i in range(K)]
          + [f"rec {i + 1}" for i in range(K)])
plot.image_grid(np.concatenate(rows), figure("02_components.png"), nrow=K, titles=titles,
                cmap="RdBu_r", value_range=(-1, 1))

# %% [markdown]
# The middle row looks nothing like the top one, yet the bottom row, computed only from the
# middle one, is the top row again (the last few can be slightly mixed: their eigenvalues are
# close, and a nearly flat loss pins them down loosely).
#
# ## Why the subspace, and not the basis?
#
# - **The loss only sees the subspace.** Replace $W_d$ by $W_d C$ and $W_e$ by $C^{-1} W_e$ for
#   any invertible $k \times k$ matrix $C$: the code changes, but the reconstruction
#   $W_d C\, C^{-1} W_e x = W_d W_e x$ does not, and neither does the loss. So the loss has whole
#   valleys of equally good solutions, one for each basis of the same subspace, and no force
#   pushes the weights along the valley towards the principal components. Gradient descent stops
#   at whatever basis the random start and the path led to.
# - **Which subspace, then?** In effect the training moves a $k$-dimensional subspace through
#   $\mathbb{R}^{784}$ (mathematicians call the space of all such subspaces the *Grassmannian*),
#   and the loss as a function of the subspace has a single minimum, $\mathrm{span}(U_k)$. The
#   other stationary points, subspaces spanned by other sets of eigenvectors, are saddles: there
#   is always a downhill direction that swaps in an eigenvector with a larger eigenvalue. So
#   gradient descent from a random start ends at PCA's subspace.
# - **How fast?** The pull towards $u_i$ and away from $u_j$ is proportional to
#   $\lambda_i - \lambda_j$. Directions with well separated eigenvalues settle quickly; the pair
#   $u_{16}, u_{17}$ with close eigenvalues sets the pace of the largest angle.
#
# PCA fixes the basis with an extra rule (orthonormal directions ordered by variance); the
# autoencoder's loss has no such rule. Add one, e.g. tie the weights ($W_e = W_d^\top$), and the
# columns become orthonormal, but still any rotation of the components.

# %% [markdown]
# ## What changes with a nonlinearity
#
# As long as the **decoder** is linear, every reconstruction $r = W_d z + b_d$ lies in a flat
# $k$-dimensional subspace, so no encoder, however clever, can beat the best flat subspace, which
# is PCA's. Make the decoder nonlinear and the reconstructions can lie on a *curved*
# $k$-dimensional surface that bends to follow the data. Then:
#
# - the error can go below PCA's;
# - there is no subspace (and no principal angle) to compare any more; the code is no longer a
#   projection, and different regions of the data can use the $k$ numbers differently;
# - the loss is no longer a nice bowl with saddles: it has genuine local minima, and the result
#   depends on the initialisation and the training.
#
# The same budget of 16 numbers, with one hidden ReLU layer of 256 units in the encoder and in
# the decoder, on the same training images:

# %%
NONLINEAR_EPOCHS = pick(8, 2)

tg.manual_seed(1)
nonlinear_ae = models.Autoencoder(models.mlp([784, 256, K]), models.mlp([K, 256, 784]),
                                  reconstruction="mse", output="sigmoid")
fit(nonlinear_ae, DataLoader(x_train, batch_size=64, seed=1),
    tg.optim.Adam(nonlinear_ae.parameters(), lr=1e-3), NONLINEAR_EPOCHS, progress=False)
nonlinear_test = reconstruct(nonlinear_ae, x_test)

print(f"test MSE per pixel with a code of {K}:")
print(f"  PCA                      {metrics.mse_per_pixel(x_test, pca_test):.5f}")
print(f"  linear autoencoder       {metrics.mse_per_pixel(x_test, ae_test):.5f}")
print(f"  nonlinear autoencoder    {metrics.mse_per_pixel(x_test, nonlinear_test):.5f}")

# %%
print(f"elapsed {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. **Code size.** Set `K = 2`, then `K = 50`. Which angles are slow to fall? Compare with the
#    gaps between neighbouring eigenvalues (print `pca_variances`): with `K = 50` the gap
#    $\lambda_{50} - \lambda_{51}$ is tiny.
# 2. **No learning-rate decay.** Set `LR_DECAY = 1.0`. The angles stop falling at a degree or so:
#    with a constant step, Adam keeps jittering around the optimum instead of settling.
# 3. **Plain SGD.** Replace Adam by `tg.optim.SGD(linear_ae.parameters(), lr=1e-3, momentum=0.9)`.
#    Does it still reach PCA's subspace? How many epochs does it need?
# 4. **A nonlinear encoder, a linear decoder.** Build
#    `models.Autoencoder(models.mlp([784, 256, K]), models.mlp([K, 784]), reconstruction="mse",
#    output="linear")`
#    and compare its error on the training images with `pca_train_error`: it cannot go below it
#    (why?).
# 5. **Ordering the code.** Run PCA on the linear autoencoder's codes
#    `linear_ae.encode(tg.tensor(x_train)).data` with `metrics.pca`. Does the first direction found
#    give the first principal component back? (Hint: the codes are $C^{-1}$ times PCA's codes, and
#    $C$ is not orthogonal.)
