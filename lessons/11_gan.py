# %% [markdown]
# # 11: Generative adversarial networks
#
# Lesson 10 drew samples by pushing noise through a generator $G$ and let a second network
# judge them. This lesson writes that game out. A **generative adversarial network** (GAN) has two
# players:
#
# - the **generator** $G$ maps noise $\mathbf{z} \sim p(\mathbf{z})$ (here $\mathcal{N}(0, I)$,
#   100 numbers) to an image $G(\mathbf{z})$; it tries to produce realistic-looking samples;
# - the **discriminator** $D$ maps an image to $D(\mathbf{x}) \in (0, 1)$, the probability it
#   gives that $\mathbf{x}$ came from the training set rather than from $G$; it tries to tell
#   the two apart.
#
# The generator never sees a training image: everything it learns comes through the gradient of
# $D$. We write the game's value function and each player's loss, check tinygen's versions
# against our own, write out the training algorithm of the course notes and check that
# `GAN.train_step` does exactly that, look at why the generator loss of the notes stalls early
# in training (and the usual fix), and finally train an MLP GAN on MNIST, watching the same noise
# vectors turn into digits and scoring the result with the FID.
#
# Runs in about a minute and a half on a 2-core CPU (full: 87 s); `TINYGEN_QUICK=1` runs it in
# about 4 s.

# %%
import os

# The matrices are modest (batch x 512): one BLAS thread is faster than two that wait for each
# other on a shared 2-core machine. This must be set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

import tinygen as tg  # noqa: E402
from tinygen import nn, plot  # noqa: E402
from tinygen.data import DataLoader, to_symmetric  # noqa: E402
from tinygen.metrics import jensen_shannon, optimal_discriminator  # noqa: E402
from tinygen.mnist_classifier import (  # noqa: E402
    UNDER_REPRESENTED,
    fid,
    predict,
    real_floor,
    under_represented,
)
from tinygen.models import GAN, gan_optimizers, mlp_discriminator, mlp_generator  # noqa: E402

from course import QUICK, figure, mnist, pick  # noqa: E402

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## 1. The two players and their game
#
# $D$ is a binary classifier: label 1 for training images, label 0 for $G$'s samples. Its
# log-likelihood on both kinds of input is the **value function** of the game:
#
# $$V(D, G) = \mathbb{E}_{\mathbf{x} \sim p_\text{data}}\big[\log D(\mathbf{x})\big]
#   + \mathbb{E}_{\mathbf{z} \sim p(\mathbf{z})}\big[\log\big(1 - D(G(\mathbf{z}))\big)\big].$$
#
# $D$ wants $V$ large (say 1 on data, 0 on fakes); $G$ wants $V$ small (make $D(G(\mathbf{z}))$
# large). The game is
#
# $$\min_G \max_D V(D, G).$$
#
# Only the second term depends on $G$. The networks are those of `tinygen train gan`: MLPs,
# $G$: 100-256-512-784 with ReLU and a final tanh (images in $[-1, 1]$), $D$: 784-512-256-1 with
# LeakyReLU(0.2). $D$ ends in a **logit** $a$, and $D(\mathbf{x}) = \sigma(a)$ with the sigmoid
# $\sigma(a) = 1 / (1 + e^{-a})$: every loss below is computed from logits, which is stable.

# %%
LATENT = 100


def mnist_gan(generator_loss="non-saturating", k=1):
    """The MLP GAN: G 100-256-512-784 (tanh), D 784-512-256-1 (LeakyReLU(0.2), one logit)."""
    return GAN(mlp_generator(LATENT, (256, 512), 784), mlp_discriminator(784, (512, 256)),
               LATENT, prior="normal", k=k, generator_loss=generator_loss)


def count_parameters(module):
    return sum(p.data.size for p in module.parameters())


gan = mnist_gan()
print(f"G: {count_parameters(gan.generator):,} parameters, D: "
      f"{count_parameters(gan.discriminator):,} parameters")

# MNIST in [-1, 1], the range of G's tanh
x_train = to_symmetric(mnist("train", n=pick(None, 1024))[0])
x_test_unit, _ = mnist("test")  # in [0, 1], for the FID at the end
print(f"training images: {x_train.shape}, pixel range [{x_train.min():.0f}, "
      f"{x_train.max():.0f}]")

# %% [markdown]
# ## 2. Training the discriminator
#
# With $G$ held fixed, $D$ ascends $V$ on a minibatch of $m$ images $\mathbf{x}^{(i)}$ and $m$ noise
# vectors $\mathbf{z}^{(i)}$, that is, it descends
#
# $$\mathcal{L}_D = -\frac{1}{m} \sum_{i=1}^m \Big[\log D(\mathbf{x}^{(i)})
#    + \log\big(1 - D(G(\mathbf{z}^{(i)}))\big)\Big],$$
#
# the binary cross-entropy with labels 1 and 0. From logits, $\log \sigma(a) = -\log(1 + e^{-a})$
# and $\log(1 - \sigma(a)) = \log \sigma(-a) = -\log(1 + e^{a})$, which `np.logaddexp(0, .)`
# computes without overflow. By hand, then with `GAN.discriminator_loss`: an untrained $D$ says
# about $\frac12$ to everything, so the loss is close to $2 \log 2 \approx 1.386$.

