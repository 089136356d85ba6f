# %% [markdown]
# # 08b: A Gaussian decoder, and the VAE in bits per pixel
#
# Lesson 08 built the variational autoencoder with a decoder that outputs one number per pixel,
# a Bernoulli probability. The course notes draw it differently: "the sub-net 2 generates two
# parameters of a Gaussian distribution", a mean and a variance for every pixel. This lesson
# builds that decoder and finds that, trained naively on MNIST, it breaks: its variances shrink
# without end and the loss it reports stops meaning anything. We watch it happen, compare the
# two standard fixes (a variance floor and dequantisation), and then train the repaired model and
# measure it the way density models of images are measured, in **bits per pixel**, with a
# careful look at what that number bounds. At the end we draw images from the decoder's Gaussian
# and see what the decoder's independence assumption looks like.
#
# Runs in about a minute on a 2-core CPU (full: 65 s; see
# `lessons/README.md` for how it was measured); `TINYGEN_QUICK=1` runs it in about 6 s.
#
# ## What we keep from lesson 08
#
# The encoder (weights $\theta$) maps an image $x$ to the mean $\mu(x)$ and log-variance
# $\log \sigma^2(x)$ of $q_\theta(z \mid x) = \mathcal{N}(\mu, \operatorname{diag} \sigma^2)$;
# the sampler draws $z = \mu + \sigma \odot \varepsilon$ with $\varepsilon \sim \mathcal{N}(0, I)$;
# the decoder (weights $\phi$) gives the parameters of $p_\phi(x \mid z)$; the prior is
# $p(z) = \mathcal{N}(0, I)$. Training minimises the negative evidence lower bound per image,
#
# $$-\text{ELBO}(x) = \mathbb{E}_{z \sim q_\theta(z \mid x)}\big[-\log p_\phi(x \mid z)\big]
#   + \mathrm{KL}\big(q_\theta(z \mid x) \,\|\, \mathcal{N}(0, I)\big),$$
#
# the first term estimated with one sampled $z$, the KL in closed form. The model is the same
# `models.mlp_vae` ($784 \to 400 \to 2 \cdot 20$, and $20 \to 400 \to$ the decoder's outputs),
# with $k = 20$ code dimensions.
#
# All logarithms here are natural logarithms, so the losses are in **nats**: the unit of
# information of the natural logarithm, as the bit is that of $\log_2$. An event of probability
# $P$ carries $-\ln P$ nats or $-\log_2 P$ bits, and since $\log_2 P = \ln P / \ln 2$,
# 1 nat $= 1 / \ln 2 \approx 1.443$ bits.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import mnist_classifier as mc
from tinygen import models, plot
from tinygen.data import DataLoader
from tinygen.data.transforms import Dequantizer, dequantize
from tinygen.models.vae import bits_per_dim
from tinygen.nn import functional as F
from tinygen.train import fit

from course import QUICK, figure, mnist, pick

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)

x_train, _ = mnist("train", n=pick(None, 3000))
x_test, _ = mnist("test", n=pick(None, 1000))
print(f"train {x_train.shape}, test {x_test.shape}" + ("   (quick mode)" if QUICK else ""))
LATENT = 20

