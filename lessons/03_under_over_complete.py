# %% [markdown]
# # 03: Under-complete and over-complete autoencoders
#
# The course notes warn that training an autoencoder means *forcing $x = r$*, with a **strong risk
# of overfitting**: a network that is able to copy its input perfectly has no reason to learn
# anything about the data. Whether it can copy depends first of all on the size of the code:
#
# - a code **smaller** than the input (an *under-complete* autoencoder) cannot hold every image,
#   so the network must summarise what digits have in common;
# - a code **larger** than the input (an *over-complete* autoencoder) has room for the image
#   itself, and the identity function is then one of the solutions it can reach.
#
# In this lesson we train two autoencoders that differ only in the size of their code, 32 and
# 1000 numbers for a 784-pixel image, and feed them things that are *not* digits: random noise
# and digits with their pixels shuffled. The small code turns everything into digits; the large
# one passes much more of the input through, whatever it is. Then we ask which code is the better
# set of *features* for recognising digits, and end with the over-complete code the notes have in
# mind: a *nonlinear* one, with and without a penalty that keeps it from copying.
#
# Runs in about 2 minutes on a 2-core CPU (full: 123 s; see
# `lessons/README.md` for how it was measured); `TINYGEN_QUICK=1` runs it in about 7 s.

# %% [markdown]
# ## The size of the code
#
# An autoencoder has an encoder $f$, a code $z = f(x)$ and a decoder $g$ that gives the
# reconstruction $r = g(z)$; it is trained to make $L(x, g(f(x)))$ small. With an input of
# $D = 784$ pixels and a code of $k$ numbers:
#
# - $k < D$: **under-complete**. The code compresses the image. With a linear decoder and the
#   squared error, the best such autoencoder is PCA (lesson 02).
# - $k > D$: **over-complete**. The course notes compare the code to a kernel's feature map, which
#   lifts the data to a space of higher dimension (as in SVMs). But nothing in the loss stops the
#   network from simply copying.
#
# To keep the comparison clean we use the simplest model of all, the linear autoencoder of
# lesson 02, $z = W_e x + b_e$, $r = W_d z + b_d$ with the squared error
# $L(x, r) = \lVert x - r \rVert^2$, and change nothing but $k$.

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
# ## A perfect copier fits in an over-complete code
#
# With $k \ge D$ the identity is one choice of weights. Put the image in the first 784 code units
# and zeros in the other 216, then read the first 784 units back:
#
# $$W_e = \begin{pmatrix} I_{784} \\ 0 \end{pmatrix} \ (1000 \times 784), \qquad
#   W_d = \begin{pmatrix} I_{784} & 0 \end{pmatrix} \ (784 \times 1000), \qquad
#   b_e = 0, \ b_d = 0, \qquad\text{so}\qquad r = W_d W_e x = x.$$
#
# Its loss is exactly zero, the smallest possible, on *every* input: digits, noise, anything. As
# far as the loss can tell, this copier is a perfect autoencoder, yet it has learnt nothing about
# digits. We build it by hand and check.

# %%
BIG_CODE = 1000
SMALL_CODE = 32

copier = models.LinearAutoencoder(784, BIG_CODE)
identity_in_code = np.zeros((BIG_CODE, 784), dtype=np.float32)
identity_in_code[:784] = np.eye(784)  # code unit i holds pixel i, units 784..999 stay 0
copier.encoder.weight.data[...] = identity_in_code  # W_e, (1000, 784)
copier.decoder.weight.data[...] = identity_in_code.T  # W_d, (784, 1000)
copier.encoder.bias.data[...] = 0
copier.decoder.bias.data[...] = 0

some_digits, _ = mnist("test", n=100)
some_noise = rng.random((100, 784)).astype(np.float32)
with tg.no_grad():
    loss_on_digits, _ = copier.loss(tg.tensor(some_digits))
    loss_on_noise, _ = copier.loss(tg.tensor(some_noise))
print(f"hand-made copier: loss on digits {loss_on_digits.item():.1e}, "
      f"on noise {loss_on_noise.item():.1e}")

