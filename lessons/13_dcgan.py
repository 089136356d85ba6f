# %% [markdown]
# # 13: Deep convolutional GANs (DCGAN)
#
# The GAN of lesson 11 drew digits with fully connected layers: every output pixel had its own
# weights, and nothing told the network that a stroke looks the same wherever it is drawn.
# **DCGAN** (Radford, Metz and Chintala, 2016) keeps the adversarial game and changes the
# players: both are convolutional networks. The discriminator shrinks an image with strided
# convolutions, as an image classifier does; the generator runs the other way, growing a small
# stack of feature maps into an image with **fractional-strided (transposed) convolutions**.
# With a few rules about batch normalisation and activations, this made GAN training stable
# enough to be routine.
#
# We first take a transposed convolution apart on a 2 x 2 example, then build the MNIST DCGAN of
# tinygen, look at the shape of every layer and at its initialisation, train it for about 1,500
# steps on MNIST, and judge the samples three ways: by eye, by the FID and MNIST score, and by a
# quiz: *which one is computer-generated?* Then we give it more capacity, once keeping the
# notes' rule against fully connected hidden layers and once breaking it, and measure which
# way MNIST rewards: the network `tinygen train dcgan` now trains comes out of that comparison.
#
# Runs in about 14 minutes on a 2-core CPU (full, with the numba backend, measured with nothing
# else running: three networks of about 4.3 minutes each, then their scores);
# `TINYGEN_QUICK=1` runs it in about 30 s.

# %%
import itertools
import tempfile
import time

import numpy as np
from matplotlib.image import imread
from matplotlib.patches import Rectangle

import tinygen as tg
from tinygen import mnist_classifier as mc
from tinygen import models, nn, plot
from tinygen.data import DataLoader
from tinygen.nn import functional as F
from tinygen.nn.spectral_norm import power_iteration, weight_matrix
from tinygen.train import fit

from course import QUICK, figure, mnist, pick

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The key ideas
#
# The course notes list the key ideas of a DCGAN, and spell them out only for the generator:
#
# - replace the fully connected hidden layers with **convolutions**; in the generator,
#   **fractional-strided convolutions** (they double the image);
# - use **batch normalisation** after each layer, which keeps the activations on a sensible
#   scale while the two networks chase each other;
# - inside the generator, **ReLU** for the hidden layers and **Tanh** for the output, so that
#   images come out in $[-1, 1]$ (we scale MNIST to $[-1, 1]$ to match).
#
# The discriminator's rules come from the DCGAN paper (Radford et al., 2016), whose guidelines
# also put batch normalisation in both networks:
#
# - **strided convolutions** instead of pooling (they halve the image);
# - **LeakyReLU** after the convolutions (slope 0.2 for negative inputs), so that some gradient
#   flows back to the generator even through units that are "off".
#
# The game itself is lesson 11's: $D$ ascends $\log D(x) + \log(1 - D(G(z)))$, and $G$ takes
# the non-saturating step, ascending $\log D(G(z))$.
#
# ## A fractional-strided convolution, by hand
#
# An ordinary convolution with stride $s$ slides its $k \times k$ kernel $s$ pixels at a time,
# so the output is about $s$ times smaller. A **transposed convolution** with stride $s$ does
# the opposite: each *input* pixel stamps a copy of the kernel, scaled by its value, onto the
# output, and the stamps of neighbouring input pixels are placed $s$ output pixels apart
# (overlapping stamps add up). Moving one pixel in the input moves $s$ pixels in the output: the
# stride, seen from the output, is $1/s$, hence "fractional-strided". Its output height is
#
# $$H_\text{out} = (H - 1)\, s - 2p + k + \text{output\_padding},$$
#
# where $p$ (padding) crops $p$ pixels off every border of the stamped picture and
# output_padding adds rows at the bottom (and columns at the right) when a size needs them.
#
# We try it on a $2 \times 2$ input with the setting of the DCGAN generator: $k = 4$, $s = 2$,
# $p = 1$, so $H_\text{out} = (2 - 1) \cdot 2 - 2 + 4 = 4$: the image doubles. Small integers
# make the output checkable on paper.

# %%
x_small = np.array([[1.0, 2.0],
                    [3.0, 4.0]])
kernel = np.arange(1.0, 17.0).reshape(4, 4)  # 1 .. 16, not symmetric: a flip would show

upsample = nn.ConvTranspose2d(1, 1, kernel_size=4, stride=2, padding=1, bias=False)
upsample.weight.data[...] = kernel  # weight (in_channels, out_channels, 4, 4)
x_tensor = tg.tensor(x_small.reshape(1, 1, 2, 2))  # (N, C, H, W)
with tg.no_grad():
    y_transposed = upsample(x_tensor).data[0, 0]
print("input", x_small.shape, "-> ConvTranspose2d(1, 1, 4, stride=2, padding=1) ->",
      y_transposed.shape)
print(y_transposed)

# %% [markdown]
# ### The same thing: insert zeros, then an ordinary convolution
#
# A transposed convolution can be computed with an ordinary one:
#
# 1. put $s - 1$ zeros between neighbouring input pixels: $2 \times 2 \to 3 \times 3$
#    (in general $(H - 1)s + 1$);
# 2. pad with $k - 1 - p$ zeros on every side (and output_padding more at the bottom and
#    right): here $2$, so $3 \times 3 \to 7 \times 7$;
# 3. convolve with stride 1 and the kernel **rotated by 180°**: $7 - 4 + 1 = 4$.
#
# Adding it up, $(H - 1)s + 1 + 2(k - 1 - p) + \text{output\_padding} - k + 1$ is the formula
# above. The rotation is there because a stamp places the kernel's top-left weight at the
# top-left of its footprint, while a convolution reading a window multiplies the window's
# top-left pixel by the kernel's top-left weight; seen from an output pixel, the input pixel up
# and to the left of it was stamped with the kernel's *bottom-right* part.

# %%
stride, padding, k = 2, 1, 4
height = x_small.shape[0]

# 1. zeros between the pixels: input pixel (i, j) goes to (s i, s j)
spread = np.zeros(((height - 1) * stride + 1,) * 2)
spread[::stride, ::stride] = x_small
# 2. a border of k - 1 - p zeros
border = k - 1 - padding
spread_padded = np.pad(spread, border)
# 3. an ordinary stride-1 convolution (tinygen's conv2d) with the kernel turned by 180 degrees
kernel_rotated = kernel[::-1, ::-1].copy()
y_by_zeros = F.conv2d(tg.tensor(spread_padded.reshape(1, 1, *spread_padded.shape)),
                      tg.tensor(kernel_rotated.reshape(1, 1, k, k)), stride=1).data[0, 0]

print("zeros inserted:\n", spread, "\npadded to", spread_padded.shape)
print("ordinary convolution of the padded picture:\n", y_by_zeros)
print("largest difference from ConvTranspose2d:", np.abs(y_by_zeros - y_transposed).max())
assert np.allclose(y_by_zeros, y_transposed)

# %% [markdown]
# ### Why "transposed"
#
# A convolution is a linear map, so it is a matrix $C$: the stride-2 convolution with the same
# kernel (the discriminator's kind of layer) takes a $4 \times 4$ image to $2 \times 2$, so
# $C$ is $4 \times 16$. The transposed convolution is, literally, multiplication by $C^\top$
# ($16 \times 4$): it maps the $2 \times 2$ picture back to $4 \times 4$. (It is *not* the
# inverse: $C^\top C x \neq x$. It only gets the shapes and the connections back.) We build
# $C$ column by column, by convolving each of the 16 one-pixel images.

