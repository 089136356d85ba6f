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
# samples from the prior, set beside a plain autoencoder's to see why only the VAE generates, a
# map of a 2-D code space, interpolation and latent arithmetic, and a small DeepFake-style swap
# with one encoder and two decoders. Lesson 08b then builds the decoder exactly as the notes draw
# it, one that outputs the two parameters of a Gaussian for every pixel, and measures the model
# in bits per pixel.
#
# Runs in about 3 minutes on a 2-core CPU (full: 189 s; see
# `lessons/README.md` for how it was measured); `TINYGEN_QUICK=1` runs it in about 6 s.

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
#   `VAE` has both: `likelihood="bernoulli"` or `"gaussian"`; lesson 08b trains the Gaussian
#   one.)
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
from tinygen import mnist_classifier as mc
from tinygen.data import DataLoader
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
#
# **Units.** Every logarithm in this lesson is a natural logarithm, so these quantities are in
# **nats**, the unit of information that belongs to $\ln$ as the bit belongs to $\log_2$: an
# event of probability $P$ carries $-\ln P$ nats, or $-\log_2 P$ bits. Since
# $\log_2 P = \ln P / \ln 2$, 1 nat $= 1 / \ln 2 \approx 1.443$ bits.

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
# Before training, the reconstruction term is about $784 \ln 2 \approx 543$ nats (every pixel a
# coin toss, $\ln 2$ nats or exactly 1 bit each) and the KL is small: the untrained encoder's
# Gaussians are all close to $\mathcal{N}(0, I)$.
#
# ## Training on MNIST
#
# Adam with learning rate $10^{-3}$ and mini-batches of 128, as in the PyTorch example. The
# ELBO is measured in nats per image; we follow both terms, on the training batches and on the
# test set. Each epoch's training numbers are averages over that epoch's batches, taken while the
# model changes; the test numbers are measured at the end of the epoch. Row 0 is the untrained
# model on the test set.

# %%
optimizer = tg.optim.Adam(vae.parameters(), lr=1e-3)
train_loader = DataLoader(x_train, batch_size=128)
test_loader = DataLoader(x_test, batch_size=1000, shuffle=False)
with tg.no_grad():
    untrained = [vae.loss(x) for x in test_loader]  # (loss, terms) per test batch of 1000
history = fit(vae, train_loader, optimizer, epochs=pick(6, 1), val_loader=test_loader,
              progress=False)

print(f"{'epoch':>5} {'-ELBO':>8} {'recon':>8} {'KL':>6}   {'test -ELBO':>10} {'recon':>8} "
      f"{'KL':>6}")
print(f"{0:5d} {'':8} {'':8} {'':6}   {np.mean([loss.item() for loss, _ in untrained]):10.2f} "
      f"{np.mean([terms['recon'].item() for _, terms in untrained]):8.2f} "
      f"{np.mean([terms['kl'].item() for _, terms in untrained]):6.2f}")
columns = ["loss", "recon", "kl", "val_loss", "val_recon", "val_kl"]
for epoch, row in enumerate(zip(*(history[name] for name in columns)), start=1):
    print(f"{epoch:5d} {row[0]:8.2f} {row[1]:8.2f} {row[2]:6.2f}   {row[3]:10.2f} {row[4]:8.2f} "
          f"{row[5]:6.2f}")
plot.curves(history, figure("08_elbo.png"), keys=columns,
            title="-ELBO = reconstruction + KL (nats per image; dashed: test set)")

# %% [markdown]
# The two terms pull in opposite directions, and the table shows when. In the full run, before
# training (row 0), the test KL is 0.08 nats and the reconstruction term 552: the encoder says
# almost nothing about its images. After one epoch the test KL is already 20.3 and the
# reconstruction 106.5. The curves of `08_elbo.png` start there, at the end of the first epoch,
# so the KL's climb from near 0 is not in the plot: it happens within the first epoch. The
# first epoch's *training* KL, 15.5, lies between the two because it averages that epoch's
# batches, taken while the KL was climbing. After the first epoch the KL changes little, from
# 20.3 to 24.7 on the test set over five more epochs, while the reconstruction term goes on
# falling, from 106.5 to 82.9.
#
# The KL rises because carrying information costs: an encoder that says something specific
# about $x$ has to move $\mu$ away from 0 and shrink $\sigma$ below 1, and the KL charges for
# both. The ELBO settles on a trade-off, using only as much of the code as pays for itself. How
# many of the 20 dimensions are in use? A dimension the encoder ignores keeps
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
# later lessons give sharper samples).