# %%
m = 64
real_images = tg.tensor(x_train[:m])
with tg.no_grad():
    fake_images = gan.generator(gan.sample_prior(m))
    logits_real = gan.discriminator(real_images).numpy().ravel()
    logits_fake = gan.discriminator(fake_images).numpy().ravel()


def log_sigmoid(a):
    """log sigma(a) = -log(1 + e^{-a}), without overflow."""
    return -np.logaddexp(0.0, -a)


# log D(x) = log sigma(a_real);  log(1 - D(G(z))) = log sigma(-a_fake)
loss_d_by_hand = -(np.mean(log_sigmoid(logits_real)) + np.mean(log_sigmoid(-logits_fake)))
loss_d_tinygen, _, _ = gan.discriminator_loss(real_images, fake_images)
print(f"L_D by hand {loss_d_by_hand:.6f}, GAN.discriminator_loss {loss_d_tinygen.item():.6f}, "
      f"2 log 2 = {2 * np.log(2):.6f}")

# %% [markdown]
# ## 3. Training the generator
#
# With $D$ held fixed, $G$ descends the only term of $V$ it can change:
#
# $$\mathcal{L}_G^\text{sat} = \frac{1}{m} \sum_{i=1}^m \log\big(1 - D(G(\mathbf{z}^{(i)}))\big).$$
#
# The gradient flows *through* $D$ (its weights are frozen, not its computation) into $G$'s
# weights. The course notes use this loss; section 6 shows why it is called *saturating* and what
# is used instead.
#
# ## 4. Putting it all together: the minibatch algorithm
#
# For each training iteration:
#
# - **discriminator updates**, for $k$ steps:
#     - sample a minibatch of $m$ noise vectors $\{\mathbf{z}^{(1)}, \dots, \mathbf{z}^{(m)}\}$
#       from the prior $p(\mathbf{z})$;
#     - sample a minibatch of $m$ examples $\{\mathbf{x}^{(1)}, \dots, \mathbf{x}^{(m)}\}$ from
#       the data;
#     - update $D$ by ascending its stochastic gradient
#       $\nabla_{\theta_d} \frac{1}{m} \sum_{i=1}^m \big[\log D(\mathbf{x}^{(i)})
#       + \log(1 - D(G(\mathbf{z}^{(i)})))\big]$;
# - **generator update**, once:
#     - sample a minibatch of $m$ noise vectors;
#     - update $G$ by descending its stochastic gradient
#       $\nabla_{\theta_g} \frac{1}{m} \sum_{i=1}^m \log(1 - D(G(\mathbf{z}^{(i)})))$.
#
# `GAN.train_step(batch, optimizers)` is one iteration: the batch holds $k \cdot m$ images, $m$
# for each discriminator step. To see that it follows the algorithm, we wrap both networks in a
# module that writes a line each time it is called, and both optimizers in an object that writes
# a line at each `step()`, and run one iteration with $k = 3$ and $m = 4$.

# %%
class Logged(nn.Module):
    """Runs `net` and appends one line per call to `log`: who, on what, with which weights."""

    def __init__(self, name, net, log, fakes_made):
        super().__init__()
        self.net = net
        self.name = name
        self.log = log
        self.fakes_made = fakes_made  # G's outputs (kept alive), to tell fakes from real images

    def forward(self, x):
        if self.name == "G":
            graph = "recording the graph" if tg.is_grad_enabled() else "no graph (no_grad)"
            out = self.net(x)
            self.fakes_made.append(out)
            self.log.append(f"G on {len(x)} noise vectors, {graph}")
            return out
        what = "fakes G(z)" if any(x is fake for fake in self.fakes_made) else "real images"
        frozen = "frozen" if not next(iter(self.net.parameters())).requires_grad else "trainable"
        self.log.append(f"    D on {len(x)} {what}, D's weights {frozen}")
        return self.net(x)


class LoggedOptimizer:
    """Passes zero_grad and step on to `optimizer`, and notes every step in `log`."""

    def __init__(self, name, optimizer, log):
        self.name, self.optimizer, self.log = name, optimizer, log

    def zero_grad(self):
        self.optimizer.zero_grad()

    def step(self):
        self.log.append(f"        -> {self.name} takes a step")
        self.optimizer.step()


k, m = 3, 4
call_log, fakes_made = [], []
demo = mnist_gan(generator_loss="saturating", k=k)
optimizers = gan_optimizers(demo)
demo.generator = Logged("G", demo.generator, call_log, fakes_made)
demo.discriminator = Logged("D", demo.discriminator, call_log, fakes_made)
logged_optimizers = {name: LoggedOptimizer(name, opt, call_log)
                     for name, opt in optimizers.items()}
demo.train_step(tg.tensor(x_train[:k * m]), logged_optimizers)
print(f"one GAN.train_step with k = {k}, a batch of k * m = {k * m} images:")
print("\n".join(call_log))
d_calls = sum(line.strip().startswith("D on") for line in call_log)
g_calls = sum(line.startswith("G on") for line in call_log)
d_steps = sum("discriminator takes" in line for line in call_log)
g_steps = sum("generator takes" in line for line in call_log)
print(f"D called {d_calls} times, G {g_calls} times; D stepped {d_steps} times, G {g_steps} time")