# %% [markdown]
# ## Sub-net 2 as the notes draw it: a Gaussian decoder
#
# The notes' sub-net 2 "generates two parameters of a Gaussian distribution". Lesson 08 gave it
# one parameter per pixel, a Bernoulli probability, which treats a grey pixel as a coin that is
# sometimes black and sometimes white. A Gaussian decoder outputs a mean $m_i$ and a log-variance
# $\log \sigma_i^2$ for every pixel $i$ (1568 numbers for 784 pixels), and the reconstruction
# term becomes the Gaussian negative log-density summed over the pixels:
#
# $$-\log p_\phi(x \mid z) = \sum_{i=1}^{784} \Big[\tfrac12 \log(2 \pi \sigma_i^2)
#   + \frac{(x_i - m_i)^2}{2 \sigma_i^2}\Big].$$
#
# (`models.mlp_vae(..., likelihood="gaussian")`; we pass the means through a sigmoid,
# `mean_activation="sigmoid"`, so that they lie in $(0, 1)$ like the pixels.) Learning
# $\sigma_i$ is what makes this a density model: a pixel the decoder is sure of gets a small
# $\sigma_i$ and a high density, a pixel it is unsure of a large one.
#
# ### The failure: the variance collapses
#
# Look at one pixel that is 0 in every training image (MNIST's border is full of them). The
# Gaussian that fits it best has mean 0 and variance 0, and its density at 0,
# $1 / \sqrt{2 \pi \sigma^2}$, is infinite: as $\log \sigma^2 \to -\infty$ the loss goes to
# $-\infty$. The decoder can always lower its loss by shrinking $\sigma$ on such pixels, and
# the "likelihood" it reports stops meaning anything. Worse, a pixel that is black in almost
# every image gets a tiny $\sigma$ too, and the rare image with ink there pays
# $(x_i - m_i)^2 / 2\sigma_i^2$, a huge number: the loss spikes, and can overflow.
#
# Two fixes are used, and we try both:
#
# - **A variance floor**: $\log \sigma^2 \ge \log \sigma_\text{min}^2$. A hard clamp would give
#   no gradient below the floor (a pixel stuck there never learns again), so tinygen uses a
#   smooth one, `floored_logvar`:
#   $\log \sigma^2 = f + \operatorname{softplus}(r - f)$ with $f = \log \sigma_\text{min}^2$ and
#   $r$ the decoder's raw output. Far above the floor it is $r$ itself; below, it bends onto $f$;
#   its derivative $\operatorname{sigmoid}(r - f)$ is never 0. The loss per pixel is then at least
#   $\frac12 \log(2 \pi \sigma_\text{min}^2)$: bounded.
# - **Dequantisation**: the pixels are really 256 levels, $k = 0, \dots, 255$. Train on
#   $x = (k + u) / 256$ with $u \sim U[0, 1)$ drawn anew for every pixel in every epoch
#   (`transforms.dequantize`, or `Dequantizer` in a `DataLoader`). Level $k$ becomes the interval
#   $[k/256, (k+1)/256)$, filled evenly, and no density can be infinitely concentrated on data
#   that is spread out: on an always-black pixel the best Gaussian has the variance of
#   $U[0, 1/256)$, $\sigma^2 = 1 / (12 \cdot 256^2)$, $\log \sigma^2 = -13.6$, and no density at
#   all can beat an average $-\log p = -\log 256 = -5.55$ nats on that pixel (the entropy of
#   the uniform spread). Shrinking $\sigma$ further *raises* the loss.
#
# We take $\sigma_\text{min} = 1 / (256 \sqrt{12})$ for the floor: the spread dequantisation gives
# every pixel anyway, so the floor forbids only the variances that are useless on dequantised
# data. Three Gaussian VAEs, the same initial weights and the same batches of training images,
# differ only in that: $x = k / 255$ with no floor, $x = k / 255$ with the floor, and the
# dequantised $x = (k + u) / 256$ with no floor. We record, after every Adam step, the loss, the
# lowest log-variance in the batch, and the mean log-variance of the always-black pixels.

# %%
SIGMA_BIN = 1 / (256 * np.sqrt(12))  # the standard deviation of U[0, 1/256): a bin's spread
LOGVAR_BIN = 2 * np.log(SIGMA_BIN)

pixels_train = np.rint(x_train * 255).astype(np.uint8)  # back to the stored levels 0..255
pixels_test = np.rint(x_test * 255).astype(np.uint8)
always_black = pixels_train.max(axis=0) == 0
print(f"{always_black.sum()} of 784 pixels are 0 in every training image; "
      f"log of a bin's variance 1/(12 256^2): {LOGVAR_BIN:.2f}")


