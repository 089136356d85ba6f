# %% [markdown]
# # 08: The variational autoencoder
#
# The autoencoders so far map each image to one code, a point. Nothing says what lies *between*
# those points, so decoding a code we made up (to generate a new image) usually gives a smudge.
# The variational autoencoder (VAE, Kingma & Welling 2014) adds random sampling to the middle of
# the network: the encoder describes a small Gaussian cloud of codes for each image, the code is
# drawn from that cloud, and a penalty keeps all the clouds close to one standard normal
# distribution. The decoder then has to cope with codes from a whole neighbourhood, which fights
# overfitting, and every point of the code space decodes to a plausible image: the VAE is a
# **generative model** we can sample new digits from.
#
# In this lesson we write the VAE's loss (the negative ELBO) by hand, with its closed-form KL
# term, check it against tinygen's `VAE`, train one on MNIST and then use its code space:
# samples from the prior, a map of a 2-D code space, interpolation and latent arithmetic. At the
# end we build the decoder exactly as the notes draw it, one that outputs the two parameters of a
# Gaussian for every pixel: we watch how its variance can collapse, fix that, and measure the
# model in bits per pixel.
#
# Runs in about 2 minutes on a 2-core CPU (full: 113 s; everything before the Gaussian decoder
# took 42 s); `TINYGEN_QUICK=1` runs it in about 3 s.

# %% [markdown]
# ## The model: encoder, sampler, decoder
#
# The VAE has three parts, as in the course notes:
#
# - **sub-net 1, the encoder** (weights $\theta$): from an image $x$ it computes the *two
#   parameters of a Gaussian*, a mean $\mu(x)$ and a variance $\sigma^2(x)$ for each of the $k$
#   code dimensions. Together they define
#   $q_\theta(z \mid x) = \mathcal{N}(\mu, \operatorname{diag} \sigma^2)$, the cloud of codes for
#   $x$. The network outputs $\log \sigma^2$ rather than $\sigma^2$, so that any real number is a
#   valid output.
# - **the sampler** draws a code from that Gaussian. Written as
#   $$z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I),$$
#   the randomness is an *input* $\varepsilon$, and $z$ is a differentiable function of $\mu$ and
#   $\sigma$: gradients flow back into the encoder. This is the **reparameterisation trick**.
# - **sub-net 2, the decoder** (weights $\phi$): from $z$ it computes the parameters of
#   $p_\phi(x \mid z)$, the distribution of images given a code, and reconstructs
#   $x \sim p_\phi(x \mid z)$. For a Gaussian those are again two parameters per pixel; for MNIST,
#   whose pixels lie in $[0, 1]$ and are mostly near 0 or 1, we use one per pixel: a Bernoulli
#   probability $p_i = \operatorname{sigmoid}(\ell_i)$ given as a logit $\ell_i$. (tinygen's
#   `VAE` has both: `likelihood="bernoulli"` or `"gaussian"`; the last part of this lesson
#   trains the Gaussian one.)
#
# To generate a new image we skip the encoder: draw $z$ from the prior $p(z) = \mathcal{N}(0, I)$
# and decode it.
#
# **A note on the letters.** The course notes give the encoder the weights $\theta$ and the
# decoder the weights $\phi$: $z \sim q_\theta(z \mid x)$ and $x \sim p_\phi(x \mid z)$. Kingma &
# Welling's paper, and most of what you will read after this course, uses the same two letters the
# other way round: $q_\phi(z \mid x)$ for the encoder (the "recognition model", $\phi$ the
# variational parameters) and $p_\theta(x \mid z)$ for the decoder (the generative model,
# $\theta$ its parameters). Nothing else changes; this lesson follows the notes.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import metrics, models, plot
from tinygen.data import DataLoader
from tinygen.data.transforms import Dequantizer, dequantize
from tinygen.models.vae import bits_per_dim
from tinygen.nn import functional as F
from tinygen.train import fit

from course import QUICK, figure, mnist, pick

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)

x_train, y_train = mnist("train", n=pick(None, 3000))
x_test, y_test = mnist("test", n=pick(None, 1000))
print(f"train {x_train.shape}, test {x_test.shape}" + ("   (quick mode)" if QUICK else ""))

# %% [markdown]
# `models.mlp_vae` builds the VAE of the PyTorch examples: an encoder $784 \to 400 \to 2k$ (the
# $2k$ outputs are split into $\mu$ and $\log \sigma^2$) and a decoder $k \to 400 \to 784$ giving
# the logits, with ReLU hidden layers. We take $k = 20$ code dimensions.