# %% [markdown]
# Gradient descent will not find this exact matrix: it starts from small random weights. The
# question is how close to a copier training takes the over-complete model, and what that does
# to its code.
#
# ## The data, and some inputs that are not digits
#
# We train on the MNIST training set. To test the models we use MNIST test digits and two kinds
# of images that no digit looks like:
#
# - **noise**: every pixel drawn uniformly in $[0, 1]$;
# - **shuffled digits**: test digits with their pixels moved by one fixed random permutation
#   (the same amount of ink, the same pixel values, but no strokes).
#
# One detail matters. The pixels near the border are black in nearly every training image, so
# training never sees them vary and never learns what to do with them: no model trained on
# MNIST can pass them on (we measure it below). We therefore keep the noise and the shuffling
# inside the **digit area**, the pixels that carry ink in at least 1 % of the training images,
# and leave the border black, as it is in every digit.

# %%
x_train, y_train = mnist("train", n=pick(None, 3000))
x_test, y_test = mnist("test", n=pick(None, 1000))
print(f"train {x_train.shape}, test {x_test.shape}" + ("   (quick mode)" if QUICK else ""))

ink_frequency = (x_train > 0.1).mean(axis=0)  # (784,): fraction of images with ink on each pixel
digit_area = ink_frequency >= 0.01
print(f"digit area: {digit_area.sum()} of 784 pixels; the other {784 - digit_area.sum()} "
      "are black in more than 99 % of the training images")

N_SHOW = pick(2000, 500)  # test images in each set we score
digits = x_test[:N_SHOW]

noise = np.zeros((N_SHOW, 784), dtype=np.float32)
noise[:, digit_area] = rng.random((N_SHOW, digit_area.sum()))

area_pixels = np.flatnonzero(digit_area)
shuffled_area = rng.permutation(area_pixels)
shuffled = digits.copy()
shuffled[:, area_pixels] = digits[:, shuffled_area]  # pixel i takes the value of another pixel

# %% [markdown]
# ## Two autoencoders that differ only in the code size
#
# `models.LinearAutoencoder(784, k)` for $k = 32$ (under-complete) and $k = 1000$
# (over-complete), trained the same way: Adam with a learning rate of $10^{-3}$ on mini-batches
# of 128 images.

# %%
EPOCHS = pick(3, 2)


def train(model):
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(x_train, batch_size=128)
    history = fit(model, loader, optimizer, EPOCHS, progress=False)
    return history["loss"][-1]


under_complete = models.LinearAutoencoder(784, SMALL_CODE)
over_complete = models.LinearAutoencoder(784, BIG_CODE)
for name, model in [("under-complete, code 32", under_complete),
                    ("over-complete, code 1000", over_complete)]:
    final_loss = train(model)
    print(f"{name}: training loss {final_loss:.2f} after {EPOCHS} epochs "
          f"(squared error summed over the pixels)")

# %% [markdown]
# ## What each one reconstructs
#
# We score each set of images by the squared error per pixel, the mean of $(x_j - r_j)^2$ over
# the pixels and the images. For scale: a model that ignored its input and always answered with
# a black image would score the mean of $x_j^2$.

# %%
test_sets = {"digits": digits, "noise": noise, "shuffled digits": shuffled}
models_by_code = {SMALL_CODE: under_complete, BIG_CODE: over_complete}
errors = {}  # (code size, set name) -> squared error per pixel
for code_size, model in models_by_code.items():
    for set_name, images in test_sets.items():
        errors[code_size, set_name] = metrics.mse_per_pixel(images, reconstruct(model, images))

print("squared error per pixel      " + "".join(f"{name:>17}" for name in test_sets))
for code_size in models_by_code:
    kind = "under" if code_size < 784 else "over"
    row = "".join(f"{errors[code_size, name]:17.5f}" for name in test_sets)
    print(f"code {code_size:4d} ({kind}-complete) {row}")
black_image = "".join(f"{np.mean(images.astype(np.float64) ** 2):17.5f}"
                      for images in test_sets.values())
