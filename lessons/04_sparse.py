# %% [markdown]
# # 04: Sparse autoencoders
#
# Lesson 03 ended with a dilemma: a small code blurs the digits, a large one can copy anything.
# The way out in the course notes is to keep a generous code and **change the loss**. A sparse
# autoencoder adds a penalty that makes it expensive for code units to be active, so each image
# has to be described by *a few* units out of many. The units then specialise: each one responds
# to one kind of pattern (a stroke, a loop, a part of a digit) and stays silent otherwise.
#
# We train the same network with and without the penalty, count how many code units each image
# uses, sweep the strength $\lambda$ of the penalty to see what sparsity costs in reconstruction
# error, and look at what the units have learnt.
#
# Runs in about 35 s on a 2-core CPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 2 s.

# %% [markdown]
# ## The sparsity penalty
#
# The loss of a sparse autoencoder is the reconstruction loss plus a penalty $\Omega$ on the code
# $z = f(x)$:
#
# $$L\big(x, g(f(x))\big) + \Omega(z), \qquad \Omega(z) = \lambda \sum_{i} |z_i|,$$
#
# with $\lambda \ge 0$ a constant we choose. The sum runs over the units of the code layer, and
# like $L$ the penalty is computed per image and averaged over a batch.
#
# Why does an $L_1$ penalty give *exact* zeros rather than merely small values? Its gradient
# with respect to an active unit is $\lambda\,\mathrm{sign}(z_i)$, the same push towards zero
# however small $z_i$ already is (a squared penalty $z_i^2$ would push less and less and stop
# short of zero). We use a ReLU code, $z_i = \max(0, a_i)$ with $a_i$ the unit's input: once
# the push has made $a_i$ negative, $z_i$ is exactly 0, the unit is switched off for that image,
# and it costs nothing. A unit stays on only where the reconstruction needs it enough to pay
# $\lambda z_i$.

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

x_train, _ = mnist("train", n=pick(None, 2000))
x_test, _ = mnist("test", n=pick(2000, 500))
print(f"train {x_train.shape}, test {x_test.shape}" + ("   (quick mode)" if QUICK else ""))

# %% [markdown]
# ## The model
#
# One layer each way: the encoder is $z = \mathrm{ReLU}(W_e x + b_e)$ with 512 code units, and the
# decoder gives $r = \mathrm{sigmoid}(W_d z + b_d)$, trained with the Bernoulli cross-entropy as
# in lesson 01. 512 is less than the 784 pixels, but lesson 03 showed that 32 numbers already
# hold most of a digit: this code has far more room than the digits need, and without a penalty
# the network spreads every image over most of its units.
#
# `models.SparseAutoencoder(encoder, decoder, l1=lam)` adds $\lambda \sum_i |z_i|$ to the loss
# (with `l1=0` it is a plain autoencoder). It also offers a second kind of sparsity penalty,
# `kl_target=(rho, beta)`, which we meet at the end of the lesson.

# %%
CODE_SIZE = 512
LAMBDA = 0.3


def make_autoencoder(lam):
    """784 -> 512 ReLU code -> 784 (sigmoid), with the penalty lam * sum_i |z_i|."""
    encoder = nn.Sequential(nn.Linear(784, CODE_SIZE), nn.ReLU())
    decoder = nn.Linear(CODE_SIZE, 784)
    return models.SparseAutoencoder(encoder, decoder, l1=lam)


plain = make_autoencoder(0.0)
sparse = make_autoencoder(LAMBDA)
print(sparse)

# %% [markdown]
# ## The penalty by hand
#
# Before training, we compute $\Omega(z)$ for one batch ourselves, from the code the encoder
# gives, and compare it with the `l1` term that the model's `loss` reports.

# %%
batch = tg.tensor(x_train[:128])
with tg.no_grad():
    z = sparse.encode(batch).data  # (128, 512), every entry >= 0 (ReLU)
    total_loss, terms = sparse.loss(batch)

omega_per_image = LAMBDA * np.abs(z).sum(axis=1)  # lambda * sum_i |z_i|, one value per image
omega_by_hand = omega_per_image.mean()  # averaged over the batch, like the reconstruction loss
print(f"Omega by hand {omega_by_hand:.4f}, model's l1 term {terms['l1'].item():.4f}")
print(f"loss = recon + l1: {terms['recon'].item():.2f} + {terms['l1'].item():.2f} "
      f"= {total_loss.item():.2f}")
