# %% [markdown]
# # 05: Denoising autoencoders
#
# A plain autoencoder is asked to copy its input, and a network with enough capacity can copy
# without learning anything about digits. A **denoising autoencoder** is given a damaged image
# and asked for the clean one. To undo the damage it must know what digits look like, so the
# code is forced to capture the structure of the data. The same knowledge lets it fill in pixels
# that are missing altogether (**data completion**).
#
# Runs in about 39 s on a 2-core CPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 2 s.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import metrics, mnist_classifier, plot
from tinygen.data import DataLoader
from tinygen.models import Autoencoder, DenoisingAutoencoder, corrupt, mlp
from tinygen.train import fit

from course import figure, mnist, pick, reconstruct

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)  # every corruption and mask we draw ourselves comes from here

# %% [markdown]
# ## The idea
#
# A plain autoencoder with encoder $f$ and decoder $g$ minimises $L(x, g(f(x)))$. The denoising
# autoencoder changes only the reconstruction term:
#
# $$L\big(x,\; g(f(\tilde x))\big), \qquad \tilde x \sim C(\tilde x \mid x),$$
#
# where $\tilde x$ is a copy of $x$ damaged by a noise process $C$. The encoder sees
# $\tilde x$, but the loss compares the output with the clean $x$. A fresh $\tilde x$ is drawn
# for every mini-batch, so the network never sees the same damage twice. Copying is no longer
# the answer: the identity map returns $\tilde x$, which is not $x$.
#
# `tinygen.models.corrupt(x, noise, level)` has three noise processes (pixels in $[0, 1]$):
#
# * **gaussian**: $\tilde x = \mathrm{clip}(x + \sigma \epsilon,\ 0,\ 1)$ with
#   $\epsilon \sim \mathcal N(0, I)$ and `level` $= \sigma$;
# * **masking**: each pixel is set to 0 with probability `level`;
# * **salt_pepper**: each pixel is replaced with probability `level` by 0 or 1 (a coin flip).

# %%
x_all, _ = mnist("train")
n_train = pick(55000, 2000)
n_val = pick(5000, 300)
x_train = x_all[:n_train]  # the models learn from these
x_val = x_all[-n_val:]  # held out: used only to choose a setting of the completion below
x_test, y_test = mnist("test", n=pick(10000, 500))
print(f"{len(x_train)} training, {len(x_val)} validation and {len(x_test)} test images")

NOISE_LEVELS = {"gaussian": 0.5, "masking": 0.5, "salt_pepper": 0.2}

examples = x_test[:8]
rows = [examples]
row_names = ["clean"]
for noise, level in NOISE_LEVELS.items():
    rows.append(corrupt(examples, noise, level, rng))
    row_names.append(f"{noise} {level}")


def first_column_titles(names, per_row):
    """One title per image: the row's name above its first image, nothing above the others."""
    return [name if column == 0 else "" for name in names for column in range(per_row)]


plot.image_grid(np.concatenate(rows), figure("05_noise_types.png"), nrow=len(examples),
                titles=first_column_titles(row_names, len(examples)))

# %% [markdown]
# Gaussian noise is the hardest to look at: clipping to $[0, 1]$ also lifts the black
# background (negative noise is cut at 0, positive noise is kept), so the noisy image is
# brighter on average as well as grainy.
#
# ## Two autoencoders, one difference
#
# Both models are the same MLP, $784 \to 256 \to 32 \to 256 \to 784$, with ReLU hidden layers, a
# sigmoid output and the Bernoulli cross-entropy as $L$. The plain one trains on clean images;
# the denoising one on images corrupted with Gaussian noise, $\sigma = 0.5$.

# %%
SIGMA = NOISE_LEVELS["gaussian"]
EPOCHS = pick(8, 1)


def encoder_and_decoder():
    """A fresh pair: encoder 784-256-32, decoder 32-256-784 (the decoder emits logits)."""
    return mlp([784, 256, 32]), mlp([32, 256, 784])


def train(model):
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, DataLoader(x_train, batch_size=128), optimizer, EPOCHS, progress=False)
    model.eval()
    return history