def gaussian_vae(sigma_min=None):
    """Lesson 08's VAE with a Gaussian decoder (sigmoid means), always the same initial weights."""
    tg.manual_seed(0)
    return models.mlp_vae(784, hidden=400, latent_dim=LATENT, likelihood="gaussian",
                          mean_activation="sigmoid", sigma_min=sigma_min)


def watch_training(model, batches):
    """Adam steps on `batches`, recording per step the loss, the lowest log-variance and the mean
    log-variance of the always-black pixels; stops at the first loss that is not finite."""
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-3)
    record = {"loss": [], "lowest": [], "black": []}
    for x in batches:
        x = tg.tensor(x)
        mu, logvar = model.encode(x)
        mean, pixel_logvar = model.decode(model.reparameterize(mu, logvar))
        reconstruction = F.gaussian_nll(x, mean, pixel_logvar, reduction="none").sum(axis=1)
        loss = reconstruction.mean() + F.kl_normal(mu, logvar, reduction="batchmean")
        record["loss"].append(loss.item())
        if not np.isfinite(loss.item()):
            break
        record["lowest"].append(pixel_logvar.data.min())
        record["black"].append(pixel_logvar.data[:, always_black].mean())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: np.array(values) for name, values in record.items()}


STEPS = pick(300, 20)
order = rng.permutation(len(pixels_train))[:STEPS * 128].reshape(STEPS, 128)
noise = np.random.default_rng(1)
treatments = {
    "k/255, no floor": (None, lambda k: k / np.float32(255)),
    "k/255, floor": (SIGMA_BIN, lambda k: k / np.float32(255)),
    "dequantised, no floor": (None, lambda k: dequantize(k, noise)),
}
runs = {}
with np.errstate(all="ignore"):  # the collapsing run overflows on purpose
    for name, (sigma_min, scale) in treatments.items():
        runs[name] = watch_training(gaussian_vae(sigma_min),
                                    (scale(pixels_train[rows]) for rows in order))
print(f"{'':>22} {'steps':>6} {'loss: median':>13} {'largest':>10} {'spikes':>7} "
      f"{'log s^2: lowest':>16} {'black: last':>12} {'below bin':>10}")
for name, run in runs.items():
    finite = run["loss"][np.isfinite(run["loss"])]
    steps = f"{len(finite)}" + ("" if len(finite) == STEPS else "*")
    spikes = np.sum(finite[50:] > 0)
    below = np.flatnonzero(run["black"] < LOGVAR_BIN)
    first_below = f"{below[0] + 1}" if len(below) else "never"
    print(f"{name:>22} {steps:>6} {np.median(finite[-50:]):13.0f} {finite.max():10.0f} "
          f"{spikes:7d} {run['lowest'].min():16.2f} {run['black'][-1]:12.2f} {first_below:>10}")
print("(* the loss stopped being finite at the next step; median over the last 50 finite steps;")
print(" spikes: steps after the 50th with a loss above 0; below bin: the first step at which the")
print(" always-black pixels' mean log-variance was below the log of a bin's variance)")

fig = plot.new_figure(width=11.0, height=4.0)
left, right = fig.subplots(1, 2)
for name, run in runs.items():
    left.plot(np.arange(1, len(run["lowest"]) + 1), run["loss"][:len(run["lowest"])], label=name,
              lw=0.8)
    right.plot(np.arange(1, len(run["black"]) + 1), run["black"], label=name)
left.set_yscale("symlog", linthresh=1000)
left.set_yticks([-1e3, 0, 1e3, 1e4, 1e5, 1e6, 1e7])
left.set_xlabel("Adam step")
left.set_ylabel("-ELBO per image (nats, symlog)")
left.legend(fontsize=8)
right.axhline(LOGVAR_BIN, color="k", ls="--", lw=0.8, label="log of a bin's variance = floor")
right.set_xlabel("Adam step")
right.set_ylabel("mean log sigma^2 of the always-black pixels")
right.legend(fontsize=8)
for ax in (left, right):
    ax.grid(True, alpha=0.3)
