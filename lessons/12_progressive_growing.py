# %% [markdown]
# # 12: Progressive growing of GANs
#
# The GAN of lesson 11 had to learn everything about a $28 \times 28$ digit at once: where the
# ink goes, how thick the strokes are, and how their edges look, all from one discriminator
# that judges the whole picture. **Progressive growing** (Karras, Aila, Laine and Lehtinen,
# 2017: *Progressive growing of GANs for improved quality, stability, and variation*) splits
# the job by scale. Both players start small: the generator draws tiny images, the
# discriminator judges tiny images (the real ones shrunk to match). When that game has
# settled, both networks get a new block of layers that doubles the resolution, and the new
# block is **faded in** gently, so that the half-trained networks are not shocked by it. The
# coarse layout is learnt where it is cheap, at low resolution, and every later block only has
# to add detail.
#
# We grow a GAN on MNIST from $7 \times 7$ to $14 \times 14$ to $28 \times 28$. The two tools it
# needs are new in tinygen: **nearest-neighbour upsampling** (the generator's way up) and
# **average pooling** (the discriminator's way down), each the other's gradient. Then we train
# it for the same number of seconds as a **DCGAN**, in alternating turns, and compare the two
# with the FID (lesson 09) and the MNIST score (lesson 11). The DCGAN is a GAN whose two players
# are convolutional networks, with fixed resolution; the course builds it and takes it apart in
# the *next* lesson, 13. Here we borrow it ahead of time as a ready-made opponent, tinygen's
# `models.dcgan`, trained as lesson 13 trains it. The notes pair the paper with the slide
# "GAN examples: celebrities and bedrooms"; the last section says what those pictures are and
# why we stand in for them with MNIST.
#
# The full run trains each GAN for 2 minutes: a short budget for a GAN. It took about 5
# minutes in all on a 2-core CPU shared with other work (the numbers quoted below are from that
# full run); `TINYGEN_QUICK=1` runs it in about 6 s.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import mnist_classifier as mc
from tinygen import models, nn, plot
from tinygen.data import DataLoader
from tinygen.nn import functional as F

from course import QUICK, figure, mnist, pick

started = time.perf_counter()
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## Down and up by a factor of two
#
# **Average pooling** with a $2 \times 2$ window (`F.avg_pool2d(x, 2)`, `nn.AvgPool2d(2)`)
# halves an image: each output pixel is the mean of a block of four,
#
# $$\mathrm{pool}(x)_{ij} = \tfrac14 \sum_{a, b \in \{0, 1\}} x_{2i + a,\, 2j + b}.$$
#
# **Nearest-neighbour upsampling** (`F.upsample_nearest(x, 2)`, `nn.Upsample(scale_factor=2)`)
# doubles it by copying every pixel into a $2 \times 2$ block: $\mathrm{up}(h)_{ij} =
# h_{\lfloor i/2 \rfloor, \lfloor j/2 \rfloor}$. Neither has weights. Both are linear maps, so
# each has a matrix, and the two matrices are transposes of each other up to the factor 4:
#
# $$\langle \mathrm{up}(h), y \rangle = \sum_{ij} h_{\lfloor i/2 \rfloor \lfloor j/2 \rfloor}
#   y_{ij} = \langle h, 4\, \mathrm{pool}(y) \rangle .$$
#
# That is why each is the other's gradient: the backward of a linear map is its transpose, so
# the gradient of upsampling is a *sum* over each block ($4 \cdot$ pool), and the gradient of
# pooling is the incoming gradient upsampled and divided by 4. tinygen writes both backwards
# with these same ops, so gradients of gradients work too (`tests/test_pool.py` checks all of
# it against finite differences). We check the identity on random numbers, then shrink a real
# digit twice: the $7 \times 7$ version is what the first generator has to imitate.

# %%
rng = np.random.default_rng(0)
h_check = tg.tensor(rng.standard_normal((2, 3, 7, 7)), dtype="float64")
y_check = tg.tensor(rng.standard_normal((2, 3, 14, 14)), dtype="float64")
left = float((F.upsample_nearest(h_check, 2) * y_check).sum().data)
right = float((h_check * F.avg_pool2d(y_check, 2) * 4).sum().data)
print(f"<up(h), y> = {left:.10f}    <h, 4 pool(y)> = {right:.10f}")

train_unit, _ = mnist("train", n=pick(None, 512))
train_images = (train_unit * 2 - 1).reshape(-1, 1, 28, 28)  # [0, 1] -> [-1, 1], (N, 1, 28, 28)
digit = tg.tensor(train_images[:1])
print("a digit at", [tuple(x.shape[2:]) for x in (digit, F.avg_pool2d(digit, 2),
                                                  F.avg_pool2d(F.avg_pool2d(digit, 2), 2))])