plain = Autoencoder(*encoder_and_decoder(), reconstruction="bce")
denoiser = DenoisingAutoencoder(*encoder_and_decoder(), noise="gaussian", level=SIGMA,
                                reconstruction="bce")
for name, model in [("plain", plain), ("denoising", denoiser)]:
    history = train(model)
    print(f"{name:9} autoencoder: {EPOCHS} epochs, training loss {history['loss'][-1]:.1f} "
          f"nats per image, {sum(history['seconds']):.0f} s")

# %% [markdown]
# ## Does it remove the noise?
#
# We score an output $r$ against the clean test image $x$ with the **peak signal-to-noise
# ratio**, in decibels, from the mean squared error over all pixels of all images:
#
# $$\mathrm{PSNR} = 10 \log_{10} \frac{1^2}{\frac{1}{ND}\sum_{n,j} (x_{nj} - r_{nj})^2}.$$
#
# Higher is better; every 3 dB halves the error. Two baselines stand beside the denoising
# autoencoder:
#
# * the **plain autoencoder fed the noisy image**: it was trained to copy, so does it copy the
#   noise too?
# * **PCA projection**: keep the noisy image's coordinates on the top 32 principal components of
#   the clean training images, $r = \mu + V V^\top (\tilde x - \mu)$. Noise spread over all 784
#   directions is mostly thrown away with the other 752.

# %%
pca_mean, pca_components, _ = metrics.pca(x_train[:10000], 32)  # 10,000 images are plenty


def pca_denoise(images):
    codes = metrics.pca_project(images, pca_mean, pca_components)
    return metrics.pca_reconstruct(codes, pca_mean, pca_components)


methods = {
    "PCA-32": pca_denoise,
    "plain AE": lambda images: reconstruct(plain, images),
    "denoising AE": lambda images: reconstruct(denoiser, images),
}

noisy_test = corrupt(x_test, "gaussian", SIGMA, rng)
print(f"PSNR against the clean test images (Gaussian noise, sigma {SIGMA}):")
print(f"  {'the noisy input itself':32} {metrics.psnr(x_test, noisy_test):6.2f} dB")
denoised = {}
for name, method in methods.items():
    denoised[name] = method(noisy_test)
    print(f"  {name + ' of the noisy input':32} {metrics.psnr(x_test, denoised[name]):6.2f} dB"
          f"   (of the clean input: {metrics.psnr(x_test, method(x_test)):5.2f} dB)")

# %% [markdown]
# The plain autoencoder is the best of the three on clean images and the worst on noisy ones.
# It learned to copy digits, and a grainy image with a grey background is unlike anything it
# saw: its output is a blotchy shape hardly closer to the clean digit than the noisy input
# (see the figure below). PCA removes part of the noise, leaving a blurred digit. The denoising
# autoencoder gives up some quality on clean images (it never saw one) and wins clearly on
# noisy ones: in our full run about 3 dB above PCA, i.e. half PCA's squared error.

# %%
shown = slice(0, 10)
grid_rows = [x_test[shown], noisy_test[shown]] + [denoised[name][shown] for name in methods]
grid_names = ["clean", "noisy"] + list(methods)
# value_range=(0, 1): PCA's output can leave [0, 1] a little; show 0 as black in every row
plot.image_grid(np.concatenate(grid_rows), figure("05_denoising.png"), nrow=10,
                titles=first_column_titles(grid_names, 10), value_range=(0, 1))

# %% [markdown]
# The model was trained on Gaussian noise only. How does it do on the other two kinds? Salt and
# pepper also scatters bright and dark specks, so the denoiser handles it well; masking takes
# ink *away*, which Gaussian noise never does, and there it helps much less.

# %%
print("PSNR (dB) on test images with each kind of noise; the denoising AE saw only Gaussian:")
print(f"  {'noise':18} {'noisy':>7}" + "".join(f"{name:>14}" for name in methods))
for noise, level in NOISE_LEVELS.items():
    noisy = corrupt(x_test, noise, level, rng)
    scores = [metrics.psnr(x_test, method(noisy)) for method in methods.values()]
    print(f"  {noise + ' ' + str(level):18} {metrics.psnr(x_test, noisy):7.2f}"
          + "".join(f"{score:14.2f}" for score in scores))