# %%
tg.manual_seed(2)
samples = vae.sample(64)
plot.image_grid(samples, figure("08_samples.png"), nrow=8)

# %% [markdown]
# ## Why a plain autoencoder does not generate
#
# Would a plain autoencoder's decoder do as well, fed the same random codes? We train one with
# the VAE's layers (encoder $784 \to 400 \to 20$, decoder $20 \to 400 \to 784$, ReLU, the
# Bernoulli cross-entropy), on the same images in batches of 128 for the same number of epochs,
# but with neither the sampler nor the KL term (`models.mlp_autoencoder`): each image gets one
# code, placed wherever reconstruction finds it convenient. First, where do the two models put
# the test digits' codes? For the VAE we take the codes it actually decodes in training,
# $z = \mu + \sigma \varepsilon$, one draw per image.

# %%
tg.manual_seed(0)
plain = models.mlp_autoencoder(784, hidden=(400,), code_dim=LATENT)
history_plain = fit(plain, train_loader, tg.optim.Adam(plain.parameters(), lr=1e-3),
                    epochs=pick(6, 1), val_loader=test_loader, progress=False)
print(f"test reconstruction term (nats per image): plain autoencoder "
      f"{history_plain['val_loss'][-1]:.2f}, VAE {history['val_recon'][-1]:.2f}")
with tg.no_grad():
    codes = {"plain autoencoder": plain.encode(tg.tensor(x_test)).data,
             "VAE": vae.reparameterize(mu_test, logvar_test).data}
for name, code in codes.items():
    mean, spread = code.mean(axis=0), code.std(axis=0)
    print(f"{name:>17} test codes, per dimension: mean from {mean.min():+.2f} to "
          f"{mean.max():+.2f}, standard deviation from {spread.min():.2f} to {spread.max():.2f}")

# %% [markdown]
# A standard normal has mean 0 and standard deviation 1 in every dimension. Now we decode the
# same codes $z \sim \mathcal{N}(0, I)$ with both decoders and judge the images with the digit
# classifier that ships with tinygen (`tinygen.mnist_classifier`, 99 % accurate on test digits):
# the share of images it is more than 90 % sure about, and the **MNIST score**, the Inception
# score computed with this classifier (lesson 11 uses it for GANs): 1 when every image gets the
# same class probabilities, up to 10 for confident predictions spread evenly over the ten digits.
# Test digits give the reference.

# %%
N_PRIOR = pick(1000, 200)
tg.manual_seed(5)
z_prior = tg.randn(N_PRIOR, LATENT)
with tg.no_grad():
    decoded = {"plain autoencoder": plain.decode(z_prior).data,
               "VAE": vae.mean_image(vae.decode(z_prior)).data}
for name, images in {"test digits": x_test[:N_PRIOR], **decoded}.items():
    probabilities = mc.classify(images)[1]
    sure = np.mean(probabilities.max(axis=1) > 0.9)
    score, _ = mc.mnist_score_from_probs(probabilities)
    print(f"{name:>17}: classifier more than 90 % sure for {100 * sure:3.0f} %, "
          f"MNIST score {score:.2f}")
rows = [decoded["plain autoencoder"][:16], decoded["VAE"][:16]]
titles = (["plain AE"] + [""] * 7) * 2 + (["VAE"] + [""] * 7) * 2
plot.image_grid(np.concatenate(rows), figure("08_plain_vs_vae_samples.png"), nrow=8,
                titles=titles, value_range=(0, 1))

