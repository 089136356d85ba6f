# %% [markdown]
# # 10: Implicit generative models
#
# A VAE writes its model down as densities: a prior $p(\mathbf{z})$ and a decoder
# $p(\mathbf{x} \mid \mathbf{z})$, so that the likelihood of an image can at least be bounded.
# An **implicit generative model** gives up on the density and keeps only the recipe for a
# sample:
#
# 1. draw a code vector $\mathbf{z}$ from a fixed, simple distribution $p(\mathbf{z})$ (each
#    coordinate independently Gaussian or uniform),
# 2. feed it to a deterministic, differentiable *generator* network: $\mathbf{x} = G(\mathbf{z})$.
#
# The distribution of $\mathbf{x}$, written $p_G$, is then defined only *implicitly*: we can draw
# as many samples as we like, but we cannot evaluate $p_G(\mathbf{x})$. Why is that enough? If we
# have any criterion for the quality of samples, we can differentiate it with respect to the
# parameters of $G$ (through the samples) and nudge $G$ to make its samples a little better.
# Generative adversarial networks (GANs) learn that criterion too: a second network, the
# discriminator, is trained to tell data from samples.
#
# This lesson builds up to that in three steps:
#
# 1. a generator by hand: a fixed function $G$ that turns uniform noise into an exponential, a
#    Gaussian and a mixture of two Gaussians (the inverse CDF);
# 2. a learnt generator in one dimension: a GAN that maps $\mathcal{N}(0, 1)$ or $U(-1, 1)$ noise
#    to the same mixture of two Gaussians, knowing it only through samples;
# 3. a learnt generator in two dimensions: a GAN on a ring of 8 narrow Gaussians, scored by how
#    many of the 8 modes its samples reach.
#
# Runs in about a minute on a 2-core CPU (full: 55 s, with the comparison with the optimal
# discriminator in section 2); `TINYGEN_QUICK=1` runs it in about 7 s.

# %%
import os

# The networks here are small (batch x 32 or batch x 128 matrices): one BLAS thread is faster than
# two, which wait for each other. This must be set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from statistics import NormalDist  # noqa: E402

import numpy as np  # noqa: E402
from matplotlib.image import imread  # noqa: E402

import tinygen as tg  # noqa: E402
from tinygen import plot  # noqa: E402
from tinygen.data import toy  # noqa: E402
from tinygen.metrics import (  # noqa: E402
    binned_gaussian_kde_1d,
    jensen_shannon,
    optimal_discriminator,
)
from tinygen.models import GAN, gan_optimizers, mlp_discriminator, mlp_generator  # noqa: E402
from tinygen.nn import functional as F  # noqa: E402

from course import QUICK, figure, pick  # noqa: E402

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)
# single pictures go here before they are put together (removed when the lesson ends)
scratch_folder = tempfile.TemporaryDirectory(prefix="lesson10_")
scratch = scratch_folder.name
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## 1. A generator by hand: pushing noise through a function
#
# Take $u \sim U(0, 1)$ and a continuous, increasing cumulative distribution function (CDF)
# $F(x) = P(X \le x)$. Then $x = F^{-1}(u)$ has exactly the distribution $F$:
#
# $$P(F^{-1}(u) \le x) = P(u \le F(x)) = F(x).$$
#
# So $G = F^{-1}$ is a generator: a fixed, deterministic function that turns uniform noise into
# samples of $F$. Three examples:
#
# - exponential with rate $\lambda$: $F(x) = 1 - e^{-\lambda x}$, so
#   $G(u) = -\log(1 - u) / \lambda$ in closed form;
# - standard Gaussian: $G(u) = \Phi^{-1}(u)$, the Gaussian quantile function (no closed form,
#   but easy to compute numerically);
# - the mixture $\tfrac12 \mathcal{N}(-2, 0.5^2) + \tfrac12 \mathcal{N}(2, 0.5^2)$ that the GANs
#   below will learn: $F$ is a sum of two Gaussian CDFs, and we invert it numerically by
#   tabulating $F$ on a fine grid and interpolating backwards.

# %%
standard_normal = NormalDist(0.0, 1.0)
mixture = toy.GaussianMixture1D(means=(-2.0, 2.0), stds=(0.5, 0.5), weights=(0.5, 0.5))
rate = 1.0  # lambda of the exponential


def exponential_generator(u):
    """G(u) = F^{-1}(u) = -log(1 - u) / lambda."""
    return -np.log1p(-u) / rate