# %% [markdown]
# Each of the $k = 3$ discriminator steps draws $m$ fresh noise vectors, runs $G$ without
# recording a graph (the step must not change $G$), scores $m$ real images and the $m$ fakes,
# and steps $D$. Then $G$ runs on $m$ new noise vectors with the graph recorded, $D$ scores them
# with its weights frozen (the gradient passes through $D$ into $G$ but $D$'s weights are not
# changed, and get no gradient at all), and $G$ steps: $2k + 1 = 7$ calls of $D$ and $k + 1 = 4$
# of $G$.
#
# ## 5. Why the game works: the optimal discriminator
#
# Why should this game make $G$'s samples look like the data? Suppose $D$ could be any function
# and won every round outright. Hold $G$ fixed and write $p_g$ for the density of its samples
# $G(\mathbf{z})$. The second expectation in $V$ is over $\mathbf{z}$, but it only looks at
# $\mathbf{x} = G(\mathbf{z})$, so it is an expectation over $p_g$:
#
# $$V(D, G) = \int \Big[p_\text{data}(\mathbf{x}) \log D(\mathbf{x})
#   + p_g(\mathbf{x}) \log\big(1 - D(\mathbf{x})\big)\Big] \, d\mathbf{x}.$$
#
# $D$ picks its value at each $\mathbf{x}$ separately, so it maximises the integrand point by
# point. At one $\mathbf{x}$ write $a = p_\text{data}(\mathbf{x})$, $b = p_g(\mathbf{x})$ and
# $y = D(\mathbf{x}) \in (0, 1)$:
#
# - $f(y) = a \log y + b \log(1 - y)$
# - $f'(y) = \dfrac{a}{y} - \dfrac{b}{1 - y}$
# - $f'(y) = 0 \iff a (1 - y) = b y \iff y = \dfrac{a}{a + b}$
# - $f''(y) = -\dfrac{a}{y^2} - \dfrac{b}{(1 - y)^2} < 0$, so this one stationary point is the
#   maximum.
#
# The **optimal discriminator** against a fixed $G$ is therefore
#
# $$D^*(\mathbf{x})
#   = \frac{p_\text{data}(\mathbf{x})}{p_\text{data}(\mathbf{x}) + p_g(\mathbf{x})}.$$
#
# Read it as: among everything that lands near $\mathbf{x}$, data and fakes in equal numbers,
# the share that came from the data. (Where both densities are 0, nothing is ever seen there,
# and $D$'s value does not matter.)
#
# What is $G$ left minimising when $D$ plays $D^*$? Let $m = \frac12 (p_\text{data} + p_g)$, the
# density of the mixture that $D$ is shown, half data and half fakes. Then
# $p_\text{data} + p_g = 2m$, so $D^* = p_\text{data} / (2m)$ and $1 - D^* = p_g / (2m)$. Dropping
# the $(\mathbf{x})$ and the $d\mathbf{x}$, and writing
# $\text{KL}(p \,\|\, q) = \int p \log (p / q)$ for the Kullback-Leibler divergence:
#
# - $V(D^*, G) = \int p_\text{data} \log D^* + \int p_g \log (1 - D^*)$
# - $= \int p_\text{data} \log \frac{p_\text{data}}{2m}
#   + \int p_g \log \frac{p_g}{2m}$
# - $= \int p_\text{data} \log \frac{p_\text{data}}{m}
#   - \log 2 \int p_\text{data} + \int p_g \log \frac{p_g}{m} - \log 2 \int p_g$
# - $= \text{KL}(p_\text{data} \,\|\, m) - \log 2
#   + \text{KL}(p_g \,\|\, m) - \log 2$ (both densities integrate to 1)
# - $= -\log 4 + 2 \cdot \tfrac12 \big[\text{KL}(p_\text{data} \,\|\, m)
#   + \text{KL}(p_g \,\|\, m)\big]$
# - $= -\log 4 + 2 \, \text{JSD}(p_\text{data} \,\|\, p_g)$,
#
# where $\text{JSD}(p \,\|\, q) = \frac12 \text{KL}(p \,\|\, m) + \frac12 \text{KL}(q \,\|\, m)$ is
# the **Jensen-Shannon divergence**. A KL divergence is never negative and is 0 only when its two
# densities are equal, so $\text{JSD}(p_\text{data} \,\|\, p_g) \ge 0$, with equality exactly when
# $p_g = p_\text{data}$ (then $m = p_\text{data}$ too). Hence:
#
# - against a perfect $D$, $G$ minimises the Jensen-Shannon divergence between its samples and
#   the data, and the game's minimum, $V = -\log 4$, is reached exactly at $p_g = p_\text{data}$;
# - there $D^*(\mathbf{x}) = \dfrac{p_\text{data}}{p_\text{data} + p_\text{data}} = \frac12$
#   for every $\mathbf{x}$: $D$ cannot tell, and says $\frac12$ everywhere;
# - and $V = \log \frac12 + \log \frac12 = -\log 4$, so $\mathcal{L}_D = -V = 2 \log 2 \approx
#   1.386$ (the untrained value of section 2) and the non-saturating
#   $\mathcal{L}_G = -\log \frac12 = \log 2$: the dotted lines of section 7's curves.
#
# Two honest caveats. The argument assumes $D$ reaches $D^*$ before every move of $G$, and that
# $G$ can produce any density; a real $D$ takes $k$ gradient steps per round and lags behind
# $D^*$ (lesson 10 measures the gap, `10_optimal_discriminator.png`). And the non-saturating loss
# of section 6 changes what $G$ minimises; it keeps the same fixed point, though: at
# $p_g = p_\text{data}$, $D^*$ is the constant $\frac12$, its gradient with respect to
# $\mathbf{x}$ is zero, and neither generator loss moves $G$.
#
# A check on numbers, in one dimension where integrals are sums over a fine grid: the data are
# lesson 10's mixture $\frac12 \mathcal{N}(-2, 0.5^2) + \frac12 \mathcal{N}(2, 0.5^2)$, and three
# generators from far to exact. For each we compute $V(D^*, G)$ by summing the integrand, and
# compare it with $-\log 4 + 2 \, \text{JSD}$ (`tinygen.metrics.jensen_shannon`), with $V$ at
# $D = \frac12$, and with $V$ at $D^*$ nudged by $\pm 0.05$.