# %% [markdown]
# ## Data completion
#
# Now some pixels are not noisy but **missing**: the bottom half of the image, or a $12 \times
# 12$ block at a random place. Let $m$ be the mask of observed pixels. `metrics.complete` fills
# the hole by iterating the autoencoder's reconstruction $r(\cdot) = g(f(\cdot))$:
#
# $$x^{(0)} = m \odot x + (1 - m) \odot \bar x_{\text{observed}}, \qquad
#   x^{(t+1)} = m \odot x + (1 - m) \odot r\big(x^{(t)}\big),$$
#
# starting from the mean of each image's observed pixels. The observed pixels are put back after
# every step; only the hole changes. The baseline, `metrics.mean_image_fill`, fills the hole with
# the mean training image. We score the fill by the squared error on the missing pixels only
# (`metrics.masked_mse`).
#
# How many steps? We choose on the validation images, not on the test images.

# %%
MAX_STEPS = 15
mean_image = x_train.mean(axis=0)
completers = {"plain AE": plain, "denoising AE": denoiser}


def masks_for(n):
    """The two kinds of hole, as masks of the observed pixels (True = seen)."""
    return {"bottom half": metrics.bottom_half_mask(n),
            "12x12 block": metrics.random_block_mask(n, block=12, rng=rng)}


def completion_path(model, images, observed, steps):
    """The completions after 0, 1, ..., steps iterations (each one step on from the last)."""
    current = metrics.complete(lambda a: reconstruct(model, a), images, observed, steps=0)
    path = [current]
    for _ in range(steps):
        current = metrics.complete(lambda a: reconstruct(model, a), images, observed, steps=1,
                                   init=current)
        path.append(current)
    return path


val_masks = masks_for(len(x_val))
val_errors = {}  # (mask, model) -> masked MSE after 0 .. MAX_STEPS steps
mean_fill_errors = {}
for mask_name, observed in val_masks.items():
    mean_fill = metrics.mean_image_fill(x_val, observed, mean_image)
    mean_fill_errors[mask_name] = metrics.masked_mse(x_val, mean_fill, ~observed)
    for model_name, model in completers.items():
        path = completion_path(model, x_val, observed, MAX_STEPS)
        val_errors[mask_name, model_name] = [metrics.masked_mse(x_val, c, ~observed) for c in path]

# the best number of steps (at least one) for each mask and model
best_steps = {key: 1 + int(np.argmin(errors[1:])) for key, errors in val_errors.items()}

fig = plot.new_figure(9.0, 3.6)
for column, mask_name in enumerate(val_masks):
    ax = fig.add_subplot(1, 2, column + 1)
    for model_name in completers:
        errors = val_errors[mask_name, model_name]
        ax.plot(range(MAX_STEPS + 1), errors, marker="o", markersize=3, label=model_name)
        best = best_steps[mask_name, model_name]
        ax.plot([best], [errors[best]], "k*", markersize=10)
    ax.axhline(mean_fill_errors[mask_name], color="gray", linestyle="--", label="mean image fill")
    ax.set_title(f"{mask_name} missing (validation images)")
    ax.set_xlabel("completion steps t")
    ax.set_ylabel("MSE on the missing pixels")
    ax.grid(True, alpha=0.3)
    ax.legend()
plot.save(fig, figure("05_completion_steps.png"))

for (mask_name, model_name), steps in best_steps.items():
    print(f"{mask_name:12} {model_name:13} best after {steps:2} step(s) on validation")