# %%
LATENT = 20
vae = models.mlp_vae(784, hidden=400, latent_dim=LATENT)
print(vae)

batch = tg.tensor(x_train[:128])
with tg.no_grad():
    mu, logvar = vae.encode(batch)  # the two parameters of q(z|x), each (128, 20)
print(f"mu {mu.shape}, logvar {logvar.shape}")

# %% [markdown]
# ## The loss: the negative ELBO
#
# We would like to maximise the likelihood $\log p_\phi(x)$ of the training images, but it is an
# integral over all codes that we cannot compute. The VAE maximises a lower bound on it instead,
# the **evidence lower bound** (ELBO):
#
# $$\log p_\phi(x) \;\ge\; \mathbb{E}_{z \sim q_\theta(z \mid x)}\big[\log p_\phi(x \mid z)\big]
#   \;-\; \mathrm{KL}\big(q_\theta(z \mid x) \,\|\, \mathcal{N}(0, I)\big).$$
#
# Training minimises its negative, per image:
#
# $$-\text{ELBO}(x) = \underbrace{\mathbb{E}_{q}\big[-\log p_\phi(x \mid z)\big]}_{\text{recon}}
#   + \underbrace{\mathrm{KL}\big(q_\theta(z \mid x) \,\|\, \mathcal{N}(0, I)\big)}_{\text{KL}}.$$
#
# - The **reconstruction term** is estimated with one sampled code $z$: for the Bernoulli decoder
#   it is the binary cross-entropy $-\sum_i \big[x_i \log p_i + (1 - x_i) \log(1 - p_i)\big]$,
#   summed over the 784 pixels. It is the autoencoder's loss, evaluated at a *noisy* code.
# - The **KL term** pulls every image's Gaussian towards the standard normal. Without it the
#   encoder would shrink $\sigma$ to 0 and spread the means far apart, and we would be back to a
#   plain autoencoder with an empty, unusable code space.
#
# For two Gaussians the KL has a closed form. In one dimension, with
# $q = \mathcal{N}(\mu, \sigma^2)$ and $p = \mathcal{N}(0, 1)$,
#
# $$\mathrm{KL}(q \,\|\, p) = \mathbb{E}_q[\log q(z) - \log p(z)]
#   = \mathbb{E}_q\Big[-\tfrac12 \log \sigma^2 - \tfrac{(z - \mu)^2}{2 \sigma^2}
#     + \tfrac{z^2}{2}\Big]
#   = -\tfrac12 \log \sigma^2 - \tfrac12 + \tfrac12 (\sigma^2 + \mu^2),$$
#
# using $\mathbb{E}_q[(z - \mu)^2] = \sigma^2$ and $\mathbb{E}_q[z^2] = \sigma^2 + \mu^2$. The code
# dimensions are independent, so their KLs add up:
#
# $$\mathrm{KL}\big(q_\theta(z \mid x) \,\|\, \mathcal{N}(0, I)\big)
#   = -\frac12 \sum_{j=1}^{k} \big(1 + \log \sigma_j^2 - \mu_j^2 - \sigma_j^2\big).$$
#
# It is 0 exactly when $\mu = 0$ and $\sigma = 1$. We write it in NumPy and compare it with
# tinygen's `F.kl_normal`, the term the `VAE` uses.