# %%
x_line = np.linspace(-10.0, 10.0, 20001)
dx = x_line[1] - x_line[0]


def normal_density(x, mean, std):
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2.0 * np.pi))


def value_on_grid(p_data, p_g, d):
    """V(D, G) = integral of p_data log D + p_g log(1 - D), a sum over x_line. D is kept 1e-15
    from 0 and 1, where D* rounds to 0 or 1 but the density it weighs is below 1e-30."""
    d = np.clip(d, 1e-15, 1.0 - 1e-15)
    return float(np.sum(p_data * np.log(d) + p_g * np.log1p(-d)) * dx)


p_data_line = 0.5 * normal_density(x_line, -2.0, 0.5) + 0.5 * normal_density(x_line, 2.0, 0.5)
generators_1d = {"N(0, 1)": normal_density(x_line, 0.0, 1.0),
                 "N(-2, 0.5^2), one mode": normal_density(x_line, -2.0, 0.5),
                 "p_data itself": p_data_line}
print(f"-log 4 = {-np.log(4):.4f}")
print(f"{'p_g':>22} {'JSD':>6} {'V(D*, G)':>9} {'-log 4 + 2 JSD':>14} {'V(1/2, G)':>9} "
      f"{'V(D* +- 0.05)':>13} {'max |D* - 1/2|':>14}")
for name, p_g in generators_1d.items():
    d_star = optimal_discriminator(p_data_line, p_g)
    jsd = jensen_shannon(p_data_line, p_g, dx)
    nudged = max(value_on_grid(p_data_line, p_g, d_star + sign * 0.05) for sign in (-1, 1))
    print(f"{name:>22} {jsd:6.4f} {value_on_grid(p_data_line, p_g, d_star):9.4f} "
          f"{-np.log(4) + 2 * jsd:14.4f} {value_on_grid(p_data_line, p_g, 0.5):9.4f} "
          f"{nudged:13.4f} {np.max(np.abs(d_star - 0.5)):14.3f}")

# %% [markdown]
# $V(D^*, G)$ and $-\log 4 + 2 \, \text{JSD}$ agree to every printed digit. $V$ at $D = \frac12$
# is $-\log 4$ for every generator ($\log \frac12$ times two densities that each integrate to 1),
# so $D^*$ beats the coin-tossing $D$ by exactly $2 \, \text{JSD}$: the closer $G$ gets to the
# data, the less there is for $D$ to win. Nudging $D^*$ up or down lowers $V$: it is the maximum.
# For $p_g = p_\text{data}$, $D^*$ is $\frac12$ everywhere and $V(D^*, G) = V(\frac12, G) =
# -\log 4$.
#
# ## 6. Saturating and non-saturating generator losses
#
# Write $a$ for $D$'s logit on a fake, so $D(G(\mathbf{z})) = \sigma(a)$, and use
# $\sigma'(a) = \sigma(a)(1 - \sigma(a))$:
#
# - the notes' loss $\log(1 - \sigma(a))$ has $\dfrac{\partial}{\partial a} = -\sigma(a)
#   = -D(G(\mathbf{z}))$;
# - the **non-saturating** loss $-\log \sigma(a)$ (ascend $\log D(G(\mathbf{z}))$ instead of
#   descending $\log(1 - D(G(\mathbf{z})))$) has $\dfrac{\partial}{\partial a} = -(1 - \sigma(a))
#   = -(1 - D(G(\mathbf{z})))$.
#
# Both push $a$ up, and both have the same fixed points. But early in training $G$'s samples are
# bad and $D$ rejects them easily: $D(G(\mathbf{z})) \approx 0$. Then the first gradient is
# $\approx 0$ (the loss *saturates*: it is flat there) exactly when $G$ has the most to learn,
# while the second is $\approx 1$. The gradient reaching $G$'s weights is this factor times
# $\partial a / \partial \theta_g$. tinygen's `GAN(..., generator_loss=...)` offers both;
# the default is non-saturating. First we check tinygen's gradient with respect to the logits
# against the two formulas.

# %%
def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


logit_grid = np.linspace(-8.0, 8.0, 161)
grad_per_logit = {}
for kind in ("saturating", "non-saturating"):
    # the same two networks, playing with the other generator loss: only the loss changes
    player = GAN(gan.generator, gan.discriminator, LATENT, generator_loss=kind)
    logits = tg.tensor(logit_grid.reshape(-1, 1), requires_grad=True)
    player.generator_loss(logits).backward()  # the mean over the grid ...
    grad_per_logit[kind] = logits.grad.numpy().ravel() * len(logit_grid)  # ... so times K