# %% [markdown]
# ## The growing generator and its fade-in
#
# The generator is a stack of **blocks**, one per resolution. The first turns $z$ (100 numbers)
# into 32 feature maps of $7 \times 7$ (Linear + BatchNorm + ReLU, then a $3 \times 3$
# convolution); each later block doubles the maps and refines them: Upsample($\times 2$), a
# $3 \times 3$ convolution, BatchNorm, ReLU, with 16 channels at $14 \times 14$ and 8 at
# $28 \times 28$ (fewer channels where there are more pixels, as in the paper; few channels
# in all, to keep the full-resolution steps cheap). Each
# resolution has its own **to_rgb** layer, a convolution to one channel and Tanh, which turns
# that resolution's feature maps into an image. The paper's to_rgb is $1 \times 1$; ours is
# $3 \times 3$, because with only 8 or 16 channels a $1 \times 1$ layer has so few weights
# per pixel that, at Adam's small steps of $2 \cdot 10^{-4}$ (the DCGAN paper's rate, with which
# this was tried), a new to_rgb needed hundreds of steps just to turn its grey start (Tanh of
# about 0) into the black background of MNIST.
#
# At level $\ell$ (resolution $7 \cdot 2^\ell$) the generator runs the blocks up to $\ell$ and
# the to_rgb of level $\ell$. Growing from level $\ell - 1$ to $\ell$ would, done abruptly, put
# an untrained block and an untrained to_rgb between the trained layers and the image. Instead
# the new path is blended with the old one, upsampled:
#
# $$G_\alpha(z) = (1 - \alpha)\, \mathrm{up}\big(\mathrm{rgb}_{\ell-1}(h)\big)
#   + \alpha\, \mathrm{rgb}_\ell\big(\mathrm{block}_\ell(h)\big),$$
#
# where $h$ are the level $\ell - 1$ feature maps and $\mathrm{block}_\ell$ begins with the
# upsampling. At $\alpha = 0$ it is exactly the old generator (its image, blown up); $\alpha$
# then rises linearly to 1 over a **fade-in** phase, and a **stabilise** phase at $\alpha = 1$
# follows, before the next growth. Both terms are in $[-1, 1]$, and so is their blend.

# %%
LATENT_DIM = 100
CHANNELS = (32, 16, 8)  # feature maps at 7 x 7, 14 x 14, 28 x 28
RESOLUTIONS = (7, 14, 28)


def to_rgb(channels):
    """Feature maps -> one image channel in [-1, 1]: a 3 x 3 convolution and Tanh."""
    return nn.Sequential(nn.Conv2d(channels, 1, 3, 1, 1), nn.Tanh())


class ProgressiveGenerator(nn.Module):
    """z (N, 100) -> images (N, 1, R, R) at the current level's resolution R (7, 14 or 28).

    grow(level, alpha) sets the level and the fade-in weight alpha of its newest block."""

    def __init__(self, latent_dim=LATENT_DIM, channels=CHANNELS):
        super().__init__()
        first = channels[0]
        self.start = nn.Sequential(  # z -> (first, 7, 7)
            nn.Linear(latent_dim, first * 7 * 7), nn.BatchNorm1d(first * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (first, 7, 7)),
            nn.Conv2d(first, first, 3, 1, 1), nn.BatchNorm2d(first), nn.ReLU(),
        )
        self.blocks = nn.ModuleList([  # block l: (channels[l-1], R/2, R/2) -> (channels[l], R, R)
            nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 3, 1, 1),
                          nn.BatchNorm2d(c_out), nn.ReLU())
            for c_in, c_out in zip(channels[:-1], channels[1:])
        ])
        self.to_rgb = nn.ModuleList([to_rgb(c) for c in channels])
        self.level, self.alpha = 0, 1.0

    def grow(self, level, alpha=1.0):
        self.level, self.alpha = level, alpha

    def forward(self, z):
        h = self.start(z)
        if self.level == 0:
            return self.to_rgb[0](h)
        for block in self.blocks[:self.level - 1]:  # the levels grown before the newest one
            h = block(h)
        new = self.to_rgb[self.level](self.blocks[self.level - 1](h))
        if self.alpha >= 1:
            return new
        old = F.upsample_nearest(self.to_rgb[self.level - 1](h), 2)
        return old * (1 - self.alpha) + new * self.alpha


