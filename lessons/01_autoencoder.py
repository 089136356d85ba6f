# %% [markdown]
# # 01: The autoencoder
#
# An autoencoder is a network trained to give back its own input. That sounds useless (the
# identity function does it perfectly), until we squeeze the input through a narrow middle layer:
# to copy a 784-pixel digit through 32 numbers, the network has to find out what digits have in
# common and keep only what tells one digit from another. Those 32 numbers, the *code*, are the
# real product of the training.
#
# In this lesson we build an MLP autoencoder with tinygen, train it on MNIST, look at its
# reconstructions, and then give it a code of only 2 numbers, so that we can draw every test
# digit as a point in the plane and compare the picture with PCA's.
#
# Runs in about 45 s on a 2-core CPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 2 s.

# %% [markdown]
# ## Encoder, code, decoder
#
# An autoencoder is two networks one after the other:
#
# - the **encoder** $f$ maps an input $x$ to its **code** $z = f(x)$;
# - the **decoder** $g$ maps the code back to a **reconstruction** $r = g(z)$.
#
# The objective is $x \approx r$, and training minimises a loss that measures how far the
# reconstruction is from the input,
#
# $$L\big(x, g(f(x))\big),$$
#
# averaged over the training set. Nothing else is asked of the network: no labels are used.
#
# If the code is smaller than the input ($\dim z < \dim x$) the autoencoder is **under-complete**
# and cannot simply copy; it has to compress. If the code is larger (**over-complete**) it could
# learn the identity, and something else must stop it (the regularised autoencoders of the later
# lessons change the loss for that).
#
# What is an autoencoder good for? Copying perfectly is not the point; the point is what the
# network had to learn about the data in order to copy it approximately:
#
# - **dimensionality reduction**: the code is a short summary of $x$ (this lesson, and the next
#   one, where a linear autoencoder turns out to be PCA);
# - **feature learning**: codes as inputs for another task (sparse and contractive autoencoders,
#   and the linear probes of later lessons);
# - **data generation**: decode new codes into new images (variational autoencoders, and GANs,
#   which keep only a decoder);
# - **data completion** and **reconstruction**: fill in the missing or corrupted parts of an
#   input (the denoising autoencoder);
# - **anomaly detection**: an input unlike the training data is reconstructed badly, so a large
#   reconstruction error flags it.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import metrics, models, nn, plot
from tinygen.data import DataLoader
from tinygen.train import fit

from course import QUICK, encode, figure, mnist, pick, reconstruct

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The data
#
# MNIST digits as flat vectors of $28 \times 28 = 784$ pixels with values in $[0, 1]$. The full
# run trains on the 60,000 training images and tests on the 10,000 test images; the quick run
# takes a few thousand of each.

# %%
x_train, y_train = mnist("train", n=pick(None, 3000))
x_test, y_test = mnist("test", n=pick(None, 1000))
print(f"train {x_train.shape}, test {x_test.shape}, pixel values in "
      f"[{x_train.min():.0f}, {x_train.max():.0f}]" + ("   (quick mode)" if QUICK else ""))

# %% [markdown]
# ## Building the autoencoder
#
# The encoder is an MLP $784 \to 256 \to 32$ and the decoder its mirror image
# $32 \to 256 \to 784$, with ReLU between the layers. The code $z$ has 32 numbers, about 25 times
# fewer than the pixels.
#
# The decoder's last layer gives one real number $a_j$ per pixel (a *logit*), and the
# reconstruction is $r_j = \sigma(a_j) = 1 / (1 + e^{-a_j})$, so that every pixel lies in
# $(0, 1)$ as the inputs do. For pixels in $[0, 1]$ a good loss is the Bernoulli cross-entropy,
# summed over the 784 pixels:
#
# $$L(x, r) = -\sum_{j=1}^{784} \big[x_j \log r_j + (1 - x_j) \log (1 - r_j)\big].$$
#
# It is smallest when $r_j = x_j$. (The squared error $\sum_j (x_j - r_j)^2$ also works; lesson 02
# uses it.)

# %%
CODE_SIZE = 32
HIDDEN = 256

encoder = nn.Sequential(nn.Linear(784, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CODE_SIZE))
decoder = nn.Sequential(nn.Linear(CODE_SIZE, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 784))
autoencoder = models.Autoencoder(encoder, decoder, reconstruction="bce")
print(autoencoder)
# models.mlp_autoencoder(784, hidden=(256,), code_dim=32) builds the same network in one line.

# %% [markdown]
# Before training, let us follow one batch through the network by hand and check that we get the
# same loss as the model's own `loss` method, which `train.fit` will minimise.