formula = {"saturating": -sigmoid(logit_grid), "non-saturating": -(1.0 - sigmoid(logit_grid))}
for kind in grad_per_logit:
    gap = np.max(np.abs(grad_per_logit[kind] - formula[kind]))
    print(f"{kind:>15}: dL/da from tinygen vs the formula, largest difference {gap:.1e}")

# %% [markdown]
# Now the measured effect on a real network. Early in training $D$ easily wins: we give it a head
# start, one iteration of the algorithm with $k = 50$ (50 discriminator steps against the untrained
# $G$, then one generator step), and then train on with $k = 1$, once with each loss. Both runs
# start from the same seed, so up to the first generator step everything is identical: the same
# $D$, the same $G$, the same noise. `train_step` returns `g_grad_norm`, the norm of the gradient
# over all of $G$'s weights, at every step.

# %%
BATCH = 128
LR = 1e-3  # Adam, betas (0.5, 0.999) as in DCGAN
HEAD_START_K = pick(50, 5)
AFTER_STEPS = pick(100, 5)


def run_after_head_start(kind):
    """A fresh GAN with the given generator loss: D's head start, then AFTER_STEPS iterations.
    Returns {"g_grad_norm": [...], "d_fake": [...]}, one entry per generator step."""
    tg.manual_seed(1)  # the same networks and noise for both kinds
    player = mnist_gan(generator_loss=kind, k=HEAD_START_K)
    optimizers = gan_optimizers(player, lr=LR)
    trace = {"g_grad_norm": [], "d_fake": []}

    def record(metrics):
        trace["g_grad_norm"].append(metrics["g_grad_norm"])
        trace["d_fake"].append(metrics["d_fake"].item())

    # the head start: one iteration with k = HEAD_START_K, on k * BATCH images
    record(player.train_step(tg.tensor(x_train[:HEAD_START_K * BATCH]), optimizers))
    player.k = 1  # then the usual one D step per G step
    loader = DataLoader(x_train, BATCH, shuffle=True, seed=1)
    for _, batch in zip(range(AFTER_STEPS), loader):
        record(player.train_step(batch, optimizers))
    return trace


traces = {kind: run_after_head_start(kind) for kind in ("saturating", "non-saturating")}
d_fake_start = traces["saturating"]["d_fake"][0]
norm_sat = traces["saturating"]["g_grad_norm"][0]
norm_non = traces["non-saturating"]["g_grad_norm"][0]
print(f"after D's head start ({HEAD_START_K} steps), D(G(z)) = {d_fake_start:.4f}")
print(f"G's gradient norm there, same D, G and z: saturating {norm_sat:.3g}, non-saturating "
      f"{norm_non:.3g} (ratio {norm_sat / norm_non:.3f}; D(G(z)) / (1 - D(G(z))) = "
      f"{d_fake_start / (1 - d_fake_start):.3f})")
print(f"{'steps':>9} {'|grad| sat':>10} {'|grad| non-sat':>14} {'D(G(z)) sat':>11} "
      f"{'D(G(z)) non-sat':>15}")
windows = [(1, 11), (11, 31), (31, AFTER_STEPS + 1)] if not QUICK else [(1, AFTER_STEPS + 1)]
for a, b in windows:
    row = [np.mean(traces[kind][key][a:b]) for key in ("g_grad_norm", "d_fake")
           for kind in ("saturating", "non-saturating")]
    print(f"{a:4d}-{b - 1:<4d} {row[0]:10.3g} {row[1]:14.3g} {row[2]:11.3f} {row[3]:15.3f}")

# %% [markdown]
# The figure puts it together: the two losses as functions of $D(G(\mathbf{z}))$ (top left), their
# gradients with respect to the logit, formula and tinygen (top right), the measured gradient
# norm over the steps after the head start (bottom left), and the same norms against the
# $D(G(\mathbf{z}))$ of their step (bottom right).

# %%
fig = plot.new_figure(width=11.0, height=7.5)
(ax_loss, ax_grad), (ax_norm, ax_dfake) = fig.subplots(2, 2)
d_grid = np.linspace(0.001, 0.999, 500)
ax_loss.plot(d_grid, np.log(1 - d_grid), color="tab:red", label="saturating: log(1 - D(G(z)))")
ax_loss.plot(d_grid, -np.log(d_grid), color="tab:blue", label="non-saturating: -log D(G(z))")
ax_loss.axvspan(0, 0.1, color="grey", alpha=0.15, label="D rejects the fakes")
ax_loss.set_xlabel("D(G(z))")
ax_loss.set_ylabel("generator loss (G descends it)")
ax_loss.legend(fontsize=8)
ax_loss.grid(True, alpha=0.3)

ax_grad.plot(logit_grid, np.abs(formula["saturating"]), color="tab:red", label="|dL/da| = D(G(z))")
ax_grad.plot(logit_grid, np.abs(formula["non-saturating"]), color="tab:blue",
             label="|dL/da| = 1 - D(G(z))")
ax_grad.plot(logit_grid[::8], np.abs(grad_per_logit["saturating"][::8]), "o", color="tab:red",
             markersize=3, label="tinygen autograd")