assert np.isclose(omega_by_hand, terms["l1"].item(), rtol=1e-4)

# %% [markdown]
# ## Training with and without the penalty
#
# Both models start from their own random weights and see the same data: Adam, learning rate
# $10^{-3}$, mini-batches of 128.

# %%
EPOCHS = pick(4, 2)


def train(model, images, epochs):
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, DataLoader(images, batch_size=128), optimizer, epochs, progress=False)


for name, model in [("no penalty", plain), (f"lambda = {LAMBDA}", sparse)]:
    history = train(model, x_train, EPOCHS)
    last = {key: values[-1] for key, values in history.items()}
    print(f"{name:>14}: reconstruction loss {last['recon']:.2f}, "
          f"penalty {last.get('l1', 0.0):.2f} (training set, epoch {EPOCHS})")

# %% [markdown]
# ## How many units does an image use?
#
# We encode the test images and count, for each image, the units with $z_i > 0$: the **active**
# units. With a ReLU code an inactive unit is exactly zero, so no threshold is needed. We also
# count the units that are active for *no* test image at all ("dead" units).

# %%
def code_statistics(model, images):
    """Mean active units per image, fraction of zeros, dead units, test MSE per pixel."""
    codes = encode(model, images)
    active = codes > 0
    return {
        "codes": codes,
        "active_per_image": active.sum(axis=1),
        "zero_fraction": 1.0 - active.mean(),
        "dead_units": int((~active.any(axis=0)).sum()),
        "mse": metrics.mse_per_pixel(images, reconstruct(model, images)),
    }


stats = {"no penalty": code_statistics(plain, x_test),
         f"lambda = {LAMBDA}": code_statistics(sparse, x_test)}
print(f"{'':>14}  active units per image   zeros in the code   dead units   test MSE/pixel")
for name, s in stats.items():
    print(f"{name:>14}  {s['active_per_image'].mean():8.1f} of {CODE_SIZE}       "
          f"{100 * s['zero_fraction']:10.1f} %   {s['dead_units']:10d}   {s['mse']:14.4f}")

# %%
fig = plot.new_figure(12, 3.6)
ax_one, ax_values, ax_active = fig.subplots(1, 3)
colours = {"no penalty": "0.5", f"lambda = {LAMBDA}": "C3"}

# (a) the code of one test digit, unit by unit
for name, s in stats.items():
    ax_one.plot(np.arange(CODE_SIZE), s["codes"][0], ".", markersize=3, color=colours[name],
                label=name)
ax_one.set_xlabel("code unit i")
ax_one.set_ylabel("$z_i$")
ax_one.set_title("The code of one test digit")
ax_one.legend()

# (b) every code value of every test image; the bar at 0 holds the inactive units
high = max(s["codes"].max() for s in stats.values())
bins = np.linspace(0, high, 60)
for name, s in stats.items():
    ax_values.hist(s["codes"].ravel(), bins=bins, histtype="step", linewidth=1.5,
                   color=colours[name], label=name)
ax_values.set_yscale("log")
ax_values.set_xlabel("$z_i$ (all units, all test images)")
ax_values.set_ylabel("count")
ax_values.set_title("Code values")
ax_values.legend()

# (c) how many units each image switches on
bins = np.linspace(0, CODE_SIZE, 52)
for name, s in stats.items():
    ax_active.hist(s["active_per_image"], bins=bins, color=colours[name], alpha=0.7, label=name)
ax_active.set_xlabel(f"active units per image (of {CODE_SIZE})")
ax_active.set_ylabel("test images")
ax_active.set_title("Active units per image")
ax_active.legend()
plot.save(fig, figure("04_code_histograms.png"))

# %% [markdown]
# Without the penalty, most units are on for every image: the code is *dense*, each image a
# blend of hundreds of units. With it, most of the code is exactly zero (the tall first bar of
# the middle panel), and each image is described by a small set of units of its own. The price
# is a higher reconstruction error.
#
# The penalty also leaves many units **dead**: switched off for every image, so they never get a
# gradient from the reconstruction again. In the full run, 285 of the 512 units never fire on the
# 2,000 test images with the penalty, more than half, against 24 without it (the "dead units"
# column above). That is a known side effect of $L_1$ on a ReLU code; the units that survive
# share the work.
#
# ### A loophole in the penalty
#
# $\Omega$ measures the size of $z$, but the decoder can undo any scale: halve every $z_i$ and
# double the columns of $W_d$, and the reconstruction is unchanged while $\Omega$ halves. Training
# uses this loophole a little. Compare the size of the codes and of the decoder's columns:

# %%
for name, model in [("no penalty", plain), (f"lambda = {LAMBDA}", sparse)]:
    column_norms = np.linalg.norm(model.decoder.weight.data, axis=0)  # one per code unit
    codes = stats[name]["codes"]
    print(f"{name:>14}: sum_i |z_i| per image {np.abs(codes).sum(axis=1).mean():7.1f}, "
          f"mean length of a decoder column {column_norms.mean():.2f}")

# %% [markdown]
# The sparse model's codes are much smaller in total, partly because fewer units are on and
# partly because its decoder columns grew to compensate. The sparsity we counted is real (those
# zeros are exact), but for a fair penalty one often fixes the length of each decoder column
# (rescaling them after every step) or adds weight decay on $W_d$.
#
# ## The trade-off: sweeping $\lambda$
#
# A larger $\lambda$ buys a sparser code with a worse reconstruction. To see the whole curve we
# train one model per $\lambda$. To keep it quick each model gets a subset of the training set
# and two epochs, so the numbers are rougher than above, but every model gets the same budget.

# %%
LAMBDAS = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0]
SWEEP_IMAGES = pick(20000, 600)
SWEEP_EPOCHS = pick(2, 1)

sweep = []
for lam in LAMBDAS:
    tg.manual_seed(1)  # the same starting weights for every lambda
    model = make_autoencoder(lam)
    train(model, x_train[:SWEEP_IMAGES], SWEEP_EPOCHS)
    s = code_statistics(model, x_test)
    sweep.append((lam, s["active_per_image"].mean(), s["mse"], s["dead_units"]))
    print(f"lambda {lam:5.2f}: {s['active_per_image'].mean():6.1f} active units per image, "
          f"{s['dead_units']:3d} dead, test MSE per pixel {s['mse']:.4f}")

# %%
fig = plot.new_figure(10, 3.8)
ax_tradeoff, ax_lambda = fig.subplots(1, 2)
lams, actives, mses, deads = (np.array(column) for column in zip(*sweep))

ax_tradeoff.plot(actives, mses, "o-", color="C3")
for k, (lam, active, mse) in enumerate(zip(lams, actives, mses)):
    below = k % 2 == 1  # alternate the labels above and below the curve so they do not collide
    ax_tradeoff.annotate(f"$\\lambda$={lam:g}", (active, mse), textcoords="offset points",
                         xytext=(0, -14 if below else 8), ha="center", fontsize=8)
ax_tradeoff.set_xlim(0, CODE_SIZE)
ax_tradeoff.margins(y=0.15)
ax_tradeoff.set_xlabel(f"active units per image (mean, of {CODE_SIZE})")
ax_tradeoff.set_ylabel("test MSE per pixel")
ax_tradeoff.set_title("Sparsity against reconstruction")

# lambda on a log axis; "symlog" keeps a linear stretch near 0 so that lambda = 0 fits too
ax_lambda.plot(lams, actives, "o-", color="C0", label="active units per image")
ax_lambda.plot(lams, deads, "s--", color="0.4", label="dead units")
ax_lambda.set_xscale("symlog", linthresh=LAMBDAS[1])
ax_lambda.set_xlim(0, LAMBDAS[-1] * 1.5)
ax_lambda.set_ylim(0, CODE_SIZE)
ax_lambda.set_xlabel("$\\lambda$")
ax_lambda.set_ylabel(f"units (of {CODE_SIZE})")
ax_lambda.set_title("Units against $\\lambda$")
ax_lambda.legend()
plot.save(fig, figure("04_lambda_sweep.png"))

# %% [markdown]
# Each step up in $\lambda$ removes active units and adds reconstruction error; there is no free
# lunch, only a choice. Small values cost little and already switch off many units; the largest
# leaves a handful of units per image, and the error grows quickly. Large values also kill units
# wholesale (the dashed line), so the code no longer uses the room it has. Try $\lambda = 3$ here:
# nearly every unit dies, and the decoder can only output one average image.
#
# ## What the units learn
#
# Unit $i$ adds $z_i$ times the column $i$ of $W_d$ to the decoder's input of the sigmoid, so
# that column, drawn as a 28 x 28 image, is the pattern the unit stands for (white: ink it adds,
# black: ink it removes). We draw the columns of units picked at random among those in use (on
# for at least 1 % of the test images), each scaled to its own largest value, for the model
# without the penalty (top rows) and with it (bottom rows).