# %%
x = tg.tensor(x_train[:8])
z = encoder(x)  # the code, (8, 32)
logits = decoder(z)  # a_j, (8, 784)
r = logits.sigmoid()  # the reconstruction r = sigma(a), pixels in (0, 1)
r = r.clip(1e-7, 1 - 1e-7)  # keep log away from log(0)
per_image = -(x * r.log() + (1 - x) * (1 - r).log()).sum(axis=1)  # L(x, r), one per image
by_hand = per_image.mean()

model_loss, _ = autoencoder.loss(x)
print(f"code shape {z.shape}, reconstruction shape {r.shape}")
print(f"loss by hand {by_hand.item():.3f}   autoencoder.loss {model_loss.item():.3f}")
# An untrained decoder says about 0.5 for every pixel: about 784 log 2 = 543 nats per image.

# %% [markdown]
# ## Training
#
# `train.fit` does the usual loop: for every mini-batch of 128 images, compute the loss, back-
# propagate, and let Adam update the weights. Passing the test set as `val_loader` makes it
# report the loss on unseen digits after every epoch too.

# %%
EPOCHS = pick(10, 5)

optimizer = tg.optim.Adam(autoencoder.parameters(), lr=1e-3)
train_loader = DataLoader(x_train, batch_size=128, seed=0)
test_loader = DataLoader(x_test, batch_size=1000, shuffle=False)
history = fit(autoencoder, train_loader, optimizer, EPOCHS, val_loader=test_loader,
              progress=False)
for epoch, (train_loss, test_loss) in enumerate(zip(history["loss"], history["val_loss"]), 1):
    print(f"epoch {epoch:2d}: train loss {train_loss:6.1f}   test loss {test_loss:6.1f} "
          f"nats per image")

# %%
plot.curves(history, figure("01_loss_curve.png"), keys=["loss", "val_loss"],
            title="MLP autoencoder 784-256-32: cross-entropy per image")

# %% [markdown]
# The training and test losses fall together: the network is not memorising the training digits,
# it has learnt something that holds for digits it has never seen. (In the first epochs the
# training loss lies above the test loss because it is the mean over the epoch's batches, taken
# while the weights were still improving; the test loss is measured at the end of the epoch.)
#
# ## Reconstructions
#
# Now the test images (top row) above their reconstructions $r = g(f(x))$ (middle row). For a
# yardstick, the bottom row shows PCA with the same budget of 32 numbers per image: project $x$ on
# the 32 directions of largest variance of the training set and map back,
# $r = \mu + U_{32} U_{32}^\top (x - \mu)$ (lesson 02 tells the whole story of PCA and
# autoencoders). We fit PCA on 10,000 training images: more changes little, and the
# singular value decomposition behind it gets slow.
#
# Two helpers from `course.py`, which every autoencoder lesson uses, give the codes and the
# reconstructions of a NumPy batch as NumPy arrays: `encode(model, x)` is `model.encode`, and
# `reconstruct(model, x)` is `model(x)`, each with the model in evaluation mode and inside
# `tg.no_grad()`, since nothing here is differentiated.

# %%
pca_mean, pca_components, _ = metrics.pca(x_train[:pick(10000, 2000)], CODE_SIZE)


def pca_codes(images, n_components):
    return metrics.pca_project(images, pca_mean, pca_components[:n_components])


def pca_reconstruct(images, n_components):
    codes = pca_codes(images, n_components)
    return metrics.pca_reconstruct(codes, pca_mean, pca_components[:n_components])


ae_reconstructions = reconstruct(autoencoder, x_test)
pca_reconstructions = pca_reconstruct(x_test, CODE_SIZE)
ae_error = metrics.mse_per_pixel(x_test, ae_reconstructions)
pca_error = metrics.mse_per_pixel(x_test, pca_reconstructions)
print(f"test mean squared error per pixel, code of {CODE_SIZE}: "
      f"autoencoder {ae_error:.4f}   PCA {pca_error:.4f}")

# %%
# The first test image of each digit 0..9
one_per_digit = [int(np.flatnonzero(y_test == digit)[0]) for digit in range(10)]
rows = [x_test[one_per_digit], ae_reconstructions[one_per_digit],
        pca_reconstructions[one_per_digit]]
titles = [""] * 30
titles[0], titles[10], titles[20] = "input", "AE-32", "PCA-32"
# value_range: black is 0 and white is 1 in every row (PCA's pixels can leave [0, 1] a little)
plot.image_grid(np.concatenate(rows), figure("01_reconstructions.png"), nrow=10, titles=titles,
                value_range=(0, 1))