# %%
conv_matrix = np.zeros((4, 16))  # C: 16 input pixels -> 4 output pixels
for pixel in range(16):
    one_hot = np.zeros((1, 1, 4, 4))
    one_hot.flat[pixel] = 1.0
    column = F.conv2d(tg.tensor(one_hot), tg.tensor(kernel.reshape(1, 1, 4, 4)),
                      stride=2, padding=1)
    conv_matrix[:, pixel] = column.data.ravel()

y_by_matrix = (conv_matrix.T @ x_small.ravel()).reshape(4, 4)
print("C^T x, reshaped to 4 x 4, equals ConvTranspose2d's output:",
      np.allclose(y_by_matrix, y_transposed))

# %% [markdown]
# The picture of the worked example: the input, its zero-inserted and padded version, the
# rotated kernel the ordinary convolution slides over it, and the $4 \times 4$ output. The
# first window and the output pixel it makes are outlined in red.

# %%
def show_numbers(ax, values, title, highlight=None):
    """A small matrix as coloured cells with its numbers written in; highlight: (top, left,
    size) of a square window to outline in red."""
    darkest = max(values.max(), 1.0)
    ax.imshow(values, cmap="Blues", vmin=0, vmax=darkest)
    for (row, col), value in np.ndenumerate(values):
        colour = "white" if value > 0.6 * darkest else "black"
        ax.text(col, row, f"{value:g}", ha="center", va="center", fontsize=9, color=colour)
    if highlight is not None:
        top, left, size = highlight
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), size, size,
                               fill=False, edgecolor="red", linewidth=2.5))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


# width ratios = matrix widths, so that every cell is drawn the same size
fig = plot.new_figure(width=12, height=4.6)
axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [2, 7, 4, 4]})
show_numbers(axes[0], x_small, "input 2 x 2")
show_numbers(axes[1], spread_padded, "zeros between the pixels,\npadded by k - 1 - p = 2",
             highlight=(0, 0, 4))
show_numbers(axes[2], kernel_rotated, "kernel turned 180°, slid over it\n(stride 1): "
             "first window 1 x 6 = 6")
show_numbers(axes[3], y_transposed, "output 4 x 4\n= ConvTranspose2d(k 4, s 2, p 1)",
             highlight=(0, 0, 1))
plot.save(fig, figure("13_transposed_conv.png"))

# %% [markdown]
# ### The output-size formula at work
#
# The generator uses the setting $k = 4, s = 2, p = 1$ twice: $7 \to (7 - 1) 2 - 2 + 4 = 14$,
# then $14 \to 28$. Other settings double an image too ($k = 2, s = 2, p = 0$: stamps side by
# side, no overlap; $k = 3, s = 2, p = 1$ with output_padding 1), and $s = 1$ keeps the size
# when $p = (k - 1) / 2$. We check the formula against tinygen's layer.

# %%
def transposed_size(h, kernel_size, stride, padding, output_padding=0):
    """(H - 1) s - 2 p + k + output_padding."""
    return (h - 1) * stride - 2 * padding + kernel_size + output_padding


settings = [(7, 4, 2, 1, 0), (14, 4, 2, 1, 0), (7, 2, 2, 0, 0), (7, 3, 2, 1, 1), (7, 3, 1, 1, 0)]
print(" H   k  s  p  out_pad  formula  ConvTranspose2d")
for h, kernel_size, s, p, out_pad in settings:
    layer = nn.ConvTranspose2d(1, 1, kernel_size, s, p, output_padding=out_pad)
    with tg.no_grad():
        measured = layer(tg.zeros(1, 1, h, h)).shape[2]
    predicted = transposed_size(h, kernel_size, s, p, out_pad)
    print(f"{h:2d}  {kernel_size:2d} {s:2d} {p:2d}  {out_pad:4d}     "
          f"{predicted:4d}     {measured:4d}")
    assert predicted == measured

# %% [markdown]
# ## The MNIST DCGAN
#
# tinygen's `models.dcgan(latent_dim=100)` builds the two players for $28 \times 28$ digits:
#
# - **generator**: $z \in \mathbb{R}^{100}$, $z \sim \mathcal{N}(0, I)$ $\to$ Linear to
#   $128 \cdot 7 \cdot 7$ + BatchNorm + ReLU $\to$ reshape to 128 maps of $7 \times 7$ $\to$
#   ConvTranspose(128 → 64, $k$ 4, $s$ 2, $p$ 1) + BatchNorm + ReLU: $14 \times 14$ $\to$
#   ConvTranspose(64 → 1) + Tanh: $28 \times 28$ in $[-1, 1]$.
# - **discriminator**: the mirror image: Conv(1 → 64, $k$ 4, $s$ 2, $p$ 1) + LeakyReLU:
#   $14 \times 14$ $\to$ Conv(64 → 128) + BatchNorm + LeakyReLU: $7 \times 7$ $\to$ flatten
#   $\to$ Linear to one logit. (As in the paper, no batch norm on the discriminator's input
#   layer or the generator's output layer.)
#
# The one fully connected layer left in the generator only projects $z$ to the first stack of
# feature maps (the paper does the same). We send one batch of 64 through both, layer by layer.

# %%
latent_dim = 100
gan = models.dcgan(latent_dim)
initial_weights = gan.state_dict()  # kept: the paper's recipe starts from them too, later
gan.eval()  # for this look only: batch norm uses (and leaves) its running statistics


def print_shapes(network, x, name):
    """Send x through a Sequential one layer at a time and print each output's shape."""
    print(f"{name}: input {tuple(x.shape)}")
    with tg.no_grad():
        for layer in network:
            x = layer(x)
            print(f"    {type(layer).__name__:16s} -> {tuple(x.shape)}")
    n_weights = sum(p.data.size for p in network.parameters())
    print(f"    {n_weights:,} parameters")
    return x


fake_batch = print_shapes(gan.generator, gan.sample_prior(64), "generator")
_ = print_shapes(gan.discriminator, fake_batch, "discriminator")

# %% [markdown]
# ## Initialisation: $\mathcal{N}(0, 0.02^2)$
#
# The DCGAN paper initialises every weight from a normal distribution with mean 0 and standard
# deviation 0.02, and says nothing more about initialisation. The rest of `models.dcgan_init`
# follows PyTorch's DCGAN example (`weights_init` in pytorch/examples, `dcgan/main.py`):
# batch-norm scales from $\mathcal{N}(1, 0.02^2)$ and batch-norm shifts 0; tinygen also sets the
# biases of the convolutions and linear layers to 0 (the example's convolutions have none).
# `models.dcgan` applies it with `gan.apply(models.dcgan_init)`. tinygen's default
# initialisation (PyTorch's) is instead uniform with standard deviation
# $1 / \sqrt{3 \cdot \text{fan in}}$, which depends on the layer: here from 0.018 for the
# middle layer to 0.14, seven times 0.02, for the output layer, whose fan in is only
# $1 \cdot 4 \cdot 4$. DCGAN's one small scale everywhere starts both players gentle and
# alike, with small outputs and small gradients.

# %%
default_generator = models.dcgan_generator(latent_dim)  # tinygen's default initialisation
print("weight standard deviation   default   DCGAN init")
for (name, default_w), (_, dcgan_w) in zip(default_generator.named_parameters(),
                                          gan.generator.named_parameters()):
    if name.endswith("weight") and dcgan_w.data.ndim > 1:  # linear and conv weights
        print(f"    generator.{name:10s}      {default_w.data.std():.4f}    "
              f"{dcgan_w.data.std():.4f}")