ax_grad.plot(logit_grid[::8], np.abs(grad_per_logit["non-saturating"][::8]), "o",
             color="tab:blue", markersize=3)
ax_grad.axvspan(-8, np.log(0.1 / 0.9), color="grey", alpha=0.15)
ax_grad.set_xlabel("D's logit a on a fake (D(G(z)) = sigmoid(a))")
ax_grad.set_ylabel("|gradient of the loss w.r.t. a|")
ax_grad.legend(fontsize=8)
ax_grad.grid(True, alpha=0.3)

steps_axis = np.arange(len(traces["saturating"]["g_grad_norm"]))
for kind, colour in (("saturating", "tab:red"), ("non-saturating", "tab:blue")):
    ax_norm.plot(steps_axis, traces[kind]["g_grad_norm"], color=colour, label=kind)
    ax_dfake.scatter(traces[kind]["d_fake"], traces[kind]["g_grad_norm"], s=10, color=colour,
                     alpha=0.7, label=kind)
ax_norm.set_yscale("log")
ax_norm.set_xlabel("generator step (0: the end of D's head start)")
ax_norm.set_ylabel("g_grad_norm, |gradient over G's weights|")
ax_norm.legend(fontsize=8)
ax_norm.grid(True, alpha=0.3)
ax_dfake.set_xscale("log")
ax_dfake.set_yscale("log")
ax_dfake.set_xlabel("D(G(z)) at that step (log scale)")
ax_dfake.set_ylabel("g_grad_norm")
ax_dfake.legend(fontsize=8)
ax_dfake.grid(True, alpha=0.3)
plot.save(fig, figure("11_generator_losses.png"))

# %% [markdown]
# At the end of the head start $D(G(\mathbf{z}))$ is below 0.1 %: $D$ rejects nearly every fake.
# On the very same networks and noise, the saturating loss then gives $G$ a gradient about a
# thousand times smaller than the non-saturating one, close to the ratio of the two factors,
# $D(G(\mathbf{z})) / (1 - D(G(\mathbf{z})))$. With plain gradient descent $G$'s step would be a
# thousand times smaller too, and $G$ would stay stuck while $D$ keeps rejecting it. Adam rescues
# it here: it divides each step by a running estimate of the gradient's own size, so its first
# steps have full size however small the gradient, and the saturating run escapes within a step
# or two (bottom left). Afterwards its gradient stays a few times smaller, and the bottom right
# shows why: the saturating norm falls with $D(G(\mathbf{z}))$, the non-saturating one does not.
# The saturating loss learns most from the fakes that $D$ already finds plausible ($\sigma(a)$ is
# largest there), the non-saturating one from those $D$ rejects, which need it most. From now on:
# non-saturating, tinygen's default.
#
# ## 7. An MLP GAN on MNIST
#
# `tinygen train gan` trains this GAN for 30 epochs with Adam at $8 \cdot 10^{-4}$ and batches of
# 64. The DCGAN paper's $2 \cdot 10^{-4}$ is far too slow for it. The table below measures the
# techniques that lesson 13 measures for the DCGAN, on this MLP GAN, with two scores of a
# sample of generated digits, both computed by the digit classifier that ships with tinygen:
#
# - the **FID** of lesson 09: the distance between Gaussians fitted to the classifier's
#   128 features of the samples and of real digits; lower is better, and 10,000 real training
#   digits score 5.6 against the test set (not 0: the estimate is biased upward);
# - the **MNIST score**, the Inception Score of Salimans et al. (2016) with our classifier in
#   place of the Inception network. Let $p(y \mid \mathbf{x})$ be the classifier's probabilities
#   of the ten digits for one sample and $p(y) = \mathbb{E}_\mathbf{x}\, p(y \mid \mathbf{x})$ their
#   average over the samples; then
#
#   $$\text{MNIST score} = \exp\Big(\mathbb{E}_\mathbf{x}\,
#     \text{KL}\big(p(y \mid \mathbf{x}) \,\|\, p(y)\big)\Big).$$
#
#   The mean KL divergence equals $H(p(y)) - \mathbb{E}_\mathbf{x} H(p(y \mid \mathbf{x}))$, with
#   $H$ the entropy: it is large when the samples together use all ten digits ($p(y)$ flat,
#   $H(p(y))$ up to $\log 10$) and each sample is read confidently as one digit
#   ($p(y \mid \mathbf{x})$ peaked, entropy near 0). So the score runs from 1 (every sample gets
#   the same probabilities) to 10 (every sample read with certainty, the ten digits equally
#   often); higher is better, and the real test digits score 9.76. (`mc.mnist_score` cuts the
#   samples into ten equal parts, scores each part with its own $p(y)$, and reports the mean of
#   the ten, as the Inception Score's reference code does.)
#
# Each row below changes **one thing, alone**, in the first row's recipe: the rows do not add
# up (`bench/dcgan_recipe.py --model mlp`, 10 epochs of batches of 64, seed 0, 10,000 samples
# scored against the test set):
#
# | recipe (each row: the paper's, with one change) | FID | MNIST score |
# | --- | --- | --- |
# | Adam $2 \cdot 10^{-4}$, $\beta_1$ 0.5 (the DCGAN paper's) | 1050 | 3.90 |
# | the paper's, with a moving average of G (0.999, ramped) | 1121 | 3.69 |
# | the paper's, with one-sided label smoothing (0.9) | 799 | 4.84 |
# | the paper's, with TTUR (D $4 \cdot 10^{-4}$, G $10^{-4}$) | 2062 | 1.58 |
# | the paper's, with spectral normalisation of D | 567 | 4.94 |
# | the paper's, with dropout 0.3 in D | 767 | 4.70 |
# | the paper's, with learning rate $4 \cdot 10^{-4}$ | 274 | 6.97 |
# | the paper's, with learning rate $8 \cdot 10^{-4}$ (seed 1: 125 and 7.70) | 116 | 7.87 |
#
# The learning rate dwarfs every other technique, as for the DCGAN; spectral normalisation and
# label smoothing help the slow recipe, and a generator that learns four times slower than $D$
# (TTUR) barely learns at all. For a run of a few minutes we take batches of 128 (cheaper per
# image) and a learning rate of $10^{-3}$, with $k = 1$. Every step logs the losses and the mean
# $D(\mathbf{x})$ and $D(G(\mathbf{z}))$; at a few moments we pass the same 10 noise vectors
# through $G$, so that each column of the sample figure follows one $\mathbf{z}$ through
# training.
# (`GAN.sample_watcher(plot.epoch_grids(folder))` does the same as an `on_epoch_end` for
# `train.fit`, one file per epoch; here we keep the images to lay them out in one figure.)