# %%
def kl_to_standard_normal(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) per image: -1/2 sum_j (1 + log s_j^2 - mu_j^2 - s_j^2)."""
    return -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar), axis=1)


kl_by_hand = kl_to_standard_normal(mu.data, logvar.data).mean()
kl_tinygen = F.kl_normal(mu, logvar, reduction="batchmean").item()
print(f"KL per image, batch mean: by hand {kl_by_hand:.6f}, F.kl_normal {kl_tinygen:.6f}")

# %% [markdown]
# The closed form replaces an expectation. Let us check that it *is* that expectation: draw many
# codes $z \sim q(z \mid x)$ for one image and average $\log q(z) - \log p(z)$ over them.

# %%
def log_normal(z, mean, logvar):
    """log N(z; mean, exp(logvar)), summed over the code dimensions (last axis)."""
    return -0.5 * np.sum(np.log(2 * np.pi) + logvar + (z - mean) ** 2 / np.exp(logvar), axis=-1)


mu_0, logvar_0 = mu.data[0].astype(np.float64), logvar.data[0].astype(np.float64)
eps = rng.standard_normal((100_000, LATENT))
z = mu_0 + np.exp(logvar_0 / 2) * eps
log_ratio = log_normal(z, mu_0, logvar_0) - log_normal(z, 0.0, 0.0)  # log q(z|x) - log p(z)
monte_carlo = log_ratio.mean()
standard_error = log_ratio.std() / np.sqrt(len(log_ratio))
closed_form = kl_to_standard_normal(mu_0[None], logvar_0[None])[0]
print(f"KL of image 0: closed form {closed_form:.4f}, average over 100,000 samples "
      f"{monte_carlo:.4f} +- {standard_error:.4f}")

# %% [markdown]
# Now the whole negative ELBO by hand: encode, sample $z = \mu + \sigma \varepsilon$, decode to
# logits, add the cross-entropy and the KL. `vae.loss(x)` returns the same total and its two
# terms. It draws its own $\varepsilon$ from tinygen's random generator, so we reseed the generator
# before each of the two computations to make them use the same $\varepsilon$.

# %%
def bce_with_logits(logits, x):
    """-[x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))] = max(l, 0) - l x + log(1 + e^-|l|)."""
    return np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits)))


with tg.no_grad():
    tg.manual_seed(1)
    loss, terms = vae.loss(batch)

    tg.manual_seed(1)
    epsilon = tg.randn(128, LATENT).data  # the same draw as vae.loss's
    z = mu.data + np.exp(logvar.data / 2) * epsilon  # the reparameterisation
    logits = vae.decode(tg.tensor(z)).data  # the decoder: one logit per pixel
reconstruction = bce_with_logits(logits, x_train[:128]).sum(axis=1).mean()
kl = kl_to_standard_normal(mu.data, logvar.data).mean()
print(f"{'':>16} {'by hand':>10} {'vae.loss':>10}")
print(f"{'reconstruction':>16} {reconstruction:10.4f} {terms['recon'].item():10.4f}")
print(f"{'KL':>16} {kl:10.4f} {terms['kl'].item():10.4f}")
print(f"{'-ELBO':>16} {reconstruction + kl:10.4f} {loss.item():10.4f}")

# %% [markdown]
# Before training, the reconstruction term is about $784 \log 2 \approx 543$ nats (every pixel a
# coin toss) and the KL is small: the untrained encoder's Gaussians are all close to
# $\mathcal{N}(0, I)$.
#
# ## Training on MNIST
#
# Adam with learning rate $10^{-3}$ and mini-batches of 128, as in the PyTorch example. The
# ELBO is measured in nats per image; we follow both terms, on the training batches and on the
# test set.

# %%
optimizer = tg.optim.Adam(vae.parameters(), lr=1e-3)
train_loader = DataLoader(x_train, batch_size=128)
test_loader = DataLoader(x_test, batch_size=1000, shuffle=False)
history = fit(vae, train_loader, optimizer, epochs=pick(6, 1), val_loader=test_loader,
              progress=False)

print(f"{'epoch':>5} {'-ELBO':>8} {'recon':>8} {'KL':>6}   {'test -ELBO':>10} {'recon':>8} "
      f"{'KL':>6}")
columns = ["loss", "recon", "kl", "val_loss", "val_recon", "val_kl"]
for epoch, row in enumerate(zip(*(history[name] for name in columns)), start=1):
    print(f"{epoch:5d} {row[0]:8.2f} {row[1]:8.2f} {row[2]:6.2f}   {row[3]:10.2f} {row[4]:8.2f} "
          f"{row[5]:6.2f}")
plot.curves(history, figure("08_elbo.png"), keys=columns,
            title="-ELBO = reconstruction + KL (nats per image; dashed: test set)")

# %% [markdown]
# The two terms pull in opposite directions. The reconstruction term falls as the codes carry
# more about each image; the KL term *rises* from near 0, because carrying information costs:
# an encoder that says something specific about $x$ has to move $\mu$ away from 0 and shrink
# $\sigma$ below 1. The ELBO settles on a trade-off, using only as much of the code as pays for
# itself. How many of the 20 dimensions are in use? A dimension the encoder ignores keeps
# $\mu_j \approx 0, \sigma_j \approx 1$ for every image and costs no KL:

# %%
with tg.no_grad():
    mu_test, logvar_test = vae.encode(tg.tensor(x_test))
kl_per_dimension = np.mean(
    -0.5 * (1 + logvar_test.data - mu_test.data**2 - np.exp(logvar_test.data)), axis=0)
print("KL per code dimension (nats, test mean):",
      " ".join(f"{k:.2f}" for k in np.sort(kl_per_dimension)[::-1]))
print(f"dimensions in use (KL > 0.1 nat): {np.sum(kl_per_dimension > 0.1)} of {LATENT}")

# %% [markdown]
# ## New digits from the prior
#
# The KL term has packed the codes of the training images into the region where
# $\mathcal{N}(0, I)$ puts its mass. So drawing $z \sim \mathcal{N}(0, I)$ and decoding it
# (`vae.sample`, which shows each pixel's probability $p_i$) gives new images, none of them in
# the data set. Many are clear digits; others are blurry or blends of two digits, from codes that
# fall between the regions of the classes (a small MLP VAE after a few epochs; the GANs of the
# later lessons give sharper samples). A plain autoencoder's decoder fed the same random codes
# would do much worse: nothing asked its codes to fill that region.

# %%
tg.manual_seed(2)
samples = vae.sample(64)
plot.image_grid(samples, figure("08_samples.png"), nrow=8)

# %% [markdown]
# ## A code space we can draw: $k = 2$
#
# With two code dimensions we can look at the whole code space at once. We train a second VAE
# with `latent_dim=2` (its ELBO is worse: two numbers cannot hold as much as twenty), then decode
# a $20 \times 20$ grid of codes placed at the quantiles of $\mathcal{N}(0, 1)$ in each direction,
# so that the grid covers the prior evenly (`plot.latent_manifold`). Neighbouring codes decode to
# similar images, and the digits morph into each other smoothly: the code space is continuous,
# with no holes.

# %%
tg.manual_seed(0)
vae_2d = models.mlp_vae(784, hidden=400, latent_dim=2)
history_2d = fit(vae_2d, train_loader, tg.optim.Adam(vae_2d.parameters(), lr=1e-3),
                 epochs=pick(8, 1), val_loader=test_loader, progress=False)
print(f"test -ELBO: 2-D code {history_2d['val_loss'][-1]:.2f}, "
      f"{LATENT}-D code {history['val_loss'][-1]:.2f} nats per image")


def decode_to_image(z):
    """Codes (N, 2) -> the decoder's pixel probabilities (N, 784)."""
    return vae_2d.mean_image(vae_2d.decode(tg.tensor(z)))