plot.save(fig, figure("08b_variance_collapse.png"))

# %% [markdown]
# In the full run (MNIST; 67 of the 784 pixels are 0 in all 60,000 training images), the three
# runs differed as the argument says:
#
# - **$k/255$, no floor**: the always-black pixels' mean $\log \sigma^2$ first went below the
#   level of a bin's variance, $-13.58$, at step 61, and after wandering around it went on down,
#   ending at $-17.37$; the lowest log-variance anywhere reached $-35.44$, a $\sigma$ of about
#   $2 \cdot 10^{-8}$. And the loss spiked whenever a batch put ink where the decoder had become
#   sure of black: 20 steps after the 50th had a loss above 0, against a typical $-1100$, the
#   largest 489,484 nats per image.
# - **$k/255$ with the floor**: the lowest log-variance was exactly the floor, $-13.58$; the
#   black pixels ended at $-13.32$. It still spiked (11 steps above 0 after the 50th), but its
#   largest loss was 2,446 nats: the floor caps what one surprised pixel can cost.
# - **dequantised, no floor**: one spike after the 50th step (its largest loss, 2,388, came
#   earlier, at about step 40), and the black pixels at $-11.16$ after 300 steps, well above the
#   $-13.58$ their spread allows and never below it. Its lowest log-variance, $-21.31$, shows what
#   dequantisation does and does not do: it does not forbid a tiny $\sigma$ at some pixel of
#   some image, it makes one *cost* on average instead of pay.
#
# The median losses ($-1107$, $-1202$, $-1102$ nats) cannot be compared across rows: on $k/255$
# data they are densities of values that never vary within a level, numbers that can go as
# low as the variance is allowed to go. For the rest of the lesson we use dequantisation. It
# removes the cause rather than a symptom: the loss becomes a bound on the code length of the
# actual discrete images (next section), and here it also trained the most smoothly. The floor
# is the safety belt for data that cannot be dequantised, or for a decoder that might still
# find a way to a zero variance; it bounds the loss, but a floored loss on $k/255$ data is still
# not the likelihood of anything.
#
# ### The Gaussian VAE on dequantised MNIST, in bits per pixel
#
# We train the dequantised model properly now: new noise $u$ in every epoch (`Dequantizer` as
# the loader's transform), one fixed draw for the test set, Adam at $10^{-3}$ and a last epoch at
# $10^{-4}$.
#
# A $-$ELBO in nats per image of a *density* on $[0, 1)^{784}$ is not yet a number to compare
# with anything: a density is not a probability, and (as the collapse showed) it can be made as
# large as we like where the data do not vary. What we can compare is the probability the model
# gives the images we actually have, which are discrete. Write an image as its vector of levels
# $k \in \{0, \dots, 255\}^D$, $D = 784$, and the model's density on $[0, 1)^D$ as $p$. The
# training images were $x = (k + u) / 256$ with $u \sim U[0, 1)^D$, so image $k$ owns the cube
# $\{(k + u) / 256 : u \in [0, 1)^D\}$ of side $1/256$ and volume $256^{-D}$, and the
# probability the model gives it is the mass of that cube,
#
# $$P(k) = \int_{\text{cube of } k} p(x)\,dx
#   = 256^{-D} \int_{[0, 1)^D} p\Big(\frac{k + u}{256}\Big)\,du
#   = 256^{-D}\; \mathbb{E}_u\Big[p\Big(\frac{k + u}{256}\Big)\Big]$$
#
# (substituting $x = (k + u) / 256$, $dx = 256^{-D}\,du$). The cubes of all images tile
# $[0, 1)^D$, so these probabilities add up to at most 1 (less if $p$ puts some mass outside
# $[0, 1)^D$, as a Gaussian does). On the scale of the levels, $y = k + u$, the same model is the
# density $256^{-D} p(y / 256)$ on $[0, 256)^D$, the cube of image $k$ is the unit cube
# $k + [0, 1)^D$ of volume 1, and $P(k)$ is simply that density averaged over $u$.
#
# Two inequalities take us from $P(k)$ to the $-$ELBO. Both are **Jensen's inequality**: for a
# convex function $f$ and a random variable $X$, $f(\mathbb{E}[X]) \le \mathbb{E}[f(X)]$ (the
# chord of a convex function lies above it). $-\log$ is convex, so
# $-\log \mathbb{E}[X] \le \mathbb{E}[-\log X]$ for any positive $X$.
#
# 1. **From the bin to the density.** With $X = p((k + u) / 256)$ and $u$ random,
#    $$-\log P(k) = D \log 256 - \log \mathbb{E}_u[p(x)]
#      \;\le\; \mathbb{E}_u[-\log p(x)] + D \log 256, \qquad x = \frac{k + u}{256}.$$
#    This is a statement about the whole image: $P(k)$ is the mass of the image's cube and $p(x)$
#    the density of the image, and $D \log 256$ is minus the log of the cube's volume, one
#    $\log 256$ for each pixel. It does not split into one such inequality per pixel: the VAE's
#    density $p(x) = \int p_\phi(x \mid z)\, p(z)\, dz$ is not a product of one density per pixel
#    (only given $z$ are the pixels independent).
# 2. **From the density to the ELBO.** The VAE cannot compute $p(x)$ either. Writing the integral
#    over codes as an expectation under the encoder's $q = q_\theta(z \mid x)$ and applying Jensen
#    with $X = p_\phi(x \mid z)\, p(z) / q(z)$, $z \sim q$:
#    $$-\log p(x) = -\log \mathbb{E}_{q}\Big[\frac{p_\phi(x \mid z)\, p(z)}{q(z)}\Big]
#      \;\le\; \mathbb{E}_{q}\big[-\log p_\phi(x \mid z)\big] + \mathbb{E}_{q}\Big[\log
#      \frac{q(z)}{p(z)}\Big] = -\text{ELBO}(x),$$
#    the reconstruction term plus the KL: this is why the ELBO is a *lower* bound on
#    $\log p(x)$.
#
# Together, for every image,
#
# $$-\log P(k) \;\le\; \mathbb{E}_u\Big[-\text{ELBO}\Big(\frac{k + u}{256}\Big)\Big]
#   + D \log 256,$$
#
# and dividing by $D \log 2$ turns nats per image into bits per pixel:
#
# $$\text{bits/dim} = \frac{-\text{ELBO}_\text{nats} / D + \log 256}{\log 2}$$
#
# (`models.vae.bits_per_dim`). Averaged over the test images it is an upper bound on
# $-\log_2 P(k) / D$, the length per pixel of the code that an ideal entropy coder built on the
# model would need to store the test images without loss.
#
# What we compute is not quite that bound. The test set is dequantised with **one** fixed draw of
# $u$ per image, and `vae.loss` estimates the reconstruction term with one draw of $z$ per image.
# Each image's $-$ELBO at its draws is a random number whose expectation over $u$ and $z$ is
# $\mathbb{E}_u[-\text{ELBO}]$, the image's bound less its constant $D \log 256$. So the test
# bits/dim is an *unbiased estimate* of the bound averaged over the test images: right on
# average over draws, but for one set of draws a little above or below it. With 10,000 test
# images the draws mostly average out; after training we measure by how much.
#
# Two baselines give the number a scale: the uniform model, every level equally likely, costs
# $\log_2 256 = 8$ bits/dim; the best model that treats pixels *independently*, a 256-level
# histogram per pixel counted on the training images (add-one smoothed), costs what we measure
# below. (Lesson 08's Bernoulli $-$ELBO is not comparable: its grey pixels are not probabilities
# of anything discrete.)