def gaussian_generator(u):
    """G(u) = Phi^{-1}(u), the standard Gaussian quantile function."""
    return np.array([standard_normal.inv_cdf(p) for p in u])


def mixture_cdf(x):
    """F(x) = sum_k w_k Phi((x - mu_k) / sigma_k) for the two-Gaussian mixture."""
    x = np.asarray(x, dtype=np.float64)
    total = np.zeros_like(x)
    for mean, std, weight in zip(mixture.means, mixture.stds, mixture.weights):
        standardised = (x - mean) / (std * math.sqrt(2.0))
        total += weight * 0.5 * (1.0 + np.vectorize(math.erf)(standardised))
    return total


x_table = np.linspace(-6.0, 6.0, 4001)  # F tabulated on a fine grid ...
F_table = mixture_cdf(x_table)


def mixture_generator(u):
    """G(u) = F^{-1}(u), by reading the table of F backwards (linear interpolation)."""
    return np.interp(u, F_table, x_table)


# %% [markdown]
# Push 20,000 uniform draws through each $G$ and compare the samples' mean and standard deviation
# with the target's: exponential mean and sd $1/\lambda$; Gaussian 0 and 1; the mixture has mean 0
# and variance $0.5^2 + 2^2$, so sd $\approx 2.06$.

# %%
u = rng.random(pick(20000, 5000))
generators = [
    ("exponential, rate 1", exponential_generator, lambda x: rate * np.exp(-rate * x) * (x >= 0),
     (1.0, 1.0)),
    ("Gaussian N(0, 1)", gaussian_generator, lambda x: np.exp(-x**2 / 2) / math.sqrt(2 * math.pi),
     (0.0, 1.0)),
    ("mixture of two Gaussians", mixture_generator, lambda x: np.exp(mixture.log_density(x)),
     (0.0, math.sqrt(0.5**2 + 2.0**2))),
]
pushed = {}
print(f"{'target':>26} {'sample mean':>11} {'(exact)':>8} {'sample sd':>9} {'(exact)':>8}")
for name, generator, density, (exact_mean, exact_sd) in generators:
    samples = generator(u)
    pushed[name] = samples
    print(f"{name:>26} {samples.mean():11.3f} {exact_mean:8.3f} {samples.std():9.3f} "
          f"{exact_sd:8.3f}")

# %% [markdown]
# The figure shows each $G$ (top) and the histogram of $G(u)$ against the target density
# (bottom). Where $G$ is steep, a small interval of $u$ is stretched over a long stretch of $x$
# and the density is low; where $G$ is flat, many $u$ land on few $x$ and the density is high.
# Look at the mixture: $G$ climbs steeply around $x = 0$ to skip the gap between the two bumps.

# %%
u_grid = np.linspace(0.001, 0.999, 500)
fig = plot.new_figure(width=11.0, height=6.0)
axes = fig.subplots(2, 3)
for column, (name, generator, density, _) in enumerate(generators):
    top, bottom = axes[0, column], axes[1, column]
    top.plot(u_grid, generator(u_grid), color="tab:green")
    top.set_xlabel("noise u ~ U(0, 1)")
    top.set_ylabel("x = G(u)")
    top.set_title(f"G = F$^{{-1}}$ for the {name}", fontsize=10)
    top.grid(True, alpha=0.3)
    samples = pushed[name]
    lo, hi = np.percentile(samples, 0.1), np.percentile(samples, 99.9)
    x_plot = np.linspace(lo, hi, 400)
    bottom.hist(samples, bins=60, range=(lo, hi), density=True, color="green", alpha=0.3,
                label="histogram of G(u)")
    bottom.plot(x_plot, density(x_plot), "k--", label="target density")
    bottom.set_xlabel("x")
    bottom.set_ylabel("density")
    bottom.legend(fontsize=8)
plot.save(fig, figure("10_pushforward.png"))