# %% [markdown]
# Step 0 is the flat fill (each image's mean observed pixel, a dark grey). The plain
# autoencoder, a good copier, hands back roughly what it was given, a dark patch with a little
# texture: it never beats the mean image, and iterating makes it worse. The denoising
# autoencoder treats the patch as noise and draws strokes that continue the visible part; its
# best fill comes after a couple of steps; further iterations drift away from it again.
#
# Now the test images, each model with the number of steps chosen above. Squared error rewards
# a blurry average, so we also ask a second judge: the digit classifier that ships with tinygen
# (`tinygen.mnist_classifier.predict`, 99 % accurate on whole test digits). Does the completed
# image still read as the right digit?

# %%
n_judged = pick(1000, 100)
images, labels = x_test[:n_judged], y_test[:n_judged]
test_masks = masks_for(n_judged)
completed = {}  # mask -> {method: completed images}
for mask_name, observed in test_masks.items():
    fills = {"mean image": metrics.mean_image_fill(images, observed, mean_image)}
    for model_name, model in completers.items():
        steps = best_steps[mask_name, model_name]
        fills[model_name] = completion_path(model, images, observed, steps)[-1]
    completed[mask_name] = fills
    print(f"{mask_name} missing, {n_judged} test images:")
    for method, filled in fills.items():
        error = metrics.masked_mse(images, filled, ~observed)
        accuracy = np.mean(mnist_classifier.predict(filled) == labels)
        print(f"  {method:13} MSE on missing pixels {error:.4f}   classifier accuracy "
              f"{100 * accuracy:5.1f} %")
print(f"  (whole images: classifier accuracy "
      f"{100 * np.mean(mnist_classifier.predict(images) == labels):.1f} %)")


# %%
def as_rgb(gray):
    """Grey images (N, 784) -> colour images (N, 3, 28, 28) for plot.image_grid."""
    return np.repeat(gray.reshape(-1, 1, 28, 28), 3, axis=1)


def with_hole_in_red(gray, observed):
    """The observed pixels in grey, the missing ones dark red."""
    rgb = as_rgb(np.where(observed, gray, 0.0))
    hole = ~observed.reshape(-1, 28, 28)
    rgb[:, 0][hole] = 0.6
    return rgb


n_shown = 8
grid_rows, grid_names = [], []
for mask_name, observed in test_masks.items():
    fills = completed[mask_name]
    grid_rows += [as_rgb(images[:n_shown]),
                  with_hole_in_red(images[:n_shown], observed[:n_shown])]
    grid_rows += [as_rgb(filled[:n_shown]) for filled in fills.values()]
    grid_names += ["original", f"{mask_name.split()[-1]} hidden"] + list(fills)
plot.image_grid(np.concatenate(grid_rows), figure("05_completion.png"), nrow=n_shown,
                titles=first_column_titles(grid_names, n_shown))

print(f"elapsed {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## What we saw
#
# * Training on corrupted inputs, $L(x, g(f(\tilde x)))$, turns the same network from a copier
#   into a denoiser: about 3 dB better than PCA-32 on noisy digits, where the plain autoencoder
#   barely improves on the noisy input.
# * What the denoiser learned is a pull towards images that look like digits. That is also what
#   fills a hole: a few iterations of $x \leftarrow m \odot x + (1 - m) \odot r(x)$ complete the
#   digit better than the mean image, and the classifier reads the result correctly more often.
#   The plain autoencoder, which can copy anything, has no such pull.
#
# ## Try this
#
# 1. Train on another corruption: set `noise="masking", level=0.5` (or `"salt_pepper"`, 0.2) in
#    the `DenoisingAutoencoder(...)` line. Which row of the noise-type table improves, which
#    gets worse, and how does completion change (masking is a hole made of single pixels)?
# 2. Change `SIGMA` to 0.2 or 0.8. A weaker noise makes the model closer to a copier: does the
#    clean-input PSNR rise, and do the completion curves move towards the plain AE's?
# 3. Give PCA more or fewer components (`metrics.pca(..., 32)`): does any number of components
#    reach the denoising autoencoder's PSNR?
# 4. Set `MAX_STEPS = 50` and look at the curves: where does the iteration end up, and what do
#    the completed digits look like after many steps?
# 5. Make the hole bigger: `block=16` in `masks_for`. When does the mean image become as good as
#    any model?