# %%
schedule = pick([1e-3, 1e-3, 1e-3, 1e-4], [1e-3])
vae_gaussian = gaussian_vae()
optimizer_gaussian = tg.optim.Adam(vae_gaussian.parameters(), lr=schedule[0])


def next_learning_rate(epoch, history):
    """After epoch `epoch` (1-based), set the learning rate of the next one from `schedule`."""
    for group in optimizer_gaussian.param_groups:
        group["lr"] = schedule[min(epoch, len(schedule) - 1)]


dequantised_loader = DataLoader(pixels_train, batch_size=128, transform=Dequantizer(seed=0))
x_test_dequantised = dequantize(pixels_test, np.random.default_rng(2))  # one fixed draw
history_gaussian = fit(vae_gaussian, dequantised_loader, optimizer_gaussian, len(schedule),
                       val_loader=DataLoader(x_test_dequantised, 1000, shuffle=False),
                       on_epoch_end=next_learning_rate, progress=False)
print(f"{'epoch':>5} {'lr':>6} {'-ELBO':>8} {'test -ELBO':>11} {'test bits/dim':>14}")
for epoch, (lr, loss, val_loss) in enumerate(
        zip(schedule, history_gaussian["loss"], history_gaussian["val_loss"]), start=1):
    print(f"{epoch:5d} {lr:6.0e} {loss:8.1f} {val_loss:11.1f} {bits_per_dim(val_loss, 784):14.3f}")