# %% [markdown]
# ## The mirrored discriminator
#
# The discriminator runs the other way. Each resolution has a **from_rgb** layer (a
# $1 \times 1$ convolution from the image to that level's channels, LeakyReLU) and each block
# above $7 \times 7$ halves the maps: a $3 \times 3$ convolution, LeakyReLU(0.2) and
# AvgPool2d(2). The $7 \times 7$ maps then go through one more convolution and a linear layer
# to the logit. During a fade-in its input is blended the same way, with pooling where the
# generator upsampled:
#
# $$D_\alpha(x) = \mathrm{rest}\Big((1 - \alpha)\, \mathrm{from}_{\ell-1}\big(\mathrm{pool}(x)\big)
#   + \alpha\, \mathrm{block}_\ell\big(\mathrm{from}_\ell(x)\big)\Big).$$
#
# The **real images** must be at the resolution the discriminator expects: we average-pool them
# down ($28 \to 14 \to 7$). During a fade-in they are blended too, between the sharp level
# $\ell$ version and the blurred one, $(1 - \alpha)\, \mathrm{up}(\mathrm{pool}(x_\ell)) +
# \alpha\, x_\ell$, so that real and generated images change in the same way as $\alpha$ grows
# and the discriminator cannot tell them apart by their sharpness alone.

# %%
def from_rgb(channels):
    """One image channel -> feature maps: a 1 x 1 convolution and LeakyReLU(0.2)."""
    return nn.Sequential(nn.Conv2d(1, channels, 1), nn.LeakyReLU(0.2))