for name, w in gan.discriminator.named_parameters():
    if name.endswith("weight") and w.data.ndim > 1:
        print(f"    discriminator.{name:6s}     (DCGAN)   {w.data.std():.4f}")

# %% [markdown]
# ## Training on MNIST
#
# The recipe of the paper: minibatches of $m = 64$ images scaled to $[-1, 1]$, shape
# $(N, 1, 28, 28)$; Adam with learning rate $2 \cdot 10^{-4}$ and $\beta_1 = 0.5$ instead of 0.9
# (a shorter memory of past gradients suits a target that keeps moving), $\beta_2 = 0.999$;
# $k = 1$ discriminator step per generator step. We change one thing, as
# `tinygen train dcgan-classic` does: a learning rate four times larger, $8 \cdot 10^{-4}$ for
# both players, the one change that measured well in the ablation further down ("A better
# recipe, measured").
#
# One step takes 0.12 to 0.17 s on a 2-core CPU with the numba backend (the CPU default;
# NumPy's kernels take about 1.9 times as long), so the full run stops after **1,500
# steps** (about 1.6 passes over the 60,000 digits, 3 to 4.5 minutes of training): noise becomes
# strokes within a few hundred steps, and the strokes are mostly digits by 1,000.
#
# `train.fit` runs the steps. It calls one pass over its loader an epoch; we hand it
# **rounds** instead (the next 50, 150, 300, ... batches of an endless shuffled stream),
# so that its `on_epoch_end` hook, `gan.sample_watcher(plot.epoch_grids(folder))`, draws the
# generator's images for the *same* 36 noise vectors after each round and saves them: the same
# $z$ every time, so the pictures show the generator changing, not the noise.

# %%
train_unit, _ = mnist("train", n=pick(None, 512))
train_images = (train_unit * 2 - 1).reshape(-1, 1, 28, 28)  # [0, 1] -> [-1, 1], (N, 1, 28, 28)
print(f"training images {train_images.shape}, pixels in "
      f"[{train_images.min():g}, {train_images.max():g}]")

round_ends = pick([50, 200, 500, 1000, 1500], [1, 2, 3, 4, 5])  # steps done after each round
round_lengths = np.diff([0] + round_ends)


def endless(loader):
    """The loader's batches forever, freshly shuffled on every pass."""
    while True:
        yield from loader


class Rounds:
    """What fit sees as its loader: pass number r yields the next round_lengths[r] batches."""

    def __init__(self, batches, round_lengths):
        self.batches = batches
        self.round_lengths = list(round_lengths)
        self.rounds_done = 0

    def __iter__(self):  # a generator: nothing happens until fit asks for the first batch
        length = self.round_lengths[self.rounds_done]
        self.rounds_done += 1
        yield from itertools.islice(self.batches, length)


batch_size = pick(64, 16)  # m = 64 as in the paper; a quick run takes smaller steps
loader = DataLoader(train_images, batch_size=batch_size, shuffle=True, drop_last=True, seed=0)
LR = 8e-4  # the paper's 2e-4 times four: see "A better recipe, measured"
optimizers = models.gan_optimizers(gan, lr=LR, betas=(0.5, 0.999))

# %%
snapshot_folder = tempfile.TemporaryDirectory()  # the saver's one-PNG-per-round files
snapshots = plot.epoch_grids(snapshot_folder.name)
watch = gan.sample_watcher(snapshots, n=36, seed=0)
watch(0)  # the untrained generator: samples_epoch_000.png

train_started = time.perf_counter()
history = fit(gan, Rounds(endless(loader), round_lengths), optimizers, epochs=len(round_ends),
              progress=False, on_epoch_end=watch)
train_seconds = time.perf_counter() - train_started

print("round   steps   loss_D   loss_G    D(x)   D(G(z))   seconds   (means over the round)")
for r, end in enumerate(round_ends):
    print(f"{r + 1:4d}   {end:5d}   {history['loss_d'][r]:6.3f}   {history['loss_g'][r]:6.3f}"
          f"   {history['d_real'][r]:5.3f}   {history['d_fake'][r]:6.3f}"
          f"    {history['seconds'][r]:6.1f}")
print(f"{round_ends[-1]} steps in {train_seconds:.0f} s "
      f"({train_seconds / round_ends[-1]:.3f} s per step)")

# %% [markdown]
# Neither loss goes to zero, and that is the point: a GAN's losses measure the players against
# each other, not the images against a target. $D(x)$ and $D(G(z))$ (the discriminator's mean
# probability "real" on real and on generated digits) stay apart but neither player wins
# outright. The pictures are the better judge: the saver's grids, one per round, side by side.

# %%
fig = plot.new_figure(width=10.5, height=7.4)
axes = fig.subplots(2, 3)
for ax, path, steps in zip(axes.ravel(), snapshots.paths, [0] + round_ends):
    ax.imshow(imread(path))
    ax.set_title(f"after {steps} steps", fontsize=10)
    ax.set_axis_off()
plot.save(fig, figure("13_samples_over_training.png"))
snapshot_folder.cleanup()

# %% [markdown]
# ## How good are the digits? FID and MNIST score
#
# The two scores of the earlier lessons, both computed from the small CNN that ships trained
# with tinygen (`tinygen.mnist_classifier`): the **FID** defined in lesson 09, the Fréchet
# distance between Gaussians fitted to the classifier's 128 features of generated and of real
# digits (lower is better; it sees both quality and variety), and the **MNIST score** defined
# in lesson 11, $\exp\big(\mathbb{E}_x\, \mathrm{KL}(p(y \mid x) \,\|\, p(y))\big)$ from 1 to 10
# (higher is better: each digit read confidently, all ten digits present).
#
# The FID of a finite sample is biased upward, so we never read it against 0 but against
# `real_floor`: real training digits scored against the test digits **with the same number of
# images** as the generated set. We also count the generated digits that the classifier reads
# with less than 90 % confidence (its largest $p(y \mid x)$ below 0.9), beside the same share
# of the test digits.