plot.latent_manifold(decode_to_image, figure("08_manifold.png"), n=20)

# %% [markdown]
# Where do the test digits land? Their mean codes $\mu(x)$ should fill roughly the standard
# normal's disc, with each digit in its own region (the labels were never used in training):

# %%
with tg.no_grad():
    codes_2d, _ = vae_2d.encode(tg.tensor(x_test))
codes_2d = codes_2d.data
print(f"test codes: mean ({codes_2d[:, 0].mean():+.2f}, {codes_2d[:, 1].mean():+.2f}), "
      f"std ({codes_2d[:, 0].std():.2f}, {codes_2d[:, 1].std():.2f}); "
      f"{100 * np.mean(np.sum(codes_2d**2, axis=1) < 4):.0f} % inside the circle of radius 2")
for digit in range(10):
    centre = codes_2d[y_test == digit].mean(axis=0)
    print(f"  digit {digit}: mean code ({centre[0]:+.2f}, {centre[1]:+.2f})")

# %% [markdown]
# ## Latent arithmetic: interpolation and attribute vectors
#
# Because the code space is continuous, straight lines in it mean something.
#
# **Interpolation.** Encode two test digits $x_a, x_b$ to their means $\mu_a, \mu_b$ and decode the
# points $(1 - t)\,\mu_a + t\,\mu_b$ for $t$ from 0 to 1 (`vae.interpolate`). The digit changes
# shape gradually, unlike a cross-fade of the two images, which would show both digits at once.
#
# **Attribute vectors.** Split images by a property we can measure, and take the difference of
# the mean codes of the two groups:
# $v = \overline{\mu}_\text{with} - \overline{\mu}_\text{without}$
# (`models.attribute_vector`). Adding $s\,v$ to the code of any image adds (for $s > 0$) or
# removes ($s < 0$) that property (`models.add_attribute`): the course's "man with glasses $-$ man
# without glasses $+$ woman without glasses $=$ woman with glasses", with digits. We measure two
# properties from the pixels: stroke thickness (`metrics.ink`, the mean pixel value) and slant
# (`metrics.slant`, positive when the digit leans right). Ink also depends on the digit (a 0
# has more than a 1), so we compare the most and least inky quarter *within each digit class*:
# then the two groups hold the same digits, and their difference is about thickness rather than
# about which digit it is.