def histogram_bits_per_dim(train_levels, test_levels):
    """Test bits/dim of independent pixels, each a 256-level histogram of the training images."""
    pixel = np.arange(train_levels.shape[1])
    counts = np.bincount((pixel * 256 + train_levels).ravel(), minlength=784 * 256)
    p = (counts.reshape(784, 256) + 1) / (len(train_levels) + 256)  # add-one smoothing
    return -np.log2(p[pixel, test_levels]).sum(axis=1).mean() / 784


print(f"baselines: uniform {bits_per_dim(0.0, 784):.3f} bits/dim, independent pixel histograms "
      f"{histogram_bits_per_dim(pixels_train, pixels_test):.3f} bits/dim")
with tg.no_grad():
    mean_test, logvar_pixels = vae_gaussian.decode(vae_gaussian.encode(
        tg.tensor(x_test_dequantised))[0])
print(f"test images through their mean codes: log sigma^2 lowest {logvar_pixels.data.min():.2f}, "
      f"always-black pixels {logvar_pixels.data[:, always_black].mean():.2f} on average")

# %% [markdown]
# In the full run the test $-$ELBO reached $-1940.3$ nats per image after the four epochs,
# **4.430 bits/dim**: far better than the uniform model's 8, but far worse than the 1.690 of
# independent pixel histograms, a model that knows nothing about digits. The last epoch at
# $10^{-4}$ took it from 4.568 to 4.430: with smaller steps the decoder can make its means and
# variances more precise. On the black pixels it has nearly done so: through the test images'
# mean codes their average $\log \sigma^2$ is $-12.71$, close to the $-13.58$ their
# dequantisation spread allows. (In every epoch the test $-$ELBO is lower than the training
# one, because the training number averages over the epoch while the model improves.)
#
# How much does 4.430 depend on the draws behind it? We evaluate the trained model again, five
# times on the same dequantised test images with new draws of $z$, and five times on new
# dequantisations of the test images, each with new draws of $z$.

# %%
def test_bits_per_dim(model, x):
    """The test bits/dim of dequantised images x, with a new draw of z for every image."""
    model.eval()
    with tg.no_grad():
        total = sum(model.loss(tg.tensor(x[i:i + 1000]))[0].item() * len(x[i:i + 1000])
                    for i in range(0, len(x), 1000))
    return bits_per_dim(total / len(x), 784)