# %%
n_scored = pick(5000, 100)
test_unit, _ = mnist("test", n=pick(None, 500))
gan.eval()  # sample with batch norm's running statistics, as the saver did
batch = min(500, n_scored)  # sampled in batches, a few hundred at a time
generated = np.concatenate([gan.sample(batch).data for _ in range(n_scored // batch)])


def real_vs_real(n):
    """mc.real_floor(n): n training digits against the test digits, and the test digits' score.
    A quick run has only the bundled subset, which real_floor cannot be pointed at (it would look
    for, or download, the full MNIST), so there the same two numbers are computed directly."""
    if QUICK:
        return {"fid": mc.fid(train_unit[:n], test_unit), "mnist_score": mc.mnist_score(test_unit)}
    return mc.real_floor(n)


generated_features, generated_probs = mc.classify(generated, value_range=(-1, 1))
test_features, test_probs = mc.classify(test_unit)  # one pass each: features and p(y|x)
fid_generated = mc.fid_from_features(generated_features, test_features)
score_generated = mc.mnist_score_from_probs(generated_probs)
floor = real_vs_real(n_scored)
digit_counts = mc.class_counts(generated_probs)
UNSURE = 0.9  # a digit is read unsurely when the classifier's largest p(y|x) is below this
unsure_generated = float(np.mean(generated_probs.max(axis=1) < UNSURE))
unsure_test = float(np.mean(test_probs.max(axis=1) < UNSURE))

print(f"{n_scored} images against the {len(test_unit)} test digits")
print(f"    FID           DCGAN {fid_generated:7.1f}    real digits {floor['fid']:6.1f}")
print(f"    MNIST score   DCGAN {score_generated[0]:7.2f}    real digits "
      f"{floor['mnist_score'][0]:6.2f}   (1 .. 10)")
print(f"    read with less than {UNSURE:.0%} confidence: DCGAN {unsure_generated:.1%}, "
      f"test digits {unsure_test:.1%}")
print("generated digits per class (the classifier's reading):", digit_counts.tolist())

# %% [markdown]
# Read against the floor, the numbers say what the pictures do. In our full run (1,500 steps at
# the recipe's learning rate) the FID was 269 against a floor of 7.8, and the MNIST score 6.76
# against 9.76 for real test digits (at the paper's $2 \cdot 10^{-4}$ the same run gives 472
# and 5.43: the next section trains it beside this one, so you can check it). The generator
# draws clean strokes that are mostly digits, and all ten classes appear, but many digits are
# broken or ambiguous: the classifier's $p(y \mid x)$ is then spread out, which pulls the MNIST
# score down. The classifier gave its top digit less than 90 % of the probability for 36 % of
# the generated digits, against 1.9 % of the test digits. And the classes are far from one
# tenth each: 5.6 % ones and 4.8 % fours, against 16.6 % zeros and 13.4 % nines. The FID sees
# that as a shifted mean and a distorted covariance. 1,500 steps is a short training for a GAN:
# exercise 1
# lets you see how far longer training brings both numbers towards the floor.

# %% [markdown]
# ## A better recipe, measured
#
# The paper's settings were tuned on larger images and longer runs. Which of the well-known
# tricks make better digits *in the few minutes a student waits*? Each one below is a switch in
# tinygen, tested against a reference, and off by default unless it measured well:
#
# - **A larger learning rate**, `models.gan_optimizers(gan, lr=8e-4)`. Adam moves each weight
#   by $\eta\, \hat m / (\sqrt{\hat v} + \epsilon)$, where $\hat m$ and $\hat v$ are running
#   means of the weight's gradient $g$ and of $g^2$ (with weights $1 - \beta_1$ and
#   $1 - \beta_2$ for the newest gradient, and bias-corrected). While the gradient keeps a
#   steady scale, $|\hat m|$ is at most about $\sqrt{\hat v}$ (a mean is no larger than a root
#   mean square), so the step is of the order of $\eta$ (less when the gradient's sign keeps
#   flipping), whatever the gradient's scale: $\eta$ sets how far each player moves per step.
#   That is no hard limit, though. After a quiet stretch, a sudden large gradient enters
#   $\hat m$ with weight $1 - \beta_1 = 0.5$ but $\hat v$ with weight $1 - \beta_2 = 0.001$,
#   and the step can reach $\eta (1 - \beta_1) / \sqrt{1 - \beta_2} \approx 15.8\, \eta$
#   (Kingma and Ba's bound, reached by one gradient after a long run of zeros; $3.2\, \eta$
#   for the usual $\beta_1 = 0.9$). Strictly, the largest possible step is larger still,
#   $\eta (1 - \beta_1) / \sqrt{(1 - \beta_2) (1 - \beta_1^2 / \beta_2)} \approx 18.3\, \eta$
#   (by the Cauchy-Schwarz inequality; $7.3\, \eta$ for $\beta_1 = 0.9$), approached by a
#   gradient that grows by a factor $\beta_2 / \beta_1$ at every step, about 2 here: DCGAN's
#   $\beta_1 = 0.5$ allows larger jolts. In the first $1 / (1 - \beta_2) = 1{,}000$ or so steps
#   the bias correction keeps all of this lower. The cells after the tables measure these
#   cases. Both players get the same rate, so neither outruns the other.
# - **A moving average of G's weights**, `models.dcgan(ema_decay=0.999, ema_warmup=True)`:
#   after each generator step $\bar\theta \leftarrow \beta \bar\theta + (1 - \beta)\, \theta$,
#   with $\beta_t = \min(0.999, \frac{1 + t}{10 + t})$, and samples come from $\bar\theta$,
#   which smooths out the game's oscillation (`tinygen.ema`). Only the weights are averaged:
#   batch norm's running means and variances are not weights, and by default
#   (`ema_batch_norm="copy"`, the rule of PyTorch's `AveragedModel`, and the one in the tables
#   below) they are copied from the live $G$. The other rule, `ema_batch_norm="recompute"`,
#   measures them on the averaged $G$'s own activations before it samples; the section on
#   capacity compares the two.
# - **One-sided label smoothing**, `models.dcgan(real_label=0.9)`: D's loss becomes
#   $\mathrm{BCE}(D(x), 0.9) + \mathrm{BCE}(D(G(z)), 0)$, so D is never pushed to be ever
#   surer of the real digits; the fakes keep their target 0. Lesson 11's optimal
#   discriminator, redone with the target 0.9: at each $x$, with $a = p_\text{data}(x)$ and
#   $b = p_g(x)$, $D$ maximises $0.9\, a \log D + (0.1\, a + b) \log(1 - D)$, whose derivative
#   $\frac{0.9\, a}{D} - \frac{0.1\, a + b}{1 - D}$ vanishes at
#
#   $$D^*(x) = \frac{0.9\, p_\text{data}(x)}{p_\text{data}(x) + p_g(x)},$$
#
#   lesson 11's $D^*$ times 0.9: at most 0.9 where only real digits lie, and still 0 where only
#   fakes do. That is why only the real side is smoothed (Salimans et al., 2016). A fake target
#   of 0.1 would give $D^* = \frac{0.9\, p_\text{data} + 0.1\, p_g}{p_\text{data} + p_g}$, which
#   is 0.1, not 0, where $p_\text{data} = 0 < p_g$: $D$ would be taught to call G's samples
#   that look like no digit at all a little real, and would push G away from its mistakes less.
# - **Two timescales** (TTUR), `gan_optimizers(gan, lr_discriminator=4e-4, lr_generator=1e-4)`:
#   D learns faster than G, so G chases a discriminator that is closer to its optimum.
# - **Spectral normalisation**, `models.dcgan(spectral_norm=True)`. A function $f$ is
#   **$L$-Lipschitz** when $\|f(x) - f(y)\| \le L\, \|x - y\|$ for all $x, y$: no change of
#   the input moves the output more than $L$ times as far. For a linear map $W$ the smallest
#   such $L$ is its largest singular value $\sigma(W)$, so $W / \sigma(W)$ is 1-Lipschitz, and
#   so is a stack of such layers with LeakyReLUs between them (themselves 1-Lipschitz): $D$
#   cannot grow steep enough to give G useless gradients. (D drops its batch norm, which could
#   scale the activations back up.) Each of D's weights is divided by an estimate of $\sigma$,
#   tracked by one power-iteration step, $v \leftarrow W^\top u / \|W^\top u\|$,
#   $u \leftarrow W v / \|W v\|$, $\sigma_\text{est} = u^\top W v = \|W v\|$, at every call
#   of D in training mode (three per training step: the real batch, the fakes, G's step), each
#   going on from the last one's $u$. The layers come out *about* 1-Lipschitz, not
#   exactly, for two reasons. First, $\|W v\| \le \sigma$ for every unit vector $v$, so the
#   estimate never exceeds $\sigma$ and falls short while $v$ is not yet the top singular
#   vector: $W / \sigma_\text{est}$ can have a norm a little above 1. Second, a convolution's
#   weight $(c_\text{out}, c_\text{in}, k, k)$ is normalised as the matrix
#   $c_\text{out} \times c_\text{in} k^2$ that maps one $k \times k$ patch of the input to one
#   output pixel, but the convolution applies it to every patch, and the patches overlap. Its
#   norm as a map from image to image lies between $\sigma$ of that matrix and
#   $\lceil k / s \rceil$ times it (every input pixel lies in at most $\lceil k / s \rceil^2$
#   patches of a stride-$s$ convolution): for D's $k = 4$, $s = 2$ layers, between 1 and 2 once
#   normalised. The cells after the tables measure both gaps.
# - **Dropout in D** (`discriminator_dropout=0.3`) and **a wider G** (`generator_width=2.0`,
#   twice the channels).
#
# The ablation: each technique added alone to the paper's recipe, then a few together, every run
# from the same seed and scored alike ($N = 10{,}000$ samples against the test set; the
# real-vs-real floor is 5.6 and the test digits' MNIST score 9.76). The screen ran every
# variant in PyTorch on a GPU (`bench/dcgan_recipe_torch.py`, the same models and algorithm,
# scored with tinygen's classifier), for 6 epochs, 5,622 steps of 64 digits, about what fits in
# 15 minutes of tinygen on a 2-core CPU; the seconds are tinygen's on that CPU, from its time per
# step (`bench/dcgan_recipe.py --steps 150`):
#
# | recipe (seed 0) | FID | MNIST score | tinygen seconds |
# | --- | --- | --- | --- |
# | the paper's: Adam $2 \cdot 10^{-4}$, $\beta_1$ 0.5, batch 64 | 270 | 6.87 | 720 |
# | + moving average of G (0.999, ramped) | 280 | 6.91 | 690 |
# | + one-sided label smoothing (0.9) | 272 | 6.90 | 680 |
# | + TTUR (D $4 \cdot 10^{-4}$, G $10^{-4}$) | 327 | 6.66 | 690 |
# | + spectral normalisation of D | 242 | 6.99 | 680 |
# | + dropout 0.3 in D | 305 | 6.67 | 800 |
# | + twice the channels in G | 260 | 6.91 | 1090 |
# | + learning rate $4 \cdot 10^{-4}$ | 198 | 7.25 | 680 |
# | moving average + spectral norm | 250 | 7.01 | 680 |
# | moving average + smoothing + dropout | 277 | 6.87 | 800 |
#
# | recipe (seed 1) | FID | MNIST score |
# | --- | --- | --- |
# | learning rate $4 \cdot 10^{-4}$ | 211 | 7.17 |
# | learning rate $8 \cdot 10^{-4}$ | 159 | 7.54 |
# | $8 \cdot 10^{-4}$ at batch 128 (half the steps) | 188 | 7.34 |
# | $4 \cdot 10^{-4}$ + label smoothing | 199 | 7.27 |
# | $4 \cdot 10^{-4}$ + twice the channels in G | 191 | 7.34 |
# | $4 \cdot 10^{-4}$ + moving average | 213 | 7.25 |
# | $4 \cdot 10^{-4}$ + spectral norm | 210 | 7.18 |
# | $4 \cdot 10^{-4}$ + spectral norm + moving average | 188 | 7.32 |
#
# Then in tinygen itself, 6 epochs on the 2-core CPU (`bench/dcgan_recipe.py --epochs 6`):
#
# | recipe (tinygen, numba) | FID, seed 0 | FID, seed 1 | MNIST score, seeds 0 and 1 |
# | --- | --- | --- | --- |
# | the paper's, $2 \cdot 10^{-4}$ | 271 | 283 | 6.82, 6.84 |
# | learning rate $8 \cdot 10^{-4}$ | 187 | 170 | 7.48, 7.52 |
# | all together (a) | 192 | | 7.27 |
#
# (a) $8 \cdot 10^{-4}$, moving average, label smoothing, spectral norm, dropout and a wide G:
# no better than the learning rate alone, at 1.75 times its time per step.
#
# and `tinygen train dcgan-classic`, which uses $8 \cdot 10^{-4}$: FID 182 and MNIST score 7.47
# after 6 epochs, 11 minutes on that CPU (the paper's rate: 280 and 6.73 after its 5 epochs).
#
# The learning rate is the technique that pays here. The moving average, label smoothing and
# dropout change little at this length of training; TTUR's slow generator is worse. Spectral
# normalisation helps a little and costs no measurable time (680 s against the paper's 720: one
# power-iteration step per layer is small beside the convolutions, and the remaining differences
# are the noise of timing); a wider G helps a little at half again the time (1,090 s), and
# dropout costs time (800 s) for nothing. And none of them comes near the floor: the best FID
# in the tables is 159 against 5.6 for real digits, the best MNIST score 7.54 against 9.76, and
# the run above, at the learning rate of the new recipe, `LR`, draws digits that the classifier
# reads with less than 90 % confidence about a third of the time (its scores above).
#
# The tables are pasted from benches, but the main claim can be checked right here: the same
# network, from the same initial weights and on the same batches, trained for as many steps at
# the paper's $2 \cdot 10^{-4}$ as the run above at `LR`, and scored the same way. (It adds a
# second training of the same length to the lesson's run time.)

# %%
paper_gan = models.dcgan(latent_dim)
paper_gan.load_state_dict(initial_weights)  # the very weights the run above started from
paper_loader = DataLoader(train_images, batch_size=batch_size, shuffle=True, drop_last=True,
                          seed=0)  # the same batches in the same order
paper_optimizers = models.gan_optimizers(paper_gan, lr=2e-4, betas=(0.5, 0.999))
fit(paper_gan, Rounds(endless(paper_loader), [round_ends[-1]]), paper_optimizers, epochs=1,
    progress=False)
paper_gan.eval()
paper_generated = np.concatenate([paper_gan.sample(batch).data
                                  for _ in range(n_scored // batch)])
paper_features, paper_probs = mc.classify(paper_generated, value_range=(-1, 1))
print(f"{round_ends[-1]} steps each, {n_scored} samples against the {len(test_unit)} test digits")
print(f"    {'recipe':40s} {'FID':>7s} {'MNIST score':>12s}")
print(f"    {'the paper, lr 2e-4':40s} "
      f"{mc.fid_from_features(paper_features, test_features):7.1f} "
      f"{mc.mnist_score_from_probs(paper_probs)[0]:12.2f}")
print(f"    {f'this lesson, lr {LR:g} (the run above)':40s} {fid_generated:7.1f} "
      f"{score_generated[0]:12.2f}")

# %% [markdown]
# Two claims of the list above, checked on numbers. Spectral normalisation's $\sigma$, on the
# trained discriminator's middle convolution (its weight read as a $128 \times 1024$ matrix):
# one power-iteration step from a random $u$ and 20 steps, against the singular values NumPy's
# SVD computes; then the convolution's own norm as a map from $64 \times 14 \times 14$ inputs
# to $128 \times 7 \times 7$ outputs, by power iteration on the convolution itself (the
# transposed convolution of this lesson's first section is its transpose, $C^\top$):

# %%
middle_weight = gan.discriminator[2].weight.data.astype(np.float64)  # (128, 64, 4, 4)
middle_conv = weight_matrix(middle_weight)  # (128, 1024)
u_start = np.random.default_rng(0).standard_normal(middle_conv.shape[0])
u_start /= np.linalg.norm(u_start)
sigma_by_steps = {}
for n_steps in (1, 20):
    u, v = power_iteration(middle_conv, u_start, n_steps)
    sigma_by_steps[n_steps] = float(u @ middle_conv @ v)
sigma_svd = np.linalg.svd(middle_conv, compute_uv=False)
print(f"sigma by 1 power-iteration step {sigma_by_steps[1]:.4f}, by 20 steps "
      f"{sigma_by_steps[20]:.4f}, by the SVD {sigma_svd[0]:.4f} (next singular values "
      f"{sigma_svd[1]:.4f}, {sigma_svd[2]:.4f})")

# the convolution as a map C: x -> conv(x), its norm by power iteration on C^T C
conv_weight = tg.tensor(middle_weight)
probe = tg.tensor(np.random.default_rng(0).standard_normal((1, 64, 14, 14)))
for _ in range(30):
    probe = F.conv_transpose2d(F.conv2d(probe, conv_weight, stride=2, padding=1), conv_weight,
                               stride=2, padding=1)  # C^T C probe
    probe = probe / float(np.linalg.norm(probe.data))
conv_norm = float(np.linalg.norm(F.conv2d(probe, conv_weight, stride=2, padding=1).data))
print(f"the convolution's norm {conv_norm:.4f} = {conv_norm / sigma_svd[0]:.2f} x sigma of its "
      f"matrix (between 1 and ceil(k / s) = 2)")

# %% [markdown]
# And Adam's step, on four weights that tinygen's `optim.Adam` updates side by side (Adam works
# coordinate by coordinate), in units of $\eta$: one fed a steady gradient, one a noisy gradient
# (mean 0.3, standard deviation 1), and the two worst cases above, one gradient after 5,000
# zeros and a gradient that grows by the factor $\beta_2 / \beta_1$ at every step after them;
# with DCGAN's betas $(0.5, 0.999)$ and with the usual $(0.9, 0.999)$.

# %%
QUIET, GROWING = 5000, 40  # steps of zero gradient before the worst cases, steps after them
adam_steps = {}  # beta1 -> |step| / eta, (steps, 4)
for beta1 in (0.5, 0.9):
    gradients = np.zeros((QUIET + GROWING, 4))  # a row per step, a column per weight
    gradients[:, 0] = 1.0  # steady
    gradients[:, 1] = 0.3 + np.random.default_rng(0).standard_normal(len(gradients))  # noisy
    gradients[QUIET, 2] = 1.0  # one gradient after the quiet stretch
    gradients[QUIET:, 3] = (0.999 / beta1) ** np.arange(GROWING)  # growing by b2 / b1
    weights = nn.Parameter(np.zeros(4))
    adam = tg.optim.Adam([weights], lr=1.0, betas=(beta1, 0.999))
    taken = np.zeros_like(gradients)
    for t, g in enumerate(gradients):
        weights.data[...] = 0.0  # so that after the step the weights are minus the step
        weights.grad = tg.tensor(g)
        adam.step()
        taken[t] = np.abs(weights.data)
    adam_steps[beta1] = taken
print("step / eta                                 beta1 0.5   beta1 0.9")
for name, value in [
        ("steady gradient, at the end", lambda s: s[-1, 0]),
        ("noisy gradient, mean after 1,000 steps", lambda s: s[1000:, 1].mean()),
        ("noisy gradient, largest after 1,000", lambda s: s[1000:, 1].max()),
        ("one gradient after 5,000 zeros", lambda s: s[QUIET, 2]),
        ("growing gradient after 5,000 zeros", lambda s: s[-1, 3])]:
    print(f"{name:40s} {value(adam_steps[0.5]):9.2f}   {value(adam_steps[0.9]):9.2f}")
for beta1 in (0.5, 0.9):
    print(f"beta1 {beta1}: (1 - b1) / sqrt(1 - b2) = {(1 - beta1) / np.sqrt(0.001):.2f}, "
          f"(1 - b1) / sqrt((1 - b2)(1 - b1^2 / b2)) = "
          f"{(1 - beta1) / np.sqrt(0.001 * (1 - beta1 ** 2 / 0.999)):.2f}")

# %% [markdown]
# These numbers do not depend on the training above. A steady gradient moves its weight by
# exactly $\eta$ per step; the noisy one by $0.50\, \eta$ on average with DCGAN's betas
# ($0.31\, \eta$ with the usual ones), its largest step $2.3\, \eta$: in steady state the
# typical step is of the order of $\eta$, rarely more than a few $\eta$. The two worst cases
# come within the bias correction of their bounds, $15.76$ against $15.81$ and $18.20$ against
# $18.26$ (with $\beta_1 = 0.9$: $3.15$ against $3.16$, $7.25$ against $7.27$).

# %% [markdown]
# ## More capacity, against the rule
#
# The notes' first DCGAN rule is to **replace fully connected hidden layers with
# convolutions**. For $64 \times 64$ photographs that is a good trade: a convolution shares
# one small kernel across the whole image, so a network can grow deep without growing heavy.
# Our classic network keeps the rule to the letter and is small: 0.78M weights in $G$, 0.14M
# in $D$, and only two convolutions on each side, because two halvings already take
# $28 \times 28$ to $7 \times 7$. Its samples above, and every technique of the ablation,
# stayed far from the floor. Is the recipe at fault, or the network's **capacity**?
#
# Two ways to give it more:
#
# - **keep the rule**, `models.dcgan(architecture="deep")`: 256 feature maps at $7 \times 7$
#   and a third, stride-1 convolution on each side (1.72M weights in $G$, 0.44M in $D$);
# - **break it**, `models.dcgan(architecture="infogan")`: the MNIST network of the InfoGAN
#   paper (Chen et al., 2016), a fully connected hidden layer of 1,024 units on each side,
#   $z \to$ FC 1024 + BN + ReLU $\to$ FC $128 \cdot 7 \cdot 7$ $\to$ classic's two
#   transposed convolutions, and classic's two convolutions $\to$ FC 1024 + BN + LeakyReLU
#   $\to$ one logit (6.68M weights in $G$, 6.56M in $D$).
#
# A fully connected layer from 1,024 units to the $128 \times 7 \times 7$ grid lets every
# unit of $G$'s first stage place strokes anywhere on the digit, and $D$'s layer reads the
# whole $7 \times 7$ grid of features at once: on a $28 \times 28$ image, "anywhere" is only
# 49 places, so the weight sharing the rule buys saves little, and the global view it gives
# up is what a digit's shape needs (a 7 is a 7 because of how its two strokes meet). With
# just two convolutions per side, the rule may cost more capacity than it saves: a claim to
# measure, not to take on trust.
#
# Each network now trains for **the same number of seconds** as the classic run above, at the
# rates `tinygen train dcgan` uses for it, and the three are scored alike. The digits the
# classifier reads in the samples, against the test digits' shares, show a second thing the
# FID folds into one number: a GAN that **drops digits** (mode collapse, partial here) draws
# too few of some classes however clean each image is.

# %%
class TimeBudget:
    """What fit sees as its loader: one pass yields batches until `seconds` have gone by."""

    def __init__(self, batches, seconds):
        self.batches = batches
        self.seconds = seconds
        self.steps = 0

    def __iter__(self):
        stop = time.perf_counter() + self.seconds
        for batch in self.batches:
            yield batch
            self.steps += 1
            if time.perf_counter() >= stop:
                return


# `tinygen train dcgan`'s settings for both: G's rate 1e-3, D's 2e-4 (InfoGAN's), batch 128;
# and for the default, infogan, its samples from G's moving average (see the table below)
CAPACITY_RUNS = {
    "deep": dict(architecture="deep"),
    "infogan": dict(architecture="infogan", ema_decay=0.999, ema_warmup=True,
                    ema_batch_norm="recompute"),
}
contenders = {"classic": (gan, round_ends[-1])}
for name, options in CAPACITY_RUNS.items():
    tg.manual_seed(0)
    contender = models.dcgan(latent_dim, **options)
    contender_loader = DataLoader(train_images, batch_size=pick(128, 16), shuffle=True,
                                  drop_last=True, seed=0)
    budget = TimeBudget(endless(contender_loader), train_seconds)
    fit(contender, budget,
        models.gan_optimizers(contender, lr_generator=1e-3, lr_discriminator=2e-4),
        epochs=1, progress=False)
    contenders[name] = (contender, budget.steps)

test_counts = mc.class_counts(test_probs)  # test_features, test_probs: from the scores above
capacity_rows = {}
print(f"each trained for {train_seconds:.0f} s; {n_scored} samples against the "
      f"{len(test_unit)} test digits (floor {floor['fid']:.1f}, test digits' score "
      f"{floor['mnist_score'][0]:.2f})")
print("network     steps   weights    FID   MNIST score   under-represented digits")
for name, (contender, steps) in contenders.items():
    contender.eval()
    images = np.concatenate([contender.sample(batch).data for _ in range(n_scored // batch)])
    features, probs = mc.classify(images, value_range=(-1, 1))
    counts = mc.class_counts(probs)
    row = {"steps": steps, "fid": mc.fid_from_features(features, test_features),
           "score": mc.mnist_score_from_probs(probs)[0], "counts": counts,
           "rare": mc.under_represented(counts, test_counts), "images": images[:36]}
    capacity_rows[name] = row
    n_weights = sum(p.data.size for player in (contender.generator, contender.discriminator)
                    for p in player.parameters())
    print(f"{name:9s} {steps:7d}  {n_weights / 1e6:6.2f}M  {row['fid']:6.1f}"
          f"   {row['score']:11.2f}   {' '.join(map(str, row['rare'])) or 'none'}")

# %%
grid_folder = tempfile.TemporaryDirectory()  # each network's 36 samples, drawn into the figure
fig = plot.new_figure(width=12, height=7.2)
axes = fig.subplots(2, len(capacity_rows))
test_share = test_counts / test_counts.sum()
for column, (name, row) in enumerate(capacity_rows.items()):
    share = row["counts"] / row["counts"].sum()
    ax = axes[0, column]
    ax.bar(np.arange(10), 100 * share, color=["tab:red" if d in row["rare"] else "tab:blue"
                                              for d in range(10)])
    ax.plot(np.arange(10), 100 * test_share, "k_", markersize=18, label="test digits")
    ax.set_xticks(range(10))
    ax.set_ylim(0, max(25, 100 * share.max() + 2))
    ax.set_xlabel("digit (the classifier's reading)")
    ax.set_ylabel("% of the samples")
    ax.set_title(f"{name}: FID {row['fid']:.0f}, score {row['score']:.2f}", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    grid_path = plot.image_grid(row["images"], f"{grid_folder.name}/{name}.png", nrow=6,
                                value_range=(-1, 1))
    axes[1, column].imshow(imread(grid_path))
    axes[1, column].set_axis_off()
plot.save(fig, figure("13_capacity.png"))
grid_folder.cleanup()

# %% [markdown]
# In our full run each network had 354 seconds, as the classic one took for its 1,500 steps
# (on a slower day of this machine than the benches above: 0.236 s per classic step):
#
# | network | steps in 354 s | weights | FID (floor 7.8) | MNIST score | under-represented |
# | --- | --- | --- | --- | --- | --- |
# | classic | 1,500 of 64 | 0.92M | 271 | 6.76 | 4 and 1 |
# | deep | 313 of 128 | 2.16M | 362 | 5.95 | 1 and 4 |
# | infogan | 428 of 128 | 13.24M | **96** | **7.87** | none |
#
# (The classic row is a second draw of 5,000 samples from the network above: FID 271 here, 269
# there, the noise of the estimate at this $N$.) The deep network, which keeps the rule, costs
# 2.4 times the classic one per image and did worse in the same time; the infogan network costs
# 1.75 times as much per image, saw 54,784 images against the classic one's 96,000, and came
# nearly three times closer to the floor, with the flattest histogram. The classic network's
# histogram is the mode-collapse lesson in small: it draws zeros and nines a third to two
# thirds more often than the data has them, and ones and fours at half the rate, and no amount
# of its own training time closed that gap in the ablation above.
#
# The same comparison at the length of `tinygen train dcgan`, 15 minutes of tinygen on a 2-core
# CPU, screened in PyTorch (`bench/dcgan_recipe_torch.py --minutes 5 10 15`: the same networks,
# algorithm and scores, as many steps as tinygen takes in those minutes, seed 0, $N = 10{,}000$;
# the floor is 5.6 and the test digits score 9.76):
#
# | network | batch | rates G / D | steps | live $G$ | average, G's stats | average, own stats |
# | --- | --- | --- | --- | --- | --- | --- |
# | infogan | 64 | 8e-4 / 8e-4 | 1,800 | 43.5 / 8.66 | 34.7 / 8.71 | 21.0 / 8.78 |
# | infogan | 64 | 1e-3 / 2e-4 | 1,800 | 48.6 / 8.61 | 44.1 / 8.76 | 19.9 / 8.83 |
# | infogan | 128 | 8e-4 / 8e-4 | 1,313 | 40.0 / 8.67 | 30.6 / 8.81 | 21.8 / 8.81 |
# | infogan | 128 | 1e-3 / 2e-4 | 1,313 | 41.2 / 8.61 | 37.3 / 8.63 | **17.4 / 8.83** |
# | deep | 64 | 8e-4 / 8e-4 | 2,239 | 109.4 / 7.75 | 110.5 / 7.73 | 104.0 / 7.80 |
# | deep | 64 | 1e-3 / 2e-4 | 2,239 | 89.9 / 7.78 | 92.2 / 7.77 | 87.3 / 7.86 |
#
# (FID / MNIST score after 15 tinygen-minutes. The deep network at batch 128 was not screened
# at this length; at 1,078 steps with InfoGAN's rates it gave FID 129 and score 7.55 in an
# earlier check.) At this length, keeping the rule took the FID from about 160 (the classic
# network's, in the same check) to 87; breaking it, to 17. The best of them, infogan at batch
# 128 with InfoGAN's rates, sampled from the average with its own statistics, along the way:
# FID 109 and score 7.80 after 5 minutes, 23.1 and 8.67 after 10, 17.4 and 8.83 after 15.
#
# Three ways to sample from the same run are in those rows: the **live** $G$; the **moving
# average** of its weights with $G$'s batch norm statistics copied (`ema_batch_norm="copy"`,
# the rule of PyTorch's `AveragedModel`); and the moving average with statistics **measured on
# its own activations** (`ema_batch_norm="recompute"`: 20 batches of 500 prior draws through the
# averaged $G$ in training mode, their batch statistics averaged, as `update_bn` does). The
# averaged weights are a different network, so the activations they make have their own mean
# and variance; normalising them with the live $G$'s statistics is a small error in every layer.
# On the classic network the two averages differed by less than the noise between seeds (in
# the screen of the ablation above: FID 160.7 copied, 160.6 recomputed, after 8 epochs); once
# the model is good, the moving average with its own statistics is the best of the three at
# every length, and by a wide margin (FID 17 against 41 live).
#
# So `tinygen train dcgan` trains the infogan network, Adam with $G$ at $10^{-3}$ and $D$ at
# $2 \cdot 10^{-4}$, batches of 128, for 3 epochs, and samples from $G$'s moving average with
# recomputed statistics. In tinygen itself on the 2-core CPU (`tinygen train dcgan --seed S`,
# then `tinygen sample ... --n 10000 --out s.npz` and `tinygen score s.npz`): FID 17.6 and 16.3,
# MNIST score 8.92 and 8.90 (seeds 0 and 1), in 15 min 10 s and 14 min 29 s of training, every
# digit between 8.6 % and 11.8 % of the samples; the same recipe in PyTorch gave 17.4 and 8.83.
# The classic recipe's 6 epochs had given 182 and 7.47. The classic network stays as
# `tinygen train dcgan-classic` and `models.dcgan(architecture="classic")`.
#
# And the notes' rule? It was written for images like the DCGAN paper's $64 \times 64$
# bedrooms, where a fully connected layer over the feature maps would be large and would learn
# every position separately. On MNIST, after two halvings, a fully connected layer sees a
# $7 \times 7$ grid: affordable, and it gives every unit the global view a digit's shape needs.
# On this data the capacity it adds is worth more than the weight sharing it gives up; where
# that turns as images grow is not measured here.
#
# From here on we use the infogan network: the latent walks and the quiz below are its.

# %%
gan = contenders["infogan"][0]
gan.eval()

# %% [markdown]
# ## Walking through the latent space
#
# If the generator has learned a smooth map from noise to digits, then the images along a
# straight line from $z_a$ to $z_b$, $G((1 - t) z_a + t z_b)$ for $t$ from 0 to 1, should change
# gradually, one plausible digit morphing into another (`gan.interpolate`). Under each latent
# walk we show the naive alternative, mixing the two end *images* pixel by pixel,
# $(1 - t)\, G(z_a) + t\, G(z_b)$: a double exposure whose middle is no digit at all.

# %%
n_steps = 10
rows, titles = [], []
for pair in range(3):
    z_a, z_b = rng.standard_normal((2, latent_dim))
    walk = gan.interpolate(z_a, z_b, steps=n_steps).data  # (10, 1, 28, 28), G in eval mode
    t = np.linspace(0, 1, n_steps).reshape(-1, 1, 1, 1)
    blend = (1 - t) * walk[0] + t * walk[-1]  # pixel-space mixing of the two end images
    rows += [walk, blend]
    titles += ["z line"] + [""] * (n_steps - 1) + ["pixel mix"] + [""] * (n_steps - 1)
plot.image_grid(np.concatenate(rows), figure("13_interpolation.png"), nrow=n_steps,
                titles=titles, value_range=(-1, 1))
print("latent walks and pixel mixes:", len(rows), "rows of", n_steps)

# %% [markdown]
# ## Which one is computer-generated?
#
# 18 test digits and 18 DCGAN digits (not hand-picked), shuffled into one $6 \times 6$ grid
# by `mc.quiz`. Pick the 18 you think the computer drew before you open the answer key, which
# it writes beside the picture as `13_quiz.answers.txt` (cells counted from 0, row by row).
#
# Our discriminator takes the same quiz: it scores each of the 36 digits with $D(x)$, the
# probability "real", and we let it name as fakes the 18 it finds least real. (Ranking avoids
# a threshold: in eval mode the discriminator's batch norm uses running statistics gathered on
# real *and* fake batches, which shifts every $D(x)$ a little.) A discriminator that still
# spots most fakes is what keeps teaching the generator.

# %%
n_quiz = 18
quiz_real = test_unit[:n_quiz]  # in [0, 1]
quiz_fake = gan.sample(n_quiz).data  # in [-1, 1], generator in eval mode
quiz_path = figure("13_quiz.png")
answer_key = mc.quiz(quiz_real, quiz_fake, quiz_path, n=n_quiz, seed=0,
                     value_range=(0, 1), value_range_fake=(-1, 1))
print("quiz written to", quiz_path, "(answers in 13_quiz.answers.txt beside it)")

gan.discriminator.eval()
quiz_digits = np.concatenate([quiz_real.reshape(-1, 1, 28, 28) * 2 - 1, quiz_fake])  # [-1, 1]
is_fake = np.arange(2 * n_quiz) >= n_quiz
with tg.no_grad():
    d_real_prob = F.sigmoid(gan.discriminator(tg.tensor(quiz_digits))).data.ravel()
named_fake = np.argsort(d_real_prob)[:n_quiz]  # the n_quiz digits it finds least real
print(f"mean D(x): {d_real_prob[~is_fake].mean():.2f} on the real digits, "
      f"{d_real_prob[is_fake].mean():.2f} on the generated ones")
print(f"the discriminator's {n_quiz} picks hold {is_fake[named_fake].sum()} of the "
      f"{n_quiz} fakes (guessing would find about {n_quiz // 2})")

# %%
print(f"elapsed {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Try this
#
# 1. **Fewer or more steps.** Change `round_ends` (e.g. end at 3000 steps, or stop at 300) and
#    watch `13_samples_over_training.png` and the FID: when do strokes appear, when do they
#    become digits, does the FID keep falling?
# 2. **No DCGAN initialisation.** Build the model with
#    `models.GAN(models.dcgan_generator(100), models.dcgan_discriminator(), 100)` (tinygen's
#    default initialisation, no `dcgan_init`) and compare the first rounds' $D(x)$, $D(G(z))$
#    and the samples after 200 steps.
# 3. **Adam's $\beta_1$.** In `models.gan_optimizers(gan, lr=LR, betas=(0.5, 0.999))` use
#    the usual `(0.9, 0.999)`: does training oscillate more (watch $D(G(z))$ swing between
#    rounds) or produce worse digits for the same number of steps?
# 4. **A transposed convolution that interpolates.** Set
#    `upsample.weight.data[...] = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 16` and apply
#    `upsample` to a $5 \times 5$ ramp, `tg.tensor(np.add.outer(np.arange(5.0),
#    np.arange(5.0)).reshape(1, 1, 5, 5))`: away from the border the output is bilinear
#    upsampling (a ramp again, twice as long and half as steep). A DCGAN learns its own kernels
#    instead: look at a few of `gan.generator[4].weight` after training.
# 5. **Sample in training mode.** Call `gan.train()` before `gan.sample(64)` (batch norm then
#    uses the statistics of the sampled batch): are the digits different from the eval-mode
#    ones in the quiz? What happens with a batch of 2?
# 6. **The ablation, yourself.** Set `LR = 2e-4` (the paper's rate) and compare the FID and the
#    samples with the run above; then go back to `LR = 8e-4` and build the model with one
#    technique on, `models.dcgan(latent_dim, spectral_norm=True)` or
#    `models.dcgan(latent_dim, ema_decay=0.999, ema_warmup=True)`. After 1,500 steps, which
#    ones beat the run above, and by more than the difference between two seeds
#    (`tg.manual_seed(1)` at the top)?
# 7. **The moving average's statistics.** In `CAPACITY_RUNS`, give the infogan network
#    `ema_batch_norm="copy"` (G's running statistics, PyTorch's `AveragedModel` rule) instead of
#    `"recompute"`, and then `ema_decay=None` (no average: the live G). Which of the three scores
#    best after the same seconds, and does the gap grow or shrink when the networks train twice
#    as long (`TimeBudget(endless(contender_loader), 2 * train_seconds)`)?