print(f"always black (no model)     {black_image}")
for name in ("noise", "shuffled digits"):
    ratio = errors[SMALL_CODE, name] / errors[BIG_CODE, name]
    print(f"on {name}: code 1000's error is {ratio:.1f} times smaller than code 32's")

# %% [markdown]
# The over-complete model reconstructs test digits almost perfectly, far better than the code of
# 32. That looks like a win until we look at the other columns: its error on noise and on
# shuffled digits is smaller than the small code's error on real digits, and tens of times
# smaller than the small code's error on the same noise. It has not learnt what a digit is; it
# has learnt to pass pixels through, close to the copier we built by hand. The under-complete
# model cannot do that: 32 numbers only have room for the main ways in which *digits* vary, so
# whatever we give it comes out as the nearest digit-like picture.

# %%
N_COLUMNS = 8
grid_rows, grid_titles = [], []
for set_name, images in test_sets.items():
    for label, picture in [(set_name, images),
                           ("code 32", reconstruct(under_complete, images)),
                           ("code 1000", reconstruct(over_complete, images))]:
        grid_rows.append(picture[:N_COLUMNS])
        grid_titles += [label] + [""] * (N_COLUMNS - 1)  # a title on the first image of a row
plot.image_grid(np.concatenate(grid_rows), figure("03_reconstructions.png"), nrow=N_COLUMNS,
                titles=grid_titles, value_range=(0, 1))

# %% [markdown]
# In `03_reconstructions.png`, each group of three rows is an input set, then what the code of 32
# and the code of 1000 make of it. The small code draws blurry digit-like blobs for the noise and
# the shuffled digits; the large code gives back the speckles themselves.
#
# ## The border: a copier only copies what it was trained on
#
# Now we put noise on *every* pixel, border included. Training never showed the models a
# non-black border. The gradient of the loss with respect to the encoder weight that reads pixel
# $j$ is proportional to $x_j$, which is 0 there, so those weights have kept their random initial
# values: even the over-complete model cannot copy the border, and the noise it reads there lands
# in the code as random signal that the decoder spreads over the digit area too.

# %%
full_frame_noise = rng.random((N_SHOW, 784)).astype(np.float32)
border = ~digit_area
for code_size, model in models_by_code.items():
    r = reconstruct(model, full_frame_noise)
    inside = metrics.mse_per_pixel(full_frame_noise[:, digit_area], r[:, digit_area])
    outside = metrics.mse_per_pixel(full_frame_noise[:, border], r[:, border])
    print(f"code {code_size:4d}: noise on every pixel, error {inside:.4f} in the digit area, "
          f"{outside:.4f} on the border")

# %% [markdown]
# ## Feature learning: which code is the better representation?
#
# The course notes list *feature learning* among the uses of an autoencoder: the code as the
# input of another task. A **linear probe** measures how much class information a code exposes:
# freeze the encoder, compute the codes of a few thousand labelled training images, fit a softmax
# regression (one linear layer) from code to digit label, and report its accuracy on test codes.
# `metrics.linear_probe` does exactly that (it standardises each feature first). The raw
# pixels are the baseline: any code worth having should do at least as well from fewer numbers,
# or better from the same number.

# %%
N_PROBE = pick(10000, 1500)  # labelled training images for the probe


probe_images, probe_labels = x_train[:N_PROBE], y_train[:N_PROBE]
features = {
    "pixels (784)": (probe_images, x_test),
    "code 32": (encode(under_complete, probe_images), encode(under_complete, x_test)),
    "code 1000": (encode(over_complete, probe_images), encode(over_complete, x_test)),
}
accuracies = {}
for name, (train_features, test_features) in features.items():
    accuracies[name] = metrics.linear_probe(train_features, probe_labels, test_features, y_test)
    print(f"linear probe on {name:13s}: test accuracy {100 * accuracies[name]:.1f} %  "
          f"({train_features.shape[1]} numbers per image)")