DRAWS = pick(5, 2)
fixed_draw = bits_per_dim(history_gaussian["val_loss"][-1], 784)
new_z = np.array([test_bits_per_dim(vae_gaussian, x_test_dequantised) for _ in range(DRAWS)])
new_u_and_z = np.array([test_bits_per_dim(vae_gaussian,
                                          dequantize(pixels_test, np.random.default_rng(seed)))
                        for seed in range(10, 10 + DRAWS)])
print(f"test bits/dim, the training run's evaluation: {fixed_draw:.4f}")
for name, values in (("the same u, new z", new_z), ("new u and new z", new_u_and_z)):
    print(f"  {name:>17}: " + ", ".join(f"{value:.4f}" for value in values)
          + f"; mean {values.mean():.4f}, standard deviation {values.std(ddof=1):.4f}")

# %% [markdown]
# The ten other estimates lay between 4.425 and 4.447 bits/dim (with the same $u$: 4.435 to
# 4.438; with new $u$ too: 4.425 to 4.447), and the training run's own evaluation, 4.4295, is
# one more draw among them. So the third decimal is noise: the test bits/dim is 4.43, give or
# take 0.01 (five draws of each kind give only a rough idea of the spread). That is more than
# one might expect from 10,000 images, most likely because a few pixel values weigh heavily:
# where the decoder is very sure ($\sigma$ down to $10^{-4}$ on the test images, from the lowest
# $\log \sigma^2$ above) a residual of 0.01 costs about 4,000 nats, and whether a draw produces
# such a residual is a matter of chance.
#
# Why so many bits? The Gaussian has the wrong shape for MNIST's pixels. A histogram can put a
# large share of a stroke pixel's probability on exactly level 255 and the rest on the greys; a
# Gaussian has one bump. Narrow, it pays heavily for every grey away from its mean; wide, it
# spreads its mass over many bins. The decoder settles for wide on the strokes: in the samples
# below the median $\sigma$ there is 0.235, and a pixel whose residuals match its $\sigma$ costs
# $\big(\frac12 \log(2 \pi e \sigma^2) + \log 256\big) / \log 2 \approx 8.0$ bits at
# $\sigma = 0.235$, as much as the uniform model (the formula, not a measurement). The
# background costs about 2.0 bits at its median $\sigma$ of 0.0038, and a perfectly fitted black
# pixel, $\sigma^2 = 1/(12 \cdot 256^2)$, 0.25 bits.
#
# ### The mean, and draws from the Gaussian
#
# `vae.sample(n)` decodes codes from the prior and shows the decoder's means $m_i$, as for the
# Bernoulli model. `vae.sample(n, mean=False)` draws the images themselves from
# $p_\phi(x \mid z)$: $x_i = m_i + \sigma_i \varepsilon_i$ with an independent
# $\varepsilon_i \sim \mathcal{N}(0, 1)$ for every pixel. Below, eight codes from the prior
# (columns): their means (top row) and two draws from the Gaussian of each.

# %%
tg.manual_seed(3)
with tg.no_grad():
    parameters = vae_gaussian.decode(tg.randn(8, LATENT))
    means = vae_gaussian.mean_image(parameters).data
    draws = [vae_gaussian.draw_image(parameters).data for _ in range(2)]
sigma = np.exp(parameters[1].data / 2)
background, strokes = means < 0.1, means > 0.5
print(f"decoder sigma: median {np.median(sigma[background]):.4f} on the background "
      f"(mean < 0.1), {np.median(sigma[strokes]):.3f} on the strokes (mean > 0.5)")
plot.image_grid(np.concatenate([means, *draws]), figure("08b_gaussian_decoder.png"), nrow=8,
                value_range=(0, 1), titles=["mean"] * 8 + ["drawn"] * 16)


def brightest(images, count=50):
    """Each image's mean over its `count` brightest pixels: how bright its strokes are."""
    return np.sort(images, axis=1)[:, -count:].mean(axis=1)