# %% [markdown]
# Here we also *know* the density of $G(u)$: $G$ is increasing and one-dimensional, so the change
# of variables gives $p_G(x) = p_u(G^{-1}(x)) \, |d G^{-1}(x) / dx| = F'(x)$. A neural network
# mapping 100 noise coordinates to 784 pixels has no inverse and no tractable Jacobian: we can
# sample from it, but not evaluate $p_G(\mathbf{x})$. That is what *implicit* means.
#
# The inverse CDF also needs $F$, which we never have for real data. The rest of the lesson
# *learns* $G$ from samples of the data alone.
#
# ## 2. A learnt generator in one dimension
#
# A GAN trains two networks against each other:
#
# - the **discriminator** $D(x) \in (0, 1)$ is the probability it gives that $x$ came from the
#   data rather than from $G$; it is trained to say 1 on data and 0 on $G$'s samples;
# - the **generator** $G(z)$ is trained to fool it: to make $D(G(z))$ large.
#
# (Lesson 11 writes the game and the training algorithm out in full.) `tinygen.models.GAN` holds
# both networks; `train_step(batch, optimizers)` is one round of the game. Both networks here are
# small MLPs, 1-32-32-1; $G$ ends without an activation (its output is any real number), $D$ ends
# in one logit. Each step draws a fresh batch of 512 points from the mixture. Adam's learning
# rate starts at $10^{-3}$ and decays geometrically to $10^{-4}$ over the run.

# %%
HIDDEN_1D = [32, 32]
BATCH_1D = 512
STEPS_1D = pick(2000, 60)
LR_START, LR_END = 1e-3, 1e-4
BETAS = (0.5, 0.999)  # the usual Adam momentum for GANs (DCGAN)


def set_learning_rate(optimizers, step, steps):
    """lr = LR_START * (LR_END / LR_START)^(step / steps): geometric decay over the run."""
    lr = LR_START * (LR_END / LR_START) ** (step / steps)
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = lr


def discriminator_probability(gan):
    """The function x (K,) -> D(x) (K,), for density_1d's blue dotted curve."""
    def d_of_x(x):
        logits = gan.discriminator(tg.tensor(np.asarray(x, dtype=np.float32).reshape(-1, 1)))
        return F.sigmoid(logits).numpy().ravel()
    return d_of_x


def ks_distance(samples):
    """max_x |empirical CDF of the samples - F(x)|: 0 for a perfect match, 1 at worst."""
    s = np.sort(samples)
    n = len(s)
    cdf = mixture_cdf(s)
    above = np.arange(1, n + 1) / n - cdf  # the empirical CDF just after each sample ...
    below = cdf - np.arange(n) / n  # ... and just before it
    return float(max(above.max(), below.max()))


# %% [markdown]
# The discriminator is trained to tell data from samples, so it is worth asking what the *best*
# possible $D$ would say. Against a fixed $G$ with density $p_G$, it is
#
# $$D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_G(x)}$$
#
# (lesson 11 derives it): the share of the data among everything that lands near $x$. Here we
# know $p_\text{data}$ exactly, and we can estimate $p_G$ from samples: a **kernel density
# estimate** $\hat p_G(x) = \frac{1}{M} \sum_i \mathcal{N}(x; x_i, h^2)$ puts a small Gaussian of
# width $h = 0.1$ on each of $M = 10{,}000$ samples $x_i = G(z_i)$
# (`metrics.binned_gaussian_kde_1d`, which first rounds each sample to the nearest point of a
# grid of step 0.01, and then smooths the counts: fast, and close to exact for $h = 0.1$).
# Two numbers then say how training is going:
#
# - the **Jensen-Shannon divergence** $\text{JSD}(p_\text{data} \,\|\, \hat p_G)$ between the data
#   and the generator (`metrics.jensen_shannon`, in nats): 0 when they are equal,
#   $\log 2 \approx 0.693$ when they do not overlap at all. Lesson 11 shows that this is what the
#   game minimises when $D = D^*$. Even data samples score a little above 0, since $\hat p_G$ is
#   only an estimate: we measure that floor below;
# - the **gap** between the trained $D$ and $D^*$, $|D(x) - D^*(x)|$ averaged over the points
#   that $D$ is trained on, half data and half samples, that is weighted by
#   $m(x) = (p_\text{data}(x) + \hat p_G(x)) / 2$.
#
# We measure both every 50 steps, always on the same 10,000 noise vectors (drawn by their own
# random generator, so that measuring does not change the training).