# %% [markdown]
# In the full run, thirty-two numbers gave nearly the accuracy of all 784 pixels (89.2 % against
# 89.5 %): the under-complete code has kept most of what tells the digits apart. The 1000 numbers
# of the over-complete code are no better than the pixels they copy (88.3 %, slightly worse: more
# numbers to fit from the same labelled images). A *linear* code cannot expose anything a linear
# probe would not already find in the pixels themselves: a linear function of $z = W_e x + b_e$ is
# a linear function of $x$.
#
# ## A nonlinear over-complete code
#
# The notes' over-complete code "maps the input data in a higher dimensional domain acting as
# Kernel function": like the feature map of a kernel SVM, it should turn the pixels into more
# numbers, in which the classes are easier to separate *linearly* than in the pixels. A linear
# code cannot do that, as we just saw, so we make the code nonlinear,
#
# $$z = \operatorname{ReLU}(W_e x + b_e) \in \mathbb{R}^{1000}, \qquad
#   r = \operatorname{sigmoid}(W_d z + b_d),$$
#
# trained with the Bernoulli cross-entropy of lesson 01. Each code unit is now a feature
# detector: it is zero until its weighted sum of pixels passes a threshold, so a probe on $z$
# draws boundaries that are bent in pixel space. A nonlinearity alone does not stop the copying,
# though: with 1000 units, a ReLU code can still hold the image (pixel $i$ in unit $i$:
# pixels are never negative, so the ReLU passes them unchanged). The notes' answer is a
# regulariser, and we take the first one on their list, the sparsity penalty of the next
# lesson,
#
# $$L\big(x, g(f(x))\big) + \lambda \sum_i |z_i|,$$
#
# which charges every active unit and so rewards describing each image with a few units. We
# train the same network twice, with $\lambda = 0$ (no regulariser) and $\lambda = 0.3$
# (`models.SparseAutoencoder`, whose `l1` is $\lambda$), for the same epochs as the linear
# models, and ask the same questions: what do they reconstruct, and what does a linear probe
# read from their codes?

# %%
LAMBDA = 0.3


def nonlinear_over_complete(lam):
    """784 -> ReLU code of 1000 -> 784 (sigmoid, cross-entropy), with the penalty lam sum |z_i|."""
    tg.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(784, BIG_CODE), nn.ReLU())
    return models.SparseAutoencoder(encoder, nn.Linear(BIG_CODE, 784), l1=lam,
                                    reconstruction="bce")


nonlinear = {"ReLU 1000": nonlinear_over_complete(0.0),
             "ReLU 1000 + L1": nonlinear_over_complete(LAMBDA)}
print(f"{'':>15} {'active units':>13}" + "".join(f"{name:>17}" for name in test_sets)
      + "   probe accuracy")
for name, model in nonlinear.items():
    train(model)
    codes_test = encode(model, x_test)
    row = "".join(f"{metrics.mse_per_pixel(images, reconstruct(model, images)):17.5f}"
                  for images in test_sets.values())
    accuracies[name] = metrics.linear_probe(encode(model, probe_images), probe_labels,
                                            codes_test, y_test)
    print(f"{name:>15} {np.mean(np.sum(codes_test > 0, axis=1)):13.1f}{row}   "
          f"{100 * accuracies[name]:.1f} %")
print("(active units: mean number of nonzero code units per test digit, of 1000; then the "
      "squared error per pixel on each set, as above)")

# %% [markdown]
# In the full run (three epochs, as for the linear models):
#
# - **ReLU, no regulariser**: 925 of the 1000 units are active for a typical test digit, and
#   it reconstructs test digits with an error of 0.0019 per pixel, about nine times smaller than
#   the code of 32's (0.0178) but far above the linear code of 1000's 0.00005. Its probe reads
#   91.2 %, 1.7 points more than the pixels: the nonlinearity alone helps a little.
# - **ReLU with the L1 penalty**: only 83 units active per digit, a reconstruction error of
#   0.0057 (the price of describing each digit with fewer units), and the best probe of the
#   lesson, **93.2 %**: 3.7 points above the pixels, 4.0 above the under-complete code and 4.9
#   above the linear over-complete one. (With 10,000 test digits, one standard error of an
#   accuracy near 90 % is 0.3 points; that counts the sampling of the test digits, not the
#   randomness of training.)
#
# Neither ReLU model passes noise through the way the linear code of 1000 does (0.0021 on
# noise): their errors on noise (0.113 and 0.112) are above the code of 32's (0.085), and on
# shuffled digits (0.073 and 0.077) close to it (0.078). So the kernel-like lifting of the notes
# does happen, on a small scale: more numbers than pixels, nonlinear in the pixels and kept from
# copying, give a linear classifier something the pixels do not. It is still far from what a
# classifier trained on the labels reaches (the one that ships with tinygen, used from lesson
# 05 on, is 99 % accurate): the autoencoder never saw a label, and nothing told it which of the
# ways digits vary matter for telling them apart.