# %% [markdown]
# In the full run the plain autoencoder reconstructs better than the VAE: a test reconstruction
# term of 70.1 nats per image against 82.9, since it pays no KL and its codes carry no noise.
# But its test codes look nothing like $\mathcal{N}(0, I)$: per dimension their means lie
# between $-3.6$ and $+3.3$ and their standard deviations between 2.9 and 4.1. The VAE's lie
# within $\pm 0.16$ and between 0.97 and 1.16: the KL term has matched the cloud of its codes to
# the prior we sample from. A draw from $\mathcal{N}(0, I)$ covers, in each dimension, only the
# middle of the plain autoencoder's spread, three to four times wider and centred up to 3.6
# away from 0: a small part of where its codes lie, and nothing in its training asked that part
# to decode to a digit.
#
# The decoded images show it. In `08_plain_vs_vae_samples.png` (two rows each, the same code in
# the same column) the plain autoencoder's are grey, cloudy tangles of stroke fragments, and
# only one or two, such as a loop in the first row, resemble a digit; the VAE's are mostly
# digits or blends of two. The classifier agrees: it is more than 90 % sure for 4 % of the plain
# autoencoder's images and 46 % of the VAE's (98 % of the test digits), and the MNIST score is
# 1.87 against 4.93 (9.34 for test digits). The VAE is far from the test digits too, with
# blurred means and blends, but only the VAE is a generative model at all: the sampler made its
# decoder work for a whole neighbourhood of each training code, and the KL placed those
# neighbourhoods where the prior puts its mass.

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
# GPUs, and convolutional autoencoders and GANs (lesson 13) that model such images well.
#
# A face swap cannot run here: it needs thousands of face images, a GPU and hours of training,
# and it would be faces of real people. Its mechanism can, with two "persons" made from MNIST.
# Person A writes with a solid pen: the MNIST digits as they are. Person B writes with a pen that
# leaves every other row of pixels blank: hatched digits, `hatch(x)`. A's images are the first
# half of the training set, B's the second half hatched, so, as with two people's photos, no
# training image shows one handwritten digit in both styles. The encoder ($784 \to 400 \to 20$)
# is shared and trained on both; decoder A ($20 \to 400 \to 784$) sees only A's images,
# decoder B only B's, each a plain autoencoder with the Bernoulli cross-entropy, both losses
# added in every step. Then the swap: encode a
# solid test digit and decode it with B's decoder. Unlike a face swap, this one has a right
# answer to compare with, the same test digit hatched, which no part of the network ever saw.
# And the swap the other way: a hatched test digit through A's decoder.

# %%
def hatch(images):
    """Person B's pen: every other row of pixels left blank (rows 0, 2, 4, ...)."""
    rows = np.ones((28, 1), dtype=images.dtype)
    rows[::2] = 0
    return (images.reshape(-1, 28, 28) * rows).reshape(-1, 784)


half = len(x_train) // 2
person_a, person_b = x_train[:half], hatch(x_train[half:])
tg.manual_seed(0)
shared_encoder = models.mlp([784, 400, LATENT])
autoencoder_a = models.Autoencoder(shared_encoder, models.mlp([LATENT, 400, 784]))
autoencoder_b = models.Autoencoder(shared_encoder, models.mlp([LATENT, 400, 784]))
optimizer_swap = tg.optim.Adam([*autoencoder_a.parameters(), *autoencoder_b.decoder.parameters()],
                               lr=1e-3)
for epoch in range(pick(3, 1)):
    for batch_a, batch_b in zip(DataLoader(person_a, batch_size=128),
                                DataLoader(person_b, batch_size=128)):
        loss = autoencoder_a.loss(batch_a)[0] + autoencoder_b.loss(batch_b)[0]
        optimizer_swap.zero_grad()
        loss.backward()
        optimizer_swap.step()

N_SWAP = pick(len(x_test), 300)  # test digits to swap and score
solid, hatched = x_test[:N_SWAP], hatch(x_test[:N_SWAP])
with tg.no_grad():
    a_to_a = autoencoder_a(tg.tensor(solid)).data
    a_to_b = autoencoder_b.decode(shared_encoder(tg.tensor(solid))).data  # the swap
    b_to_b = autoencoder_b(tg.tensor(hatched)).data
    b_to_a = autoencoder_a.decode(shared_encoder(tg.tensor(hatched))).data  # the other swap