# %%
x_grid_1d = np.linspace(-8.0, 8.0, 1601)  # wide enough to hold the samples that stray
dx_1d = x_grid_1d[1] - x_grid_1d[0]
p_data_1d = np.exp(mixture.log_density(x_grid_1d))
BANDWIDTH = 0.1
N_DENSITY = pick(10000, 1000)
measure_every = max(1, STEPS_1D // pick(40, 10))


def compare_with_optimal(gan, z):
    """Estimate p_G from G(z), and compare D with D* on x_grid_1d: a dict of curves and scores."""
    with tg.no_grad():
        samples = gan.generator(tg.tensor(z)).numpy().ravel()
    p_g = binned_gaussian_kde_1d(samples, x_grid_1d, BANDWIDTH)
    d = discriminator_probability(gan)(x_grid_1d)
    d_star = optimal_discriminator(p_data_1d, p_g)
    weight = (p_data_1d + p_g) / 2
    gap = float(np.sum(weight * np.abs(d - d_star)) / np.sum(weight))
    return {"p_g": p_g, "d": d, "d_star": d_star, "gap": gap,
            "jsd": jensen_shannon(p_data_1d, p_g, dx_1d)}


data_samples = mixture.sample(N_DENSITY, np.random.default_rng(2))
kde_of_data = binned_gaussian_kde_1d(data_samples, x_grid_1d, BANDWIDTH)
jsd_floor = jensen_shannon(p_data_1d, kde_of_data, dx_1d)
print(f"JSD(p_data || KDE of {N_DENSITY} data samples) = {jsd_floor:.4f} nats: the floor")


# %% [markdown]
# At a few moments of training we look at 5,000 samples of $G$. `toy.mode_coverage` assigns each
# sample to its nearest mode and calls it *high quality* when it lies within 3 standard
# deviations of it; the table shows the share of samples near each mode (ideally 0.5 and 0.5,
# minus the 0.3 % of a Gaussian's mass beyond 3 sd) and the share elsewhere. The KS column is the
# largest gap between the samples' CDF and the true $F$. $D(\mathbf{x})$ and $D(G(\mathbf{z}))$
# are the discriminator's mean outputs on the last batch: at the game's equilibrium, when $G$'s
# samples look like the data, the best $D$ can do is say $\frac12$ everywhere. The last two
# columns are the JSD and the gap $|D - D^*|$ defined above.

# %%
x_plot_1d = np.linspace(-5.0, 5.0, 400)
moments_1d = [0, STEPS_1D // 20, STEPS_1D // 4, STEPS_1D]  # when to look (and draw)
noise_names = {"normal": "N(0, 1)", "uniform": "U(-1, 1)"}


def measurement_noise(prior):
    """N_DENSITY fixed noise vectors (N_DENSITY, 1) from `prior`, from their own random stream."""
    noise_rng = np.random.default_rng(1)
    if prior == "normal":
        z = noise_rng.standard_normal((N_DENSITY, 1))
    else:
        z = noise_rng.uniform(-1.0, 1.0, (N_DENSITY, 1))
    return z.astype(np.float32)


def train_gan_1d(prior):
    """Train a 1-D GAN from `prior` noise; print a row and draw a density_1d picture at each
    moment, and compare D with D* every measure_every steps. Returns the GAN, the pictures'
    paths and the comparison: {"steps": [...], "jsd": [...], "gap": [...], "moments": {step:
    the curves of compare_with_optimal}}."""
    tg.manual_seed(0)
    data_rng = np.random.default_rng(0)
    gan = GAN(mlp_generator(1, HIDDEN_1D, 1, out_activation=None),
              mlp_discriminator(1, HIDDEN_1D), latent_dim=1, prior=prior)
    optimizers = gan_optimizers(gan, lr=LR_START, betas=BETAS)
    z_measure = measurement_noise(prior)
    print(f"noise {noise_names[prior]} -> mixture, {STEPS_1D} steps of batch {BATCH_1D}")
    print(f"{'step':>6} {'near -2':>8} {'near +2':>8} {'elsewhere':>9} {'KS':>6} "
          f"{'D(x)':>5} {'D(G(z))':>7} {'JSD':>6} {'|D-D*|':>6}")
    pictures = []
    trace = {"steps": [], "jsd": [], "gap": [], "moments": {}}
    last = {"d_real": float("nan"), "d_fake": float("nan")}
    for step in range(STEPS_1D + 1):
        if step > 0:
            set_learning_rate(optimizers, step, STEPS_1D)
            batch = mixture.sample(BATCH_1D, data_rng).astype(np.float32).reshape(-1, 1)
            metrics = gan.train_step(tg.tensor(batch), optimizers)
            last = {name: float(metrics[name].item()) for name in ("d_real", "d_fake")}
        if step % measure_every == 0 or step in moments_1d:
            comparison = compare_with_optimal(gan, z_measure)
            trace["steps"].append(step)
            trace["jsd"].append(comparison["jsd"])
            trace["gap"].append(comparison["gap"])
        if step in moments_1d:
            trace["moments"][step] = comparison
            samples = gan.sample(pick(5000, 1000)).numpy().ravel()
            coverage = toy.mode_coverage(samples, mixture.means, mixture.stds)
            near = coverage["counts"] / len(samples)
            elsewhere = 1.0 - coverage["high_quality_fraction"]
            print(f"{step:6d} {near[0]:8.3f} {near[1]:8.3f} {elsewhere:9.3f} "
                  f"{ks_distance(samples):6.3f} {last['d_real']:5.2f} {last['d_fake']:7.2f} "
                  f"{comparison['jsd']:6.3f} {comparison['gap']:6.3f}")
            path = os.path.join(scratch, f"gan1d_{prior}_{step:05d}.png")
            pictures.append(plot.density_1d(
                x_plot_1d, path, data_density=mixture, samples=samples,
                discriminator=discriminator_probability(gan),
                title=f"{noise_names[prior]} noise, step {step}"))
    return gan, pictures, trace


# %%
gan_normal, pictures_normal, trace_normal = train_gan_1d("normal")

# %%
gan_uniform, pictures_uniform, trace_uniform = train_gan_1d("uniform")


# %% [markdown]
# `plot.density_1d` draws one picture: the data density (black dashes), a histogram of $G$'s
# samples (green) and $D(x)$ (blue dots, right axis). We put the pictures of both runs side by
# side: one row per noise distribution, one column per moment of training.

# %%
def tile_pictures(paths, path, columns):
    """Put PNG pictures of equal size into one figure, `columns` per row, at their own size."""
    images = [imread(p) for p in paths]
    height, width = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    dpi = 100
    fig = plot.new_figure(width=columns * width / dpi, height=rows * height / dpi, dpi=dpi)
    fig.set_layout_engine("none")  # each picture fills its own cell exactly
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        ax = fig.add_axes((column / columns, 1 - (row + 1) / rows, 1 / columns, 1 / rows))
        ax.imshow(image)
        ax.set_axis_off()
    return plot.save(fig, path, dpi=dpi)


tile_pictures(pictures_normal + pictures_uniform, figure("10_gan_1d.png"), columns=4)

# %% [markdown]
# What to look for, left to right:
#
# - **step 0**: the untrained $G$ squeezes all the noise into a narrow lump near 0, and the
#   untrained $D$ is close to $\frac12$ everywhere.
# - **step 100**: $D$ has learnt a slope: low where $G$'s samples pile up, high where there are
#   data and no samples. $G$ follows that slope, and here both runs have put (nearly) all their
#   samples on the left mode (0.979 and 1.000 of them in this full run). Each sample on its own
#   looks like data, yet half of the data is missing: this is **mode collapse**, for the moment.
# - **step 500**, the two runs now differ:
#     - with Gaussian noise (top row) $G$ has left the left mode: most samples have jumped
#       towards the right one and piled up around and past it (at $x \approx 3$ to 4), and a thin
#       spread remains everywhere in between. $D$ has swapped sides: about 0.65 on the left mode,
#       which $G$ has mostly left, and about 0.33 on the right mode and beyond, where the samples
#       have piled up;
#     - with uniform noise (bottom row) $G$ still sits on the left mode (all of its samples
#       there), and $D$ says "fake" there (about 0.3) and "real" (close to 1) on the right mode,
#       which $G$ has not reached yet.
#
#   The two players chase each other; neither descends a fixed loss.
# - **step 2000**: both modes hold about half of the samples (0.477 and 0.495 with Gaussian
#   noise, 0.472 and 0.458 with uniform noise), and $D(x)$ is close to $\frac12$ on them: it can
#   no longer tell the two apart.
#
# The "elsewhere" column does not reach 0. $G$ is a continuous function of connected noise (an
# interval), so its samples form one connected set: to put mass on both bumps, $G$ must also
# pass through the gap between them (where $D$ dips: it has seen samples there and no data).
# Training makes $G$ steep there, so few samples land in the gap, but a thin bridge stays.
#
# Finally, the learnt $G$ itself, against the ideal generators of section 1: for uniform noise
# $G(z) = F^{-1}\big(\frac{z + 1}{2}\big)$, for Gaussian noise $G(z) = F^{-1}(\Phi(z))$, and their
# mirror images ($z \to -z$), which give the same distribution.

# %%
fig = plot.new_figure(width=10.0, height=4.0)
axes = fig.subplots(1, 2)
for ax, gan, prior in ((axes[0], gan_normal, "normal"), (axes[1], gan_uniform, "uniform")):
    if prior == "normal":
        z = np.linspace(-3.0, 3.0, 300)
        u_of_z = np.array([standard_normal.cdf(v) for v in z])  # Phi(z)
    else:
        z = np.linspace(-1.0, 1.0, 300)
        u_of_z = (z + 1.0) / 2.0  # U(-1, 1) -> U(0, 1)
    with tg.no_grad():
        learnt = gan.generator(tg.tensor(z.astype(np.float32).reshape(-1, 1))).numpy().ravel()
    ax.plot(z, mixture_generator(u_of_z), "k--", label="ideal G, increasing")
    ax.plot(z, mixture_generator(1.0 - u_of_z), "k:", label="ideal G, decreasing")
    ax.plot(z, learnt, color="tab:green", linewidth=2, label="learnt G")
    ax.set_xlabel(f"z ~ {noise_names[prior]}")
    ax.set_ylabel("x = G(z)")
    ax.set_title(f"the generator function, {noise_names[prior]} noise", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
plot.save(fig, figure("10_generator_function.png"))

# %% [markdown]
# The learnt $G$ is neither of the ideal ones: it *folds*. It climbs steeply across the gap
# between the modes, as $F^{-1}$ does, but then turns back, so that two separate stretches of
# $z$ land on the same mode. That is no mistake: a GAN only ever sees the *distribution* of
# $G(z)$, and many functions push the same noise to the same distribution (the inverse CDF is
# just the only increasing one). Nothing in the game asks for a particular $G$, nor for an
# invertible one: one more reason why $p_G(x)$ cannot be read off a trained generator.
#
# ### The trained $D$ against the optimal $D^*$
#
# Both runs measured the JSD and the gap $|D - D^*|$ every 50 steps. The figure shows, at the
# four moments of `10_gan_1d.png`, the data density (black dashes), the estimate $\hat p_G$
# (green), the trained $D$ (blue dots) and $D^* = p_\text{data} / (p_\text{data} + \hat p_G)$
# (red), one row per noise distribution; the right-hand column follows the JSD (top, log scale,
# with the floor that data samples themselves score) and the gap (bottom) through training.

# %%
def draw_comparison(ax, comparison, title):
    """p_data, the estimate of p_G, D and D* on one axis (densities left, D and D* right)."""
    ax.plot(x_grid_1d, p_data_1d, "k--", label="p_data")
    ax.plot(x_grid_1d, comparison["p_g"], color="tab:green", label="p_G (KDE)")
    ax.set_xlim(-5.0, 5.0)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=9)
    right = ax.twinx()
    right.plot(x_grid_1d, comparison["d"], "b:", linewidth=2, label="trained D")
    right.plot(x_grid_1d, comparison["d_star"], color="tab:red", alpha=0.8, label="D*")
    right.set_ylim(0.0, 1.0)
    right.set_ylabel("D(x)")
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="upper left")


fig = plot.new_figure(width=18.0, height=7.0)
axes = fig.subplots(2, 5)
runs = (("normal", trace_normal), ("uniform", trace_uniform))
for row, (prior, trace) in enumerate(runs):
    for column, step in enumerate(moments_1d):
        comparison = trace["moments"][step]
        draw_comparison(axes[row, column], comparison,
                        f"{noise_names[prior]} noise, step {step}: |D-D*| = "
                        f"{comparison['gap']:.2f}")
ax_jsd, ax_gap = axes[0, 4], axes[1, 4]
for (prior, trace), colour in zip(runs, ("tab:purple", "tab:orange")):
    ax_jsd.plot(trace["steps"], trace["jsd"], color=colour, label=f"{noise_names[prior]} noise")
    ax_gap.plot(trace["steps"], trace["gap"], color=colour, label=f"{noise_names[prior]} noise")
ax_jsd.axhline(np.log(2), color="grey", linestyle="--", label="log 2 (no overlap)")
ax_jsd.axhline(jsd_floor, color="grey", linestyle=":", label="floor (data samples)")
ax_jsd.set_yscale("log")
ax_jsd.set_ylabel("JSD(p_data || p_G), nats")
ax_jsd.set_title("JSD over training", fontsize=9)
ax_gap.set_ylabel("mean |D - D*|, weighted by m(x)")
ax_gap.set_title("the gap between D and D* over training", fontsize=9)
for ax in (ax_jsd, ax_gap):
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
plot.save(fig, figure("10_optimal_discriminator.png"))

for prior, trace in runs:
    every = max(1, len(trace["steps"]) // 10)
    print(f"{noise_names[prior]} noise: step, JSD (nats), |D - D*|")
    for i in range(0, len(trace["steps"]), every):
        print(f"{trace['steps'][i]:6d} {trace['jsd'][i]:7.4f} {trace['gap'][i]:7.3f}")
    later = np.arange(1, len(trace["steps"]))  # after step 0
    worst = later[np.argmax(np.array(trace["gap"])[later])]
    print(f"  largest gap after step 0: {trace['gap'][worst]:.3f} at step {trace['steps'][worst]}, "
          f"where the JSD is {trace['jsd'][worst]:.3f}")

# %% [markdown]
# What the full run shows (the numbers quoted are from it):
#
# - **The JSD falls**, from 0.69 at step 0 (the untrained $G$ barely overlaps the data: almost
#   $\log 2$) to 0.060 (Gaussian noise) and 0.063 (uniform noise) at step 2000. It does not fall
#   steadily: it stalls near 0.25 from step 100 to step 400 (at step 100 both runs sit on the
#   left mode; an exact copy of one mode scores 0.216, lesson 11 computes it), and it rises when
#   $G$ jumps, to 0.34 at step 500 with Gaussian noise and at step 600 with uniform noise. At the
#   end it is still far above the floor of 0.0002 that 10,000 data samples score: the thin bridge
#   between the modes, and the samples that $G$ piles up on the modes' edges, are real
#   differences between $p_G$ and the data, which the KS column sees too.
# - **$D$ follows $D^*$, with a lag.** At step 0 $D$ says about $\frac12$ everywhere, while $D^*$ is
#   close to 1 on the data and to 0 on the lump of samples: a gap of 0.51. While $G$ stays put, $D$
#   catches up: with uniform noise all of $G$'s samples are on the left mode at steps 100 and 500,
#   and at step 500 $D$ lies almost on $D^*$ (a gap of 0.034). When $G$ moves fast, $D$ falls
#   behind: with Gaussian noise at step 500, $D^*$ is about 0.85 on *both* modes (the samples are
#   spread thinly over them), but $D$ says about 0.33 on the right one, as on the pile of samples
#   just past it; the gap peaks there, at 0.31. The uniform run jumps later: its JSD reaches 0.34 at
#   step 600, and its gap peaks one measurement after that, at 0.27 at step 700, while $D$ catches
#   up.
# - **At the end, $D$ is smoother than $D^*$.** At step 2000 the gap is about 0.1 in both runs.
#   Since $p_G$ is not quite $p_\text{data}$, $D^*$ is not $\frac12$: it swings between about 0.3
#   and 1 across the modes and drops to almost 0 on the bridge, where there are samples and
#   hardly any data. The trained $D$, a small network that sees batches of 512 points, follows
#   the broad shape (about $\frac12$ on the modes, a dip on the bridge) but not the narrow
#   swings.
#
# So the picture of lesson 11's theory, "$D$ plays $D^*$, $G$ descends the JSD, and at the end
# $D = \frac12$", holds here only roughly: $D$ is never quite $D^*$, and $G$ never quite reaches
# the data.

# %% [markdown]
# ## 3. Two dimensions: a ring of 8 Gaussians
#
# The classic test of a GAN's **mode coverage**: 8 Gaussians of standard deviation 0.02 evenly
# spaced on a circle of radius 2 (`toy.Ring`). Noise $\mathbf{z} \in \mathbb{R}^2$ is
# $\mathcal{N}(0, I)$; $G$ and $D$ have three hidden layers of 128 units. A GAN that only ever
# finds a few of the modes has *mode collapse*: its samples look perfect one by one (each lies on
# a mode), yet the distribution is wrong. Two numbers from `toy.mode_coverage` on 2,500 samples
# tell the story:
#
# - **modes covered**: modes with at least one high-quality sample (within 3 sd, that is 0.06,
#   of the mode); we also count the modes holding at least 1 % of the samples, which stray
#   samples cannot fake;
# - **high-quality share**: the fraction of samples within 3 sd of their nearest mode. The data
#   score 0.99; a generator that spreads mass between the modes scores low.

# %%
ring = toy.Ring(n_modes=8, radius=2.0, std=0.02)
HIDDEN_2D = [128, 128, 128]
BATCH_2D = pick(512, 256)
STEPS_2D = pick(2000, 48)
N_EVAL = pick(2500, 1000)
report_every = STEPS_2D // 8
moments_2d = [STEPS_2D // 8, STEPS_2D // 4, STEPS_2D // 2, STEPS_2D]  # the pictures

tg.manual_seed(0)
data_rng = np.random.default_rng(0)
gan_ring = GAN(mlp_generator(2, HIDDEN_2D, 2, out_activation=None),
               mlp_discriminator(2, HIDDEN_2D), latent_dim=2, prior="normal")
optimizers = gan_optimizers(gan_ring, lr=LR_START, betas=BETAS)
print(f"ring of 8: {STEPS_2D} steps of batch {BATCH_2D}, scored on {N_EVAL} samples")
print(f"{'step':>6} {'modes covered':>13} {'>= 1 %':>6} {'high-quality':>12} {'D(x)':>5} "
      f"{'D(G(z))':>7}  high-quality samples per mode")
ring_pictures = []
for step in range(1, STEPS_2D + 1):
    set_learning_rate(optimizers, step, STEPS_2D)
    batch = ring.sample(BATCH_2D, data_rng).astype(np.float32)
    metrics = gan_ring.train_step(tg.tensor(batch), optimizers)
    if step % report_every == 0:
        samples = gan_ring.sample(N_EVAL).numpy()
        coverage = toy.mode_coverage(samples, ring.modes, ring.std)
        solid = toy.mode_coverage(samples, ring.modes, ring.std, min_count=N_EVAL // 100)
        print(f"{step:6d} {coverage['n_modes_covered']:13d} {solid['n_modes_covered']:6d} "
              f"{coverage['high_quality_fraction']:12.3f} {metrics['d_real'].item():5.2f} "
              f"{metrics['d_fake'].item():7.2f}  {coverage['counts'].tolist()}")
        if step in moments_2d:
            path = os.path.join(scratch, f"ring_{step:05d}.png")
            ring_pictures.append(plot.samples_2d(
                samples, path, data_density=ring, extent=(-3, 3, -3, 3), modes=ring.modes,
                title=f"GAN on the ring of 8, step {step}"))

data_score = toy.mode_coverage(ring.sample(N_EVAL, data_rng), ring.modes, ring.std)
print(f"the data themselves: {data_score['n_modes_covered']} modes, high-quality share "
      f"{data_score['high_quality_fraction']:.3f}")

tile_pictures(ring_pictures, figure("10_ring.png"), columns=4)

# %% [markdown]
# Early on $G$ draws a blurred ring or a few arcs, with most samples between the modes (a low
# high-quality share). The discriminator keeps pointing $G$ at the places where data are
# denser than samples, and $G$ pulls its samples into the 8 narrow modes: by the end all 8 are
# covered and most samples are high quality. The thin trails between neighbouring modes are the
# 2-D version of the bridge of section 2: a continuous $G$ of connected noise cannot jump from one
# mode to the next.

# %%
print(f"elapsed: {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. In section 1, change `rate = 1.0` to `rate = 3.0`: the exponential's $G$ gets flatter and
#    its samples crowd towards 0; the printed mean and sd follow $1/\lambda$.
# 2. Make the 1-D target lopsided: `toy.GaussianMixture1D(weights=(0.8, 0.2))` in the line that
#    defines `mixture`. Do the "near -2" and "near +2" columns end near 0.8 and 0.2? Watch the
#    learnt $G$ in `10_generator_function.png`: the big mode gets the longer stretches of $z$.
# 3. Set `LR_END = LR_START` (no decay) and compare the final KS distance and the "elsewhere"
#    share: the decay lets the game settle instead of oscillating around the equilibrium.
# 4. Replace `toy.Ring(...)` with `toy.Grid()` (25 modes, spacing 2, sd 0.05) and `extent` with
#    `(-6, 6, -6, 6)`: how many of the 25 modes are covered after the same number of steps?
# 5. Train the ring with a tiny generator, `HIDDEN_2D = [16, 16]` for $G$ only (give
#    `mlp_generator` its own list): does it still reach all 8 modes, and what happens to the
#    high-quality share?
# 6. Set `BANDWIDTH = 0.3` in section 2: how far does the floor rise, and what happens to $D^*$'s
#    swings at step 2000 and to the final gap? A wider kernel smooths $\hat p_G$, and $D^*$ with
#    it.