# %%
def split_by(measure, images, labels, fraction=0.25):
    """Images in the top and bottom `fraction` of `measure`, taken within each digit class."""
    top, bottom = [], []
    for digit in range(10):
        of_digit = images[labels == digit]
        order = np.argsort(measure(of_digit))
        count = int(fraction * len(of_digit))
        bottom.append(of_digit[order[:count]])
        top.append(of_digit[order[-count:]])
    return np.concatenate(top), np.concatenate(bottom)


thick, thin = split_by(metrics.ink, x_train, y_train)
leaning_right, leaning_left = split_by(metrics.slant, x_train, y_train)
thickness = models.attribute_vector(vae, thick, thin)
slant = models.attribute_vector(vae, leaning_right, leaning_left)
print(f"thickness vector: length {np.linalg.norm(thickness):.2f}; slant vector: length "
      f"{np.linalg.norm(slant):.2f}; cosine between them "
      f"{thickness @ slant / np.linalg.norm(thickness) / np.linalg.norm(slant):+.2f}")

# Does adding the vector change the measured property, and only that? Check on test digits.
scales = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
probe = x_test[:200]
for name, vector, measure in (("thickness", thickness, metrics.ink),
                              ("slant", slant, metrics.slant)):
    moved = models.add_attribute(vae, probe, vector, scales).data.reshape(len(probe), len(scales),
                                                                         784)
    means = [measure(moved[:, i]).mean() for i in range(len(scales))]
    print(f"mean {measure.__name__} of decoded test digits after adding s x {name}: "
          + ", ".join(f"s={s:+.1f}: {m:.3f}" for s, m in zip(scales, means)))

# %% [markdown]
# The figure below shows both kinds of arithmetic. The top three rows are interpolations between
# pairs of test digits (the ends are the decoded $\mu_a$ and $\mu_b$, so they are the VAE's
# slightly blurred versions of the two inputs). Where the line passes between the regions of two
# classes, as 2 to 7 does halfway, the image turns faint and vague: a straight line in code space
# can cross places where no training code lies. The next rows take two test digits and add
# $s \cdot v_\text{thickness}$, then two more with $s \cdot v_\text{slant}$, for
# $s = -1.5 \dots 2$ ($s = 0$ is the plain reconstruction). Far from $s = 0$ the codes leave the
# region of the training digits and the images break down: an attribute vector is only a
# straight-line approximation of how thickness or slant vary.

# %%
pairs = [(2, 7), (4, 9), (0, 6)]  # the first test digit of each class
steps = len(scales)
rows, titles = [], []
for digit_a, digit_b in pairs:
    x_a = x_test[y_test == digit_a][0]
    x_b = x_test[y_test == digit_b][0]
    rows.append(vae.interpolate(x_a, x_b, steps=steps).data)
    titles += [f"t={t:.2f}" for t in np.linspace(0, 1, steps)]
for name, vector in (("thick", thickness), ("slant", slant)):
    two_digits = x_test[[1, 7]] if name == "thick" else x_test[[2, 3]]
    rows.append(models.add_attribute(vae, two_digits, vector, scales).data)
    titles += [f"{name} {s:+.1f}" for s in scales] * 2
plot.image_grid(np.concatenate(rows), figure("08_latent_arithmetic.png"), nrow=steps,
                titles=titles)

# %% [markdown]
# ## DeepFakes
#
# The notes follow the glasses arithmetic with "DeepFakes!": images that are not real, made by
# AI, of such fidelity that they cannot be told from photographs. The first face-swap DeepFakes
# (2017) were autoencoders like ours, with a twist: **one shared encoder and one decoder per
# person**. Both are trained as plain autoencoders, the encoder on the faces of persons A and B,
# decoder A only on A's faces and decoder B only on B's. The shared code learns what the two
# have in common (pose, expression, lighting); each decoder learns to paint its own person. To
# swap, encode a frame of A and decode it with B's decoder: B's face with A's expression. Later
# methods added adversarial losses (GANs, lesson 11) for sharper, more realistic faces. What made
# them possible: large collections of face images (and hours of video of public figures),
# GPUs, and convolutional autoencoders and GANs (lesson 13) that model such images well. It
# cannot run here: it needs thousands of face images, a GPU and hours of training, and it would
# be faces of real people. MNIST stands in for all of that: the same mechanics (codes, decoders,
# moving through code space) on a laptop CPU, in minutes, with no one's face.