# %%
EPOCHS = pick(4, 1)
tg.manual_seed(0)
gan = mnist_gan(generator_loss="non-saturating", k=1)
optimizers = gan_optimizers(gan, lr=LR)  # Adam, betas (0.5, 0.999)
loader = DataLoader(x_train, BATCH, shuffle=True, drop_last=True, seed=0)
steps_per_epoch = len(loader)
fixed_z = gan.fixed_noise(10, seed=0)  # the same z at every snapshot
snapshot_steps = [0, steps_per_epoch // 4, steps_per_epoch // 2]
snapshot_steps += [epoch * steps_per_epoch for epoch in range(1, EPOCHS + 1)]
snapshots = {}  # step -> G(fixed_z), (10, 784)
log = {"loss_d": [], "loss_g": [], "d_real": [], "d_fake": []}


def take_snapshot(step):
    with tg.no_grad():
        snapshots[step] = gan.generator(fixed_z).numpy()


print(f"{EPOCHS} epochs of {steps_per_epoch} steps, batch {BATCH}")
take_snapshot(0)
step = 0
for epoch in range(1, EPOCHS + 1):
    epoch_started = time.perf_counter()
    for batch in loader:
        step += 1
        metrics = gan.train_step(batch, optimizers)
        for key in log:
            log[key].append(metrics[key].item())
        if step in snapshot_steps:
            take_snapshot(step)
    last = slice(-steps_per_epoch, None)
    print(f"epoch {epoch}: loss_d {np.mean(log['loss_d'][last]):.3f}, loss_g "
          f"{np.mean(log['loss_g'][last]):.3f}, D(x) {np.mean(log['d_real'][last]):.3f}, "
          f"D(G(z)) {np.mean(log['d_fake'][last]):.3f}, "
          f"{time.perf_counter() - epoch_started:.0f} s")

# %% [markdown]
# ### Losses and $D$'s outputs during training
#
# A GAN has no loss that falls to tell us all is well: each player's loss is measured against an
# opponent that keeps changing. At the equilibrium of the game $D$ cannot tell at all, it says
# $\frac12$ everywhere (section 5), and then $\mathcal{L}_D = 2 \log 2 \approx 1.39$ and the
# non-saturating $\mathcal{L}_G = \log 2 \approx 0.69$ (dotted lines). The curves are moving
# averages over 50 steps. In a run this short $D$ stays ahead: $D(\mathbf{x})$ settles around
# 0.6 and $D(G(\mathbf{z}))$ around 0.4, and the losses wander without converging; what tells us
# that $G$ improves is the pictures, and the FID at the end.

# %%
def moving_average(values, width):
    width = max(1, min(width, len(values)))
    return np.convolve(values, np.ones(width) / width, mode="valid")


width = pick(50, 2)
fig = plot.new_figure(width=11.0, height=4.0)
ax_losses, ax_d = fig.subplots(1, 2)
for key, colour in (("loss_d", "tab:purple"), ("loss_g", "tab:green")):
    smooth = moving_average(log[key], width)
    ax_losses.plot((np.arange(len(smooth)) + width) / steps_per_epoch, smooth, color=colour,
                   label=key)
ax_losses.axhline(2 * np.log(2), color="tab:purple", linestyle=":", label="2 log 2")
ax_losses.axhline(np.log(2), color="tab:green", linestyle=":", label="log 2")
ax_losses.set_xlabel("epoch")
ax_losses.set_ylabel("loss")
ax_losses.legend(fontsize=8)
ax_losses.grid(True, alpha=0.3)
for key, colour, name in (("d_real", "tab:orange", "D(x), real images"),
                          ("d_fake", "tab:cyan", "D(G(z)), fakes")):
    smooth = moving_average(log[key], width)
    ax_d.plot((np.arange(len(smooth)) + width) / steps_per_epoch, smooth, color=colour,
              label=name)
ax_d.axhline(0.5, color="grey", linestyle=":", label="1/2 (D cannot tell)")
ax_d.set_ylim(0, 1)
ax_d.set_xlabel("epoch")
ax_d.set_ylabel("D's mean output")
ax_d.legend(fontsize=8)
ax_d.grid(True, alpha=0.3)
plot.save(fig, figure("11_training_curves.png"))

# %% [markdown]
# ### The same noise through training
#
# One row per moment of training, one column per fixed $\mathbf{z}$. At step 0 every $\mathbf{z}$
# gives grey noise. A hundred steps later every $\mathbf{z}$ gives nearly the *same* blob: $G$
# has found one thing that fools $D$ for now and ignores its noise (a collapse onto one mode).
# $D$ learns to reject that blob, which pushes $G$ to spread out: the columns start to differ, and
# the strokes sharpen over the epochs. A column keeps roughly its digit once it has formed, but
# it can also jump: $G$ and $D$ keep moving each other.

# %%
rows, titles = [], []
for step_taken in snapshot_steps:
    rows.append(snapshots[step_taken])
    if step_taken % steps_per_epoch == 0 and step_taken > 0:
        label = f"epoch {step_taken // steps_per_epoch}"
    else:
        label = f"step {step_taken}"
    titles += [label] + [""] * (len(fixed_z) - 1)
plot.image_grid(np.concatenate(rows), figure("11_samples.png"), nrow=len(fixed_z),
                titles=titles, value_range=(-1, 1))

# %% [markdown]
# ### The final generator, and its FID
#
# 64 fresh samples of the final $G$, each titled with the digit the course's MNIST classifier
# (`tinygen.mnist_classifier`) reads in it. Then the FID of lesson 09: the distance between
# Gaussians fitted to the classifier's 128-d features of $N$ generated images and of the 10,000
# test digits. It is biased upwards for small $N$, so it is printed beside
# `real_floor(n=N)`: $N$ real training digits against the same test digits, the best a model can
# hope for at this $N$. (In quick mode the floor is computed the same way by hand on the bundled
# digits: `real_floor` reads the full test set, too slow for a quick run.)

# %%
with tg.no_grad():
    final_samples = gan.sample(64).numpy()
digits = predict(final_samples, value_range=(-1, 1))
plot.image_grid(final_samples, figure("11_final_samples.png"), nrow=8,
                titles=[str(d) for d in digits], value_range=(-1, 1))

N_FID = pick(2000, 100)
reference = x_test_unit if not QUICK else x_test_unit[:400]
with tg.no_grad():
    fakes = gan.sample(N_FID).numpy()
fid_model = fid(fakes, reference, value_range=(-1, 1), value_range_b=(0, 1))
if QUICK:
    real_pick = rng.choice(len(x_train), size=N_FID, replace=False)
    fid_floor = fid(x_train[real_pick], reference, value_range=(-1, 1), value_range_b=(0, 1))
else:
    fid_floor = real_floor(n=N_FID)["fid"]
print(f"FID of {N_FID} GAN samples vs {len(reference)} test digits: {fid_model:.1f}")
print(f"FID of {N_FID} real training digits vs the same (the floor): {fid_floor:.1f}")
counts = np.bincount(predict(fakes, value_range=(-1, 1)), minlength=10)
test_counts = np.bincount(predict(reference), minlength=10)
shares = counts / N_FID
print("the classifier's digit for the GAN samples (share of each, ideally about 0.10):")
print("  " + "  ".join(f"{d}: {s:.2f}" for d, s in enumerate(shares)))
rare = under_represented(counts, test_counts)  # as `tinygen score` names them
print(f"under-represented (below {UNDER_REPRESENTED:.2f} of their share among the test digits): "
      + (" ".join(map(str, rare)) or "none"))

# %% [markdown]
# The FID stays far above the real-digit floor: a few minutes of an MLP GAN give digits that are
# recognisable but blotchy, and FID punishes that (the `tinygen train gan` recipe's 30 epochs,
# or the DCGAN of lesson 13, go much further). The classifier's shares tell a better story
# about *coverage*: every digit appears, roughly as often as in the data, so this run has not
# collapsed onto a few classes, the failure that the ring of lesson 10 measured with modes.

# %%
print(f"elapsed: {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. Train the MNIST GAN with the notes' loss: `mnist_gan(generator_loss="saturating", k=1)` in
#    section 7. Compare `11_samples.png`, the curves and the FID with the non-saturating run.
# 2. Give $D$ more steps: `k=3` in the same line (the DataLoader's batches must then hold
#    $k \cdot m$ images: use `BATCH = 3 * 128`). Does $D(G(\mathbf{z}))$ stay lower, and do the
#    samples improve per second of training?
# 3. Replace Adam by plain SGD for the head-start experiment (`tinygen.optim.SGD` in
#    `run_after_head_start`, lr 0.1): without Adam's rescaling, how long does the saturating run
#    stay stuck near $D(G(\mathbf{z})) \approx 0$?
# 4. Set `LR = 2e-4` and `BATCH = 64` (the DCGAN paper's recipe) and keep `EPOCHS = 4`:
#    how do the samples and the FID compare after the same number of epochs?
# 5. Change `prior="normal"` to `prior="uniform"` in `mnist_gan`: does the noise distribution
#    matter for the quality of the digits?