# %%
N_FEATURES = 40


def feature_images(model, codes):
    """Decoder columns of N_FEATURES units picked at random among those active on at least 1 %
    of the test images, each column scaled to [-1, 1]."""
    live = np.flatnonzero((codes > 0).mean(axis=0) >= 0.01)
    chosen = rng.choice(live, size=min(N_FEATURES, len(live)), replace=False)
    columns = model.decoder.weight.data.T[chosen]  # (N_FEATURES, 784): one row per unit
    return columns / np.abs(columns).max(axis=1, keepdims=True)


plain_features = feature_images(plain, stats["no penalty"]["codes"])
sparse_features = feature_images(sparse, stats[f"lambda = {LAMBDA}"]["codes"])
titles = (["no penalty"] + [""] * (len(plain_features) - 1)
          + [f"lambda {LAMBDA}"] + [""] * (len(sparse_features) - 1))
plot.image_grid(np.concatenate([plain_features, sparse_features]), figure("04_features.png"),
                nrow=10, titles=titles, value_range=(-1, 1))

# %% [markdown]
# Without the penalty the columns are mostly fine-grained speckle: each unit is one small
# ingredient of a dense mixture of hundreds, and means little on its own. With the penalty each
# column is a recognisable piece of handwriting: a slanted stroke, an arc, a loop, and often the
# outline of a whole digit written in one particular style. An image that switches on only a few
# units has to be built from such shapes, so each unit becomes a *detector* for one of them,
# which is what makes sparse codes good features. How the shapes change with $\lambda$ is
# exercise 1.
#
# ## The other sparsity penalty: a target activation
#
# The $L_1$ penalty acts on each image's code. A second classic penalty acts on each unit's
# **average** activation over the data. With a code in $(0, 1)$ (a sigmoid code layer), let
# $\hat\rho_j$ be the mean activation of unit $j$ over a batch, and pick a small target $\rho$
# (say 0.05). The penalty
#
# $$\Omega = \beta \sum_j \mathrm{KL}(\rho \,\|\, \hat\rho_j)
#   = \beta \sum_j \Big[\rho \log\frac{\rho}{\hat\rho_j}
#   + (1 - \rho)\log\frac{1 - \rho}{1 - \hat\rho_j}\Big]$$
#
# is zero when every unit is on for a fraction $\rho$ of the images, and grows as $\hat\rho_j$
# moves away. In tinygen: `models.SparseAutoencoder(encoder, decoder, kl_target=(rho, beta))`,
# with an encoder that ends in `nn.Sigmoid()`. It keeps each unit busy on average, so units
# rarely die, but it does not by itself force each image's code to be sparse.

# %%
print(f"elapsed {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. **Strength of the penalty.** Set `LAMBDA = 0.1` and then `LAMBDA = 1.0`: watch the active
#    units and dead units in the table, and how the features in `04_features.png` change (more
#    local strokes, or whole digits?).
# 2. **A truly over-complete code.** Set `CODE_SIZE = 1000` (more units than pixels, as in
#    lesson 03). Does the number of active units per image grow with the code, or stay about
#    the same?
# 3. **Close the loophole.** After `optimizer.step()`, rescale every column of
#    `model.decoder.weight.data` to length 1 (write your own loop instead of `fit`, or use
#    `fit(..., on_epoch_end=...)` to do it once an epoch). How do the active units and the
#    features change at the same $\lambda$?
# 4. **The KL target.** Build `make_autoencoder` with `nn.Sigmoid()` instead of `nn.ReLU()` and
#    `kl_target=(0.05, 3.0)` instead of `l1`. A sigmoid is never exactly 0: count units with
#    $z_i > 0.1$ as active. Are the codes sparse per image, or only on average?
# 5. **Sparse codes as features.** Train `metrics.linear_probe` on `encode(sparse, ...)` and on
#    `encode(plain, ...)` with a few thousand labelled training images (`mnist("train")` also
#    returns the labels): which code is the better input for a classifier?