# %% [markdown]
# ## Sub-net 2 as the notes draw it: a Gaussian decoder
#
# The notes' sub-net 2 "generates two parameters of a Gaussian distribution". So far we gave it
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
    """The VAE above with a Gaussian decoder (sigmoid means), always the same initial weights."""
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
print(f"{'':>22} {'steps':>6} {'loss: median':>13} {'largest':>10} {'log s^2: lowest':>16} "
      f"{'black, last':>12}")
for name, run in runs.items():
    finite = run["loss"][np.isfinite(run["loss"])]
    steps = f"{len(finite)}" + ("" if len(finite) == STEPS else "*")
    print(f"{name:>22} {steps:>6} {np.median(finite[-50:]):13.0f} {finite.max():10.0f} "
          f"{run['lowest'].min():16.2f} {run['black'][-1]:12.2f}")
print("(* the loss stopped being finite at the next step; median over the last 50 finite steps)")

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
plot.save(fig, figure("08_variance_collapse.png"))

# %% [markdown]
# In the full run (MNIST; 67 of the 784 pixels are 0 in all 60,000 training images), the three
# runs differed as the argument says:
#
# - **$k/255$, no floor**: the always-black pixels' mean $\log \sigma^2$ crossed the level of a
#   bin's variance, $-13.58$, within about 100 steps and went on below it, ending at $-15.74$;
#   the lowest log-variance anywhere reached $-45.63$, a $\sigma$ of about $10^{-10}$. And the
#   loss spiked whenever a batch put ink where the decoder had become sure of black: up to
#   10,916,731 nats per image, against a typical $-1000$.
# - **$k/255$ with the floor**: the lowest log-variance was exactly the floor, $-13.58$; the
#   black pixels sat at $-13.23$, and the largest spike was 2,812 nats.
# - **dequantised, no floor**: no spikes at all (its largest loss, 815, is the first step's), and
#   the black pixels at $-10.35$ after 300 steps, still well above the $-13.58$ their spread
#   allows. Its lowest log-variance, $-21.11$, shows what dequantisation does and does not do: it
#   does not forbid a tiny $\sigma$ at some pixel of some image, it makes one *cost* on
#   average instead of pay.
#
# The median losses ($-926$, $-1253$, $-1102$ nats) cannot be compared across rows: on $k/255$
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
# A $-$ELBO in nats per image of a *density* on $[0, 1]^{784}$ is not yet a number to compare
# with anything. The pixels are discrete; the model of a level $k$ that the density implies is
# the mass of its bin, $P(k) = \int_{k/256}^{(k+1)/256} p(x)\,dx = \tfrac{1}{256}
# \mathbb{E}_u[p(x)]$, and by Jensen's inequality
# $-\log P(k) \le \mathbb{E}_u[-\log p(x)] + \log 256$ per pixel. So with $D = 784$,
#
# $$\text{bits/dim} = \frac{-\text{ELBO}_\text{nats} / D + \log 256}{\log 2},$$
#
# an upper bound on the code length of the discrete images, in bits per pixel; the
# $+\log 256$ per dimension is the change of variables from $x = (k + u) / 256$ back to the
# level $k$ (`models.vae.bits_per_dim`). Two baselines give it a scale: the uniform model, every
# level equally likely, costs $\log_2 256 = 8$ bits/dim; the best model that treats pixels
# *independently*, a 256-level histogram per pixel counted on the training images (add-one
# smoothed), costs what we measure below. (The Bernoulli VAE's $-$ELBO is not comparable: its
# grey pixels are not probabilities of anything discrete.)

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
# In the full run the test $-$ELBO reached $-1963.7$ nats per image after the four epochs,
# **4.386 bits/dim**: far better than the uniform model's 8, but far worse than the 1.690 of
# independent pixel histograms, a model that knows nothing about digits. The last epoch at
# $10^{-4}$ took it from 4.500 to 4.386: with smaller steps the decoder can make its means and
# variances more precise. On the black pixels it has nearly done so: through the test images'
# mean codes their average $\log \sigma^2$ is $-12.87$, close to the $-13.58$ their
# dequantisation spread allows. (In the first epochs the test $-$ELBO is lower than the training
# one because the training number averages over the epoch while the model improves.)
#
# Why so many bits? The Gaussian has the wrong shape for MNIST's pixels. A histogram can put a
# large share of a stroke pixel's probability on exactly level 255 and the rest on the greys; a
# Gaussian has one bump. Narrow, it pays heavily for every grey away from its mean; wide, it
# spreads its mass over many bins. The decoder settles for wide on the strokes: in the samples
# below the median $\sigma$ there is 0.256, and a pixel whose residuals match its $\sigma$ costs
# $\big(\frac12 \log(2 \pi e \sigma^2) + \log 256\big) / \log 2 \approx 8.1$ bits at
# $\sigma = 0.256$, as much as the uniform model (the formula, not a measurement). The
# background costs about 1.7 bits at its median $\sigma$ of 0.0030, and a perfectly fitted black
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
plot.image_grid(np.concatenate([means, *draws]), figure("08_gaussian_decoder.png"), nrow=8,
                value_range=(0, 1), titles=["mean"] * 8 + ["drawn"] * 16)