# %% [markdown]
# The autoencoder's reconstructions are sharp and keep each digit's shape; PCA's, with as many
# numbers, are blurred, with grey ghosts of other digits. Both are linear maps at heart, but the
# autoencoder's ReLUs let it bend: it can use its 32 numbers differently for a "1" and for an
# "8", while PCA must describe every image with the same 32 fixed images added together.
#
# ## A code of two numbers: dimensionality reduction
#
# With $\dim z = 2$ every image becomes a point in the plane, and we can look at the whole test set
# at once. Two numbers are very few, so we give the network a little more depth:
# $784 \to 256 \to 64 \to 2$ and back.

# %%
EPOCHS_2D = pick(15, 5)

tg.manual_seed(1)
autoencoder_2d = models.mlp_autoencoder(784, hidden=(256, 64), code_dim=2)
optimizer_2d = tg.optim.Adam(autoencoder_2d.parameters(), lr=2e-3)
history_2d = fit(autoencoder_2d, DataLoader(x_train, batch_size=128, seed=1), optimizer_2d,
                 EPOCHS_2D, progress=False)
print(f"2-D autoencoder: train loss {history_2d['loss'][0]:.1f} after one epoch, "
      f"{history_2d['loss'][-1]:.1f} after {EPOCHS_2D}")

# %% [markdown]
# PCA's answer to the same question is the projection on the first two principal components,
# the plane in which the training images spread the most.

# %%
ae_codes_2d = encode(autoencoder_2d, x_test)
pca_codes_2d = pca_codes(x_test, 2)

plot.latent_scatter(ae_codes_2d, y_test, figure("01_codes_2d_autoencoder.png"),
                    title="test digits, autoencoder code (2-D)")
plot.latent_scatter(pca_codes_2d, y_test, figure("01_codes_2d_pca.png"),
                    title="test digits, first two principal components")

# %% [markdown]
# Which map separates the digits better? Two numbers tell the story:
#
# - the **reconstruction error** of each 2-number summary;
# - how well a **linear classifier** (softmax regression, `metrics.linear_probe`) can tell the ten
#   digits apart from the two numbers alone. It is trained on the codes of training images and
#   scored on the test images; chance is 10 %.

# %%
ae_error_2d = metrics.mse_per_pixel(x_test, reconstruct(autoencoder_2d, x_test))
pca_error_2d = metrics.mse_per_pixel(x_test, pca_reconstruct(x_test, 2))

probe_images = x_train[:pick(10000, 2000)]
probe_labels = y_train[:pick(10000, 2000)]
ae_accuracy = metrics.linear_probe(encode(autoencoder_2d, probe_images), probe_labels,
                                   ae_codes_2d, y_test)
pca_accuracy = metrics.linear_probe(pca_codes(probe_images, 2), probe_labels,
                                    pca_codes_2d, y_test)

print("code of 2 numbers        autoencoder   PCA")
print(f"test MSE per pixel       {ae_error_2d:11.4f}   {pca_error_2d:.4f}")
print(f"linear probe accuracy    {100 * ae_accuracy:10.1f} %   {100 * pca_accuracy:.1f} %")

# %% [markdown]
# In PCA's plane the digits lie on top of each other in one big cloud: only the "0"s and the "1"s
# find their own sides. The autoencoder's plane puts most digits in clusters of their own, arms
# that radiate from the centre, and it reconstructs the images better from the same two numbers.
# PCA can only choose a flat plane through the data; the autoencoder can choose a curved
# 2-D surface that follows it. Some digits (4 and 9, 3, 5 and 8) still overlap: they are similar
# shapes, and nothing in the loss asked for the labels to be separated.
#
# Note also the empty gaps between the arms: most points of the plane are not the code of any
# digit, so decoding a point picked at random gives no digit in particular. Filling the code space
# in an orderly way, so that we can *sample* from it, is what variational autoencoders add.

# %%
print(f"elapsed {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. **Code size.** Set `CODE_SIZE = 8`, then `CODE_SIZE = 128`, and compare the test error with
#    PCA's for the same size. Where does the autoencoder's advantage shrink?
# 2. **Over-complete.** Set `CODE_SIZE = 1000` (larger than the 784 pixels). The loss goes lower,
#    but has the network learnt anything more useful than a copy? (Lessons on sparse and denoising
#    autoencoders come back to this.)
# 3. **A different loss.** Build the autoencoder with `reconstruction="mse"` instead of `"bce"` and
#    compare the reconstructions in `01_reconstructions.png`: which loss gives sharper strokes?
# 4. **Depth for the 2-D code.** Use `hidden=(256,)` instead of `(256, 64)` for `autoencoder_2d`:
#    how do the clusters in `01_codes_2d_autoencoder.png` and the probe accuracy change?
# 5. **Anomalies.** Compute the reconstruction error of every test image,
#    `((x_test - ae_reconstructions) ** 2).sum(axis=1)`, and show the 10 worst reconstructed
#    images with `plot.image_grid`. Are they badly written digits?