# %%
fig = plot.new_figure(8.0, 3.8)
ax = fig.add_subplot()
names = list(accuracies)
values = [100 * accuracies[name] for name in names]
tick_labels = ["pixels\n784 numbers", "code 32\nlinear", "code 1000\nlinear",
               "code 1000\nReLU", "code 1000\nReLU + L1"]
bars = ax.bar(tick_labels, values, color=["0.6", "C0", "C3", "C1", "C2"])
for bar, value in zip(bars, values):
    ax.text(bar.get_x() + bar.get_width() / 2, value + 0.5, f"{value:.1f} %", ha="center")
ax.set_ylim(min(values) - 10, 100)
ax.set_ylabel("test accuracy (%)")
ax.set_title(f"Linear probe trained on {N_PROBE} labelled images")
plot.save(fig, figure("03_probe_accuracy.png"))

# %% [markdown]
# ## So, how big should the code be?
#
# Size alone is a blunt tool. Too small, and the code loses detail the data really has (the code
# of 32 blurs every digit); too big, and the network can copy. Between the two, the right size
# depends on how complex the data is, which we rarely know. The course notes' answer is the
# **regularised autoencoder**: keep a code as large as we like, and *change the loss* so that
# copying is no longer the best solution. The loss then rewards other properties on top of
# $x \approx r$:
#
# - a **sparse** code: few units active for any one image (next lesson, $L + \lambda\sum_i |z_i|$);
# - robustness to noise: reconstruct $x$ from a corrupted $\tilde{x}$ (denoising, lesson 05);
# - a code that changes little when $x$ changes: small derivatives $\nabla_x z_i$ (contractive,
#   lesson 06).
#
# A copier scores badly on all three: every unit is active, noise passes through, and the code
# moves with every pixel.

# %%
print(f"elapsed {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. **Sizes in between.** Set `BIG_CODE = 784` (exactly the input size), then `BIG_CODE = 256`.
#    How do the errors on noise and shuffled digits move, and the probe accuracy?
# 2. **Longer training.** Set `EPOCHS = pick(10, 2)`: does the over-complete model get closer to a
#    copier (smaller error on noise)? Does the under-complete one?
# 3. **A nonlinear under-complete model.** Replace `under_complete` by
#    `models.mlp_autoencoder(784, (256,), 32, reconstruction="bce")` (a sigmoid output): compare
#    its error on noise and its probe accuracy with the linear code of 32.
# 4. **Where the copy fails.** Plot `full_frame_noise[:8]` and the over-complete model's
#    reconstructions with `plot.image_grid`: where in the image is the noise lost?
# 5. **Bias the copier.** In the hand-made copier, set `copier.decoder.bias.data[...] = 0.1`: the
#    loss is no longer zero. By how much does it grow, and why is it the same for digits and noise?
# 6. **The sparsity weight.** Set `LAMBDA = 0.1`, then `1.0`: how many units stay active, and where
#    does the probe accuracy peak? (Too strong a penalty leaves too few units to tell the digits
#    apart.)
# 7. **Noise as the regulariser.** Replace `nonlinear_over_complete(LAMBDA)` by a denoising model
#    with the same layers, `models.DenoisingAutoencoder(nn.Sequential(nn.Linear(784, BIG_CODE),
#    nn.ReLU()), nn.Linear(BIG_CODE, 784), noise="masking", level=0.5)` (lesson 05): it is trained
#    to restore the pixels that the noise set to 0, half of them, which a copier cannot do.
#    Compare its probe accuracy with the L1 model's.