# %% [markdown]
# The means (top row) look like the Bernoulli VAE's samples: smooth, a little blurred. The
# draws look grainy: every pixel gets its own independent noise, scaled by its own $\sigma_i$.
# In the full run the decoder's median $\sigma$ was 0.0030 on the background and 0.256 on the
# strokes, so the background stays black while the strokes break into speckles. The mean is
# what many such draws average to, where the independent noise cancels out. This is the
# decoder's assumption made visible: given $z$, the pixels are independent, so $p_\phi(x \mid z)$
# cannot say "this stroke is bright all along, or dim all along"; only $z$ can carry such
# correlations between pixels. That is why VAE samples are usually shown as means, as in
# `08_samples.png`.

# %%
print(f"done in {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. Weigh the KL term: `models.mlp_vae(..., beta=4.0)` (a $\beta$-VAE) or `beta=0.1`. Watch the
#    KL column and the dimensions in use: a large $\beta$ uses fewer dimensions and gives blurrier
#    reconstructions and samples; a small one reconstructs sharply, but its samples get worse
#    because the codes no longer fill $\mathcal{N}(0, I)$.
# 2. Drop the KL term altogether (`beta=0.0`) in the 2-D model and look at the printed test codes:
#    they spread far beyond $\mathcal{N}(0, I)$, so the grid of `08_manifold.png` (which covers
#    where $\mathcal{N}(0, I)$ puts its mass) shows only a small part of the code space.
# 3. Switch the sampler off: `vae.reparameterize = lambda mu, logvar: mu` before training, so
#    that every code is exactly $\mu$. The reconstruction term no longer depends on $\sigma$, the
#    KL alone sets it to 1, and what is left is an autoencoder with a penalty $\frac12 \|\mu\|^2$.
#    Compare the reconstruction term and the samples with the real VAE's.
# 4. Change `LATENT` to 5 or 50. Does the test $-$ELBO improve, and how many dimensions end up in
#    use (KL > 0.1 nat)?
# 5. Make your own attribute with `split_by` and another measure, e.g. the ink in the top half
#    of the image, `lambda images: metrics.ink(images.reshape(-1, 28, 28)[:, :14])`, and add
#    its vector to a few test digits with `models.add_attribute`.
# 6. Give the Gaussian decoder its means unsquashed: `mean_activation="identity"` in
#    `gaussian_vae`. The means must now hit 0 exactly on the black pixels, which Adam's noisy steps
#    never quite do; watch what that does to the always-black pixels' log-variance and to the
#    test bits/dim.
# 7. Move the floor: `SIGMA_BIN` in the "k/255, floor" run to `1 / 256` or `0.01`. How low does
#    the loss get now, and where does the black pixels' curve stop?
# 8. Train the dequantised Gaussian VAE longer (more entries in `schedule`) and see how close its
#    bits/dim come to the independent histograms'. Then think about why a Gaussian is a poor
#    model of a pixel that is 0 in most images and 255 in the rest, and why density models of
#    images (PixelCNN++, say) use discrete likelihoods over the 256 levels instead.