N_JUDGE = pick(1000, 200)
tg.manual_seed(4)
with tg.no_grad():
    prior_means = vae_gaussian.sample(N_JUDGE).data  # the means of N_JUDGE codes from the prior
for name, images in (("test digits", x_test[:N_JUDGE]), ("means from the prior", prior_means)):
    sure = mc.classify(images)[1].max(axis=1) > 0.9
    print(f"{name:>20}: 50 brightest pixels {brightest(images).mean():.2f} on average; "
          f"the digit classifier is over 90 % sure of a digit for {100 * sure.mean():.0f} %")

# %% [markdown]
# The means (top row) are *not* what lesson 08's Bernoulli VAE gave (`08_samples.png`: white
# strokes on black, most of them digits or blends of two). They are fainter, grey strokes where
# the Bernoulli means are white (only the fourth has a bright patch), and fewer of them are
# digits: in the full run the first column is a 0, the second and the last are faint strokes
# that could be a 1 and a 7, the seventh is a grey ring, and the other four are smudges or
# fragments that match no digit. Over 1000 codes from the prior the numbers say the same: the 50
# brightest pixels of a mean average 0.59, against 0.96 in a test digit, and the digit
# classifier is more than 90 % sure of what it sees for 13 % of the means, against 98 % of the
# test digits (and 46 % of the Bernoulli VAE's means, by the same test in lesson 08's full run).
# A mean is the average of what the decoder expects a pixel to be; where it is unsure whether a
# pixel is ink ($\sigma \approx 0.2$ on the strokes), that average is grey. The Bernoulli means
# are averages too, and their white strokes say that, given $z$, that decoder was surer where
# the ink goes. Why this one is less sure, this lesson does not measure; measured as a density,
# in bits/dim, it does worse than a table of pixel histograms.
#
# The draws (rows 2 and 3) look grainy: every pixel gets its own independent noise, scaled by
# its own $\sigma_i$. In the full run the decoder's median $\sigma$ was 0.0038 on the background
# and 0.235 on the strokes, so the background stays black while the strokes break into
# speckles. The mean is what many such draws average to, where the independent noise cancels
# out. This is the decoder's assumption made visible: given $z$, the pixels are independent, so
# $p_\phi(x \mid z)$ cannot say "this stroke is bright all along, or dim all along"; only $z$
# can carry such correlations between pixels. That is why VAE samples are usually shown as
# means, as in lesson 08's `08_samples.png`.

# %%
print(f"done in {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. Give the Gaussian decoder its means unsquashed: `mean_activation="identity"` in
#    `gaussian_vae`. The means must now hit 0 exactly on the black pixels, which Adam's noisy steps
#    never quite do; watch what that does to the always-black pixels' log-variance and to the
#    test bits/dim.
# 2. Move the floor: `SIGMA_BIN` in the "k/255, floor" run to `1 / 256` or `0.01`. How low does
#    the loss get now, and where does the black pixels' curve stop?
# 3. Train the dequantised Gaussian VAE longer (more entries in `schedule`) and see how close its
#    bits/dim come to the independent histograms'. Then think about why a Gaussian is a poor
#    model of a pixel that is 0 in most images and 255 in the rest, and why density models of
#    images (PixelCNN++, say) use discrete likelihoods over the 256 levels instead.
# 4. Set `DRAWS = pick(30, 2)` and plot a histogram of the estimates with new $u$ and $z$. Is the
#    spread symmetric? With a right-skewed spread (rare draws that cost a lot), the mean of many
#    draws, which converges to the bound itself, lies above most single draws.
# 5. Tighten the bound instead of only estimating it: average $p_\phi(x \mid z) p(z) /
#    q_\theta(z \mid x)$ over $K$ codes $z \sim q$ *before* taking the log (the importance-weighted
#    bound of Burda et al. 2016; use a log-sum-exp). By Jensen again it lies between the ELBO and
#    $\log p(x)$, and it grows with $K$. How many bits/dim does $K = 10$ save?