error = metrics.mse_per_pixel
print("squared error per pixel against the hatched test digits (the swap's right answer):")
print(f"  the solid input itself {error(hatched, solid):.4f}, A's reconstruction "
      f"{error(hatched, a_to_a):.4f}, the swap A -> B {error(hatched, a_to_b):.4f}, "
      f"B's own reconstruction of the hatched digit {error(hatched, b_to_b):.4f}")
print("against the solid test digits:")
print(f"  the hatched input itself {error(solid, hatched):.4f}, B's reconstruction "
      f"{error(solid, b_to_b):.4f}, the swap B -> A {error(solid, b_to_a):.4f}, "
      f"A's own reconstruction {error(solid, a_to_a):.4f}")
labels = y_test[:N_SWAP]
print(f"digit classifier on solid images: the test digits "
      f"{100 * np.mean(mc.predict(solid) == labels):.1f} %, A's reconstructions "
      f"{100 * np.mean(mc.predict(a_to_a) == labels):.1f} %, the swap B -> A "
      f"{100 * np.mean(mc.predict(b_to_a) == labels):.1f} % right")
shown = slice(0, 8)
plot.image_grid(np.concatenate([solid[shown], a_to_b[shown], hatched[shown],
                                hatched[shown], b_to_a[shown], solid[shown]]),
                figure("08_deepfake_swap.png"), nrow=8,
                titles=(["A: solid"] + [""] * 7 + ["A -> B decoder"] + [""] * 7
                        + ["right answer"] + [""] * 7 + ["B: hatched"] + [""] * 7
                        + ["B -> A decoder"] + [""] * 7 + ["right answer"] + [""] * 7),
                value_range=(0, 1))

# %% [markdown]
# In the full run the swap works. B's decoder turns the solid test digits into hatched ones
# (second row of `08_deepfake_swap.png`) with the input's shape, close to the right answer
# (third row): a squared error of 0.0127 per pixel against it, where the solid input itself is
# 0.0569 away and A's reconstruction 0.0536, and not far from B's own reconstruction of the
# hatched digit, 0.0072, what B's decoder achieves on the kind of input it was trained on. The
# other way, A's decoder turns the hatched test digits solid (fifth row): 0.0328 from the solid
# truth, against 0.0569 for the hatched input. These are blurrier than A's reconstructions of
# solid digits (0.0140): a hatched digit's code is not one A's decoder was trained on, and
# nothing forced the encoder to give a digit the same code in both styles. The classifier,
# trained on solid digits, reads 89.2 % of the swapped B $\to$ A digits correctly, against
# 95.1 % of A's reconstructions and 99.3 % of the test digits.
#
# Why it can work: the pen never varies within a person, so the decoders can each learn their
# own and the code need not carry it; what the code must carry is what varies in both persons'
# images, the digit and its shape, and that is shared. A face swap works the same way: pose,
# expression and lighting vary in both persons' photos and go through the shared code; each
# decoder paints its own face. What varies *within* each person's images would travel in the
# code and not swap (exercise 7 tries it with stroke thickness).
#
# Lesson 08b continues with the decoder exactly as the notes draw it: a Gaussian with two
# parameters per pixel, what goes wrong when it is trained naively, and the model measured in
# bits per pixel.

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
# 6. Give the plain autoencoder a fairer chance: draw its codes from a Gaussian with the mean
#    and standard deviation of its own test codes, `codes["plain autoencoder"].mean(axis=0) +
#    codes["plain autoencoder"].std(axis=0) * np.random.default_rng(0).standard_normal((1000,
#    LATENT))`, decode them with `plain.decode` and score them as above. Does it catch up with the
#    VAE? Its codes were never asked to be Gaussian, nor the space between them to decode to
#    digits.
# 7. Swap a style that varies within each person: give person B thicker strokes instead of a
#    hatched pen. Make `hatch` return, with `square = images.reshape(-1, 28, 28)`,
#    `np.max([square] + [np.roll(square, shift, axis) for shift in (-1, 1) for axis in (1, 2)],
#    axis=0).reshape(-1, 784)` (every pixel takes the largest of itself and its four
#    neighbours). Compare the ink (`metrics.ink`) of the solid inputs, of their swaps A $\to$ B
#    and of the right answers. MNIST writers already differ a lot in stroke thickness: what does
#    the shared code have to carry now?