class ProgressiveDiscriminator(nn.Module):
    """Images (N, 1, R, R) at the current level's resolution -> one logit each (N, 1)."""

    def __init__(self, channels=CHANNELS):
        super().__init__()
        first = channels[0]
        self.from_rgb = nn.ModuleList([from_rgb(c) for c in channels])
        self.blocks = nn.ModuleList([  # block l: (channels[l], R, R) -> (channels[l-1], R/2, R/2)
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.LeakyReLU(0.2), nn.AvgPool2d(2))
            for c_out, c_in in zip(channels[:-1], channels[1:])
        ])
        self.end = nn.Sequential(  # (first, 7, 7) -> logit
            nn.Conv2d(first, first, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(first * 7 * 7, 1),
        )
        self.level, self.alpha = 0, 1.0

    def grow(self, level, alpha=1.0):
        self.level, self.alpha = level, alpha

    def forward(self, x):
        if self.level == 0:
            return self.end(self.from_rgb[0](x))
        h = self.blocks[self.level - 1](self.from_rgb[self.level](x))
        if self.alpha < 1:
            old = self.from_rgb[self.level - 1](F.avg_pool2d(x, 2))
            h = old * (1 - self.alpha) + h * self.alpha
        for block in reversed(self.blocks[:self.level - 1]):
            h = block(h)
        return self.end(h)


def real_images_at(x, level, alpha=1.0):
    """Real 28 x 28 images pooled down to the level's resolution, blended during a fade-in."""
    for _ in range(len(RESOLUTIONS) - 1 - level):
        x = F.avg_pool2d(x, 2)
    if level == 0 or alpha >= 1:
        return x
    blurred = F.upsample_nearest(F.avg_pool2d(x, 2), 2)
    return blurred * (1 - alpha) + x * alpha


def progressive_gan():
    """The two growing players in tinygen's GAN, with tinygen's default initialisation."""
    return models.GAN(ProgressiveGenerator(), ProgressiveDiscriminator(), LATENT_DIM)


def grow(gan, level, alpha=1.0):
    gan.generator.grow(level, alpha)
    gan.discriminator.grow(level, alpha)


# %% [markdown]
# We send a batch through the grown-up pair, and through the pair halfway into each fade-in,
# to see the shapes.

# %%
tg.manual_seed(0)
look = progressive_gan()
look.eval()
with tg.no_grad():
    for level, alpha in [(0, 1.0), (1, 0.5), (1, 1.0), (2, 0.5), (2, 1.0)]:
        grow(look, level, alpha)
        fakes = look.sample(8)
        logits = look.discriminator(fakes)
        print(f"level {level}, alpha {alpha:.1f}: G(z) {tuple(fakes.shape)}, "
              f"D(G(z)) {tuple(logits.shape)}, real batch "
              f"{tuple(real_images_at(digit, level, alpha).shape)}")
n_g = sum(p.data.size for p in look.generator.parameters())
n_d = sum(p.data.size for p in look.discriminator.parameters())
dcgan_look = models.dcgan(LATENT_DIM)
print(f"parameters: progressive G {n_g:,}, D {n_d:,};   DCGAN G "
      f"{sum(p.data.size for p in dcgan_look.generator.parameters()):,}, D "
      f"{sum(p.data.size for p in dcgan_look.discriminator.parameters()):,}")
del look, dcgan_look

# %% [markdown]
# ## The schedule
#
# The paper shows the discriminator 800,000 real images per phase: $4 \times 4$, then fade-in
# and stabilise phases alternating up to $1024 \times 1024$. We have a budget of seconds, not
# of images, so our phases are shares of the progressive GAN's training time (its own clock,
# counting only its training steps):
#
# | phase | level | $\alpha$ | share of the time |
# | --- | --- | --- | --- |
# | $7 \times 7$ | 0 | 1 | 10 % |
# | fade in $14 \times 14$ | 1 | $0 \to 1$ | 10 % |
# | $14 \times 14$ | 1 | 1 | 15 % |
# | fade in $28 \times 28$ | 2 | $0 \to 1$ | 15 % |
# | $28 \times 28$ | 2 | 1 | 50 % |
#
# Small images are cheap, so the early phases get through many more steps per second than the
# last ones; half the time goes to the full resolution, where the scores are measured.

# %%
PHASES = [  # (name, level, fading in?, share of the training time)
    ("7 x 7", 0, False, 0.10),
    ("fade in 14 x 14", 1, True, 0.10),
    ("14 x 14", 1, False, 0.15),
    ("fade in 28 x 28", 2, True, 0.15),
    ("28 x 28", 2, False, 0.50),
]
PHASE_ENDS = np.cumsum([share for *_, share in PHASES])


def schedule(seconds, total):
    """(phase index, level, alpha) after `seconds` of a progressive training of `total`."""
    fraction = min(seconds / total, 1.0)
    index = min(int(np.searchsorted(PHASE_ENDS, fraction, side="right")), len(PHASES) - 1)
    _, level, fading, share = PHASES[index]
    if not fading:
        return index, level, 1.0
    phase_start = PHASE_ENDS[index] - share
    return index, level, (fraction - phase_start) / share


# %% [markdown]
# ## Training both, turn by turn
#
# The comparison is at **equal training seconds**: lesson 13's DCGAN (`models.dcgan`, with the
# recipe of `tinygen train dcgan-classic`: minibatches of 64 in $[-1, 1]$, Adam with learning
# rate $8 \cdot 10^{-4}$ and $\beta = (0.5, 0.999)$, one discriminator step per generator step,
# the non-saturating generator loss, $\mathcal{N}(0, 0.02^2)$ initialisation) against the
# progressive GAN with the same loss and optimiser. ($8 \cdot 10^{-4}$ is four times the DCGAN
# paper's rate, and the best of the rates compared in lesson 11's table for the MLP GAN and in
# lesson 13's for the DCGAN.) Both use `GAN.train_step`; only the networks, their
# initialisation and the real batches differ. The progressive GAN keeps tinygen's default
# initialisation (PyTorch's), uniform with bounds $\pm 1/\sqrt{\text{fan in}}$: its from_rgb
# layers have a fan in of 1, and DCGAN's one scale of 0.02 would leave them nearly silent. (The
# paper's "equalised learning rate" also scales by the fan in, differently: it draws every
# weight from $\mathcal{N}(0, 1)$ and multiplies it at run time by He's constant
# $\sqrt{2 / \text{fan in}}$, so that Adam, whose steps do not depend on a weight's scale,
# changes every layer at the same relative speed. We do not use it.)
#
# A shared machine runs faster at some moments than at others. To let those moments fall on
# both GANs alike, they train in **alternating turns**: the progressive GAN for about 15 s,
# then the DCGAN until its clock has caught up with the progressive one, and so on. Each clock
# counts only its own training steps (not the pictures we save along the way). Before the
# clocks start, one throwaway step of each network at each resolution loads the compiled
# convolution kernels, so that no clock pays for that.

# %%
SECONDS_EACH = pick(120.0, 1.0)  # training seconds per GAN
TURN_SECONDS = pick(15.0, 0.25)
BATCH_SIZE = pick(64, 16)  # m = 64 as in DCGAN; a quick run takes smaller steps
OPTIMISER = {"lr": 8e-4, "betas": (0.5, 0.999)}  # tinygen train dcgan-classic's, for both


def endless(loader):
    """The loader's batches forever, freshly shuffled on every pass."""
    while True:
        yield from loader


class TimedTraining:
    """One GAN trained in turns, each turn until its own clock (seconds spent in training steps)
    reaches a given time. prepare(training, batch) -> the real batch for the next step."""

    def __init__(self, gan, images, prepare=None):
        self.gan = gan
        self.optimizers = models.gan_optimizers(gan, **OPTIMISER)
        loader = DataLoader(images, batch_size=BATCH_SIZE, shuffle=True, drop_last=True, seed=0)
        self.batches = endless(loader)
        self.prepare = prepare or (lambda training, batch: batch)
        self.clock = 0.0
        # a row per step: (clock at its start, seconds, loss_d, loss_g, D(x), D(G(z)))
        self.log = []

    def run_until(self, until):
        while self.clock < until:
            begin = time.perf_counter()
            clock_before = self.clock
            batch = self.prepare(self, next(self.batches))
            metrics = self.gan.train_step(batch, self.optimizers)
            seconds = time.perf_counter() - begin
            self.clock += seconds
            self.log.append((clock_before, seconds, *(float(metrics[k].data) for k in
                                                      ("loss_d", "loss_g", "d_real", "d_fake"))))


def warm_up():
    """One throwaway training step of each network at each level (compiled kernels loaded)."""
    x = tg.tensor(train_images[:8])
    gan = models.dcgan(LATENT_DIM)
    gan.train_step(x, models.gan_optimizers(gan, **OPTIMISER))
    gan = progressive_gan()
    optimizers = models.gan_optimizers(gan, **OPTIMISER)
    for level in range(len(RESOLUTIONS)):
        grow(gan, level, 0.5)
        gan.train_step(real_images_at(x, level, 0.5), optimizers)


warm_up()

# %% [markdown]
# The progressive GAN's `prepare` reads the schedule off its clock before every step, grows
# both players to that level and $\alpha$, and shrinks the real batch to match. When a level
# ends it first saves the generator's images for 36 fixed noise vectors, at the resolution it
# has just finished, for the figures below.

# %%
fixed_z = np.random.default_rng(1).standard_normal((36, LATENT_DIM)).astype(np.float32)
level_samples = {}  # resolution -> the generator's images for fixed_z when that level ended
scheduled = []  # (level, alpha) of every progressive step, for the schedule figure


def images_for_fixed_z(gan):
    """G(fixed_z) in eval mode (BatchNorm's running statistics), then back to training."""
    gan.generator.eval()
    with tg.no_grad():
        images = gan.generator(tg.tensor(fixed_z)).data
    gan.generator.train()
    return images


def prepare_progressive(training, batch):
    """Grow to the scheduled level and alpha; return the real batch at that resolution."""
    gan = training.gan
    _, level, alpha = schedule(training.clock, SECONDS_EACH)
    for finished in range(gan.generator.level, level):  # a level has just ended: its samples
        grow(gan, finished)
        level_samples[RESOLUTIONS[finished]] = images_for_fixed_z(gan)
    grow(gan, level, alpha)
    scheduled.append((level, alpha))
    return real_images_at(batch, level, alpha)


tg.manual_seed(0)
progressive = TimedTraining(progressive_gan(), train_images, prepare_progressive)
dcgan = TimedTraining(models.dcgan(LATENT_DIM), train_images)

n_turns = int(np.ceil(SECONDS_EACH / TURN_SECONDS))
print("turn   progressive: steps  phase at the end     DCGAN: steps   clocks (s)")
for turn in range(1, n_turns + 1):
    steps_before = len(progressive.log), len(dcgan.log)
    progressive.run_until(min(turn * TURN_SECONDS, SECONDS_EACH))
    dcgan.run_until(progressive.clock)  # catch up with the progressive GAN's clock
    phase = PHASES[schedule(progressive.clock, SECONDS_EACH)[0]][0]
    print(f"{turn:4d}   {len(progressive.log) - steps_before[0]:18d}  {phase:18s}"
          f"  {len(dcgan.log) - steps_before[1]:11d}   {progressive.clock:6.1f} "
          f"{dcgan.clock:6.1f}")
level_samples[RESOLUTIONS[-1]] = images_for_fixed_z(progressive.gan)
print(f"steps in {SECONDS_EACH:.0f} s each: progressive {len(progressive.log)}, "
      f"DCGAN {len(dcgan.log)}")

# %% [markdown]
# How the time was spent: the steps and the mean step time of each phase, and the losses and
# $D(x)$, $D(G(z))$ over the last 50 steps of each.

# %%
prog_log = np.array(progressive.log)
phase_of_step = np.array([schedule(t, SECONDS_EACH)[0] for t in prog_log[:, 0]])
print("phase               steps   s/step   loss_D  loss_G   D(x)  D(G(z))  (last 50 steps)")
for index, (name, *_) in enumerate(PHASES):
    rows = prog_log[phase_of_step == index]
    if len(rows) == 0:
        print(f"{name:18s}  {0:5d}")
        continue
    last = rows[-50:, 2:].mean(axis=0)
    print(f"{name:18s}  {len(rows):5d}   {rows[:, 1].mean():6.3f}   {last[0]:6.3f}  "
          f"{last[1]:6.3f}  {last[2]:5.3f}  {last[3]:6.3f}")
dc_log = np.array(dcgan.log)
last = dc_log[-50:, 2:].mean(axis=0)
print(f"{'DCGAN (28 x 28)':18s}  {len(dc_log):5d}   {dc_log[:, 1].mean():6.3f}   "
      f"{last[0]:6.3f}  {last[1]:6.3f}  {last[2]:5.3f}  {last[3]:6.3f}")

# %% [markdown]
# ## The schedule as it ran
#
# $\alpha$ of every step against the progressive GAN's clock, with the phases shaded, and the
# number of steps each phase got.

# %%
levels = np.array(scheduled, dtype=float)
fig = plot.new_figure(width=9, height=3.6)
ax = fig.add_subplot()
phase_starts = np.concatenate([[0.0], PHASE_ENDS[:-1]]) * SECONDS_EACH
shades = ["#dde8f5", "#f5e6d0", "#dde8f5", "#f5e6d0", "#dde8f5"]
for index, (name, level, fading, _) in enumerate(PHASES):
    start, end = phase_starts[index], PHASE_ENDS[index] * SECONDS_EACH
    ax.axvspan(start, end, color=shades[index], zorder=0)
    count = int(np.sum(phase_of_step == index))
    ax.text((start + end) / 2, 1.12, f"{name}\n{count} steps", ha="center", va="bottom",
            fontsize=8)
ax.plot(prog_log[:, 0], levels[:, 1], color="black", lw=1.5, label=r"$\alpha$ (newest block)")
ax.step(prog_log[:, 0], levels[:, 0] / 2, where="post", color="tab:red", lw=1, ls="--",
        label="level / 2 (0: 7 x 7, 0.5: 14 x 14, 1: 28 x 28)")
ax.set_xlim(0, SECONDS_EACH)
ax.set_ylim(-0.05, 1.45)
ax.set_yticks([0, 0.5, 1])
ax.set_xlabel("progressive GAN's training clock (s)")
ax.set_ylabel(r"$\alpha$")
ax.legend(loc="center right", fontsize=8)
plot.save(fig, figure("12_alpha_schedule.png"))

# %% [markdown]
# ## What each resolution learnt
#
# Top row: real digits average-pooled to $7 \times 7$, $14 \times 14$ and $28 \times 28$.
# Bottom row: the generator's images for the same 36 noise vectors at the end of each level
# (after its stabilise phase). Each picture is drawn at the same size, so a $7 \times 7$ pixel
# is a big square.

# %%
def tiles_6x6(images):
    """36 images (36, 1, R, R) as one (6 (R + 2), 6 (R + 2)) picture with white borders."""
    side = images.shape[-1]
    tiles = np.pad(images[:36, 0].reshape(6, 6, side, side), ((0, 0), (0, 0), (1, 1), (1, 1)),
                   constant_values=1)
    return tiles.transpose(0, 2, 1, 3).reshape(6 * (side + 2), 6 * (side + 2))


real_36 = tg.tensor(train_images[:36])
fig = plot.new_figure(width=10.5, height=7.2)
axes = fig.subplots(2, 3)
for column, (level, resolution) in enumerate(zip(range(3), RESOLUTIONS)):
    real = real_images_at(real_36, level).data
    for ax, images, title in [(axes[0, column], real, f"real, pooled to {resolution} x "
                               f"{resolution}"),
                              (axes[1, column], level_samples[resolution],
                               f"generated at {resolution} x {resolution}")]:
        ax.imshow(tiles_6x6(images), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
plot.save(fig, figure("12_samples_by_resolution.png"))

# %% [markdown]
# ## The fade-in, frozen
#
# The trained generator still has its $14 \times 14$ to_rgb, so we can replay the last
# fade-in: the same six noise vectors at $\alpha = 0, 0.25, 0.5, 0.75, 1$. The columns are
# the formula at work, $(1 - \alpha)$ of the old path plus $\alpha$ of the new one. The
# $14 \times 14$ to_rgb stopped learning when the fade ended, while the layers under it went on
# training for the $28 \times 28$ images, so nothing keeps the old path drawing digits. In our
# full run it still drew: the $\alpha = 0$ column shows the strokes of the $\alpha = 1$ column
# in blocks of $2 \times 2$ pixels and dimmer, and as $\alpha$ rises the new path sharpens and
# brightens them. (During the fade itself the two paths were trained together.)

# %%
alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
fade_rows = []
progressive.gan.generator.eval()
with tg.no_grad():
    for alpha in alphas:
        progressive.gan.generator.grow(2, alpha)
        fade_rows.append(progressive.gan.generator(tg.tensor(fixed_z[:6])).data)
progressive.gan.generator.grow(2, 1.0)
fade = np.stack(fade_rows, axis=1).reshape(-1, 1, 28, 28)  # row: one z, columns: the alphas
plot.image_grid(fade, figure("12_fade_in.png"), nrow=len(alphas), value_range=(-1, 1),
                titles=[f"alpha {a:g}" for a in alphas] + [""] * (len(fade) - len(alphas)))

# %% [markdown]
# ## Scores: progressive GAN against DCGAN, at equal seconds
#
# The FID of lesson 09 and the MNIST score of lesson 11, with the shipped classifier (lower FID
# is better; the MNIST score runs from 1 to 10, higher is better), for the same number of
# generated digits from each GAN, against the test digits, beside the real-vs-real floor for
# that number of images.

# %%
n_scored = pick(5000, 100)
test_unit, _ = mnist("test", n=pick(None, 500))


def generated_digits(gan, n):
    """n samples of the generator in eval mode, a few hundred at a time."""
    gan.eval()
    batch = min(500, n)
    return np.concatenate([gan.sample(batch).data for _ in range(n // batch)])


def real_vs_real(n):
    """mc.real_floor(n), or the same two numbers on the bundled subset in a quick run."""
    if QUICK:
        return {"fid": mc.fid(train_unit[:n], test_unit), "mnist_score": mc.mnist_score(test_unit)}
    return mc.real_floor(n)


scores = {}
for name, training in [("progressive", progressive), ("DCGAN", dcgan)]:
    images = generated_digits(training.gan, n_scored)
    scores[name] = {
        "images": images,
        "fid": mc.fid(images, test_unit, value_range=(-1, 1), value_range_b=(0, 1)),
        "score": mc.mnist_score(images, value_range=(-1, 1))[0],
        "counts": np.bincount(mc.predict(images, value_range=(-1, 1)), minlength=10),
        "steps": len(training.log),
    }
floor = real_vs_real(n_scored)
print(f"{n_scored} images each against the {len(test_unit)} test digits, "
      f"after {SECONDS_EACH:.0f} s of training each")
print("               steps     FID   MNIST score   digits per class (classifier's reading)")
for name, s in scores.items():
    print(f"{name:12s}  {s['steps']:6d}  {s['fid']:6.1f}   {s['score']:6.2f}       "
          f"{s['counts'].tolist()}")
print(f"{'real digits':12s}  {'':6s}  {floor['fid']:6.1f}   {floor['mnist_score'][0]:6.2f}")

# %%
fig = plot.new_figure(width=10, height=5.8)  # tall enough for the two-line titles
axes = fig.subplots(1, 2)
for ax, (name, s) in zip(axes, scores.items()):
    ax.imshow(tiles_6x6(s["images"]), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(f"{name}: {s['steps']} steps in {SECONDS_EACH:.0f} s\nFID {s['fid']:.0f}, "
                 f"MNIST score {s['score']:.2f}", fontsize=10)
    ax.set_axis_off()
plot.save(fig, figure("12_progressive_vs_dcgan.png"))

# %% [markdown]
# What our full run measured (each GAN trained 120 s, on a 2-core machine that other work kept
# busy: a DCGAN step took 0.30 s there, against about 0.18 s on a quiet one): **the DCGAN
# won.** Its FID was 559 against 823 for the progressive GAN (the real-vs-real floor: 7.8),
# and its MNIST score 4.75 against 4.30 (real digits: 9.76).
#
# Where the time went explains part of it. The small images were cheap, as promised: 285 steps
# at $7 \times 7$ took 0.042 s each, and the $14 \times 14$ steps 0.17 to 0.20 s, against
# 0.30 s for a DCGAN step. But the progressive GAN's $28 \times 28$ steps took 0.38 s (0.46 s
# during the fade-in, which runs both paths), more than a DCGAN step: its stride-1 convolutions
# on full-size $28 \times 28$ maps run slower on this CPU than the DCGAN's strided
# $4 \times 4$ ones, whose work is mostly on $14 \times 14$ and $7 \times 7$ maps, even with a
# quarter of the channels. So it took 643 steps in all against the DCGAN's 404, but only 196
# of them at $28 \times 28$.
#
# The pictures show the rest. At $14 \times 14$ the progressive GAN drew strokes, some of them
# parts of digits (`12_samples_by_resolution.png`). Fading in $28 \times 28$ with its untrained
# block let the discriminator pull ahead for a while: over the 39 steps of that fade-in $D(x)$
# was 0.61 and $D(G(z))$ 0.42 on average, against about 0.51 and 0.49 at the end of the earlier
# phases. By the end of the run they were back to 0.52 and 0.48, and the generator drew thin
# strokes and pieces of digits more often than whole ones; the classifier reads most of them as
# 3, 7 or 2 (1,325, 899 and 703 of the 5,000) and few as 6, 8 or 9. The paper shows each new block
# 800,000 images during its fade-in; ours saw 39 steps of 64, about 2,500. Progressive growing
# pays off when the budget is long enough for every phase to settle and the full resolution is
# expensive; two minutes on MNIST is neither, and this run did not show it (exercises 1 and
# 3 change that).

# %% [markdown]
# ## Celebrities and bedrooms
#
# The slide that goes with this paper in the notes shows the pictures that made GANs famous.
# The **celebrities** are faces that belong to no one, generated at $1024 \times 1024$ by
# progressive growing. Karras et al. trained on **CelebA-HQ**, 30,000 photographs of celebrities
# that they cleaned up and enlarged from the CelebA dataset for the purpose; their generator
# grows from $4 \times 4$ to $1024 \times 1024$, eight doublings, each phase shown 800,000 real
# images, and the face network trained for 4 days on 8 NVIDIA Tesla V100 GPUs. The
# **bedrooms** come from LSUN, a collection of millions of photographs of scenes: the DCGAN
# paper (Radford et al. 2016, lesson 13) trained on its roughly 3 million bedrooms at
# $64 \times 64$, and the progressive GAN at $256 \times 256$.
#
# Three things made them possible. **Large datasets** of one kind of picture (faces, rooms).
# **GPUs**, and days of them: a step of these networks is billions of multiply-adds, and
# millions of images go past the discriminator. And the **architectural ideas** of lessons 13
# and this one: strided and transposed ("fractional-strided") convolutions instead of fully
# connected layers, batch normalisation to keep both players' activations on scale, and
# progressive growing to learn a large image one scale at a time (the paper adds more: a
# normalisation of every pixel's feature vector in the generator, a per-layer rescaling of the
# weights, a summary of the batch's variety given to the discriminator, and the WGAN-GP loss).
#
# None of that fits in this course's budget: a laptop CPU and a few minutes per lesson. MNIST
# stands in because its images are small ($28 \times 28$, one channel: 784 numbers, about
# 4,000 times fewer than the $1024 \cdot 1024 \cdot 3 \approx 3.1$ million of one colour face),
# its 60,000 digits load in a second, and a GAN learns to draw them in minutes on a CPU. The
# ideas carry over unchanged; only the resolution, the data and the hardware are scaled down.

# %%
print(f"elapsed {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Try this
#
# 1. **A longer race.** Set `SECONDS_EACH = 300` (and wait about 12 minutes): does the gap
#    between the two FIDs grow, shrink or turn around when both GANs have trained longer?
# 2. **No fade-in.** In `PHASES`, give both fade-in phases a share of 0.001 and add the time
#    to the stabilise phases that follow: each new block is then switched on at once. Watch
#    $D(G(z))$ in the first steps after each growth, and the samples at $14 \times 14$.
# 3. **Other shares.** Spend more time at low resolution (e.g. 0.2, 0.1, 0.2, 0.1, 0.4) or
#    almost none (0.02, 0.02, 0.02, 0.04, 0.9): is the coarse layout learnt at $7 \times 7$
#    worth its seconds?
# 4. **Pooling against strided convolutions.** Replace `nn.AvgPool2d(2)` in the discriminator
#    blocks by a stride-2 $4 \times 4$ convolution (`nn.Conv2d(c_in, c_out, 4, 2, 1)`, without
#    the $3 \times 3$ one) and `nn.Upsample` + $3 \times 3$ convolution in the generator by
#    `nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)`, as in the DCGAN: what changes in speed and in
#    the scores?
# 5. **DCGAN's initialisation.** In `progressive_gan`, add `gan.apply(models.dcgan_init)` before
#    returning: watch $D(x)$, $D(G(z))$ after the first growth and the $14 \times 14$ samples.
# 6. **Pixel normalisation.** The paper's generator has no batch norm; after every
#    convolution it divides each pixel's feature vector by its root mean square,
#    `h / ((h * h).mean(axis=1, keepdims=True) + 1e-8).sqrt()`. Write it as a module, put it
#    in place of `nn.BatchNorm2d` in the generator's blocks, and compare.
