# %% [markdown]
# # 06: Contractive autoencoders (penalising derivatives)
#
# A good code should not jump when the input barely changes: two photos of the same digit that
# differ by a little sensor noise ought to get nearly the same code. The **contractive
# autoencoder** asks for this directly. It adds to the reconstruction loss a penalty on the
# encoder's derivatives, so that the code is insensitive to small changes of the input, except
# in the few directions it needs to tell digits apart.
#
# Runs in about 21 s on a 2-core CPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 3 s.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import metrics, nn, plot
from tinygen.data import DataLoader
from tinygen.models import Autoencoder, ContractiveAutoencoder
from tinygen.train import fit

from course import figure, mnist, pick, reconstruct

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)  # the small input changes we draw ourselves come from here

# %% [markdown]
# ## The penalty
#
# With encoder $z = f(x)$ and decoder $r = g(z)$, the loss is
#
# $$L\big(x, g(f(x))\big) + \Omega(x, z), \qquad
#   \Omega(x, z) = \lambda \sum_i \big\lVert \nabla_x z_i \big\rVert^2 .$$
#
# $\nabla_x z_i$ is the gradient of code unit $i$ with respect to the input pixels: row $i$ of the
# encoder's Jacobian $J = \partial z / \partial x$ (a $K \times D$ matrix, $K$ code units, $D =
# 784$ pixels). Summing the squared rows gives the squared Frobenius norm,
# $\Omega = \lambda \lVert J \rVert_F^2 = \lambda \sum_{i,j} (\partial z_i / \partial x_j)^2$.
#
# Why it makes the code robust: for a small change $\epsilon$ of the input,
# $f(x + \epsilon) - f(x) \approx J \epsilon$, so a small $\lVert J \rVert_F$ means a small change
# of the code. The reconstruction term pulls the other way (the code must still tell a 3 from an
# 8), and the balance between the two is set by $\lambda$.
#
# ## Building the penalty by hand: double backprop
#
# We use the simplest encoder, one layer with a sigmoid, $z = \sigma(W x + b)$, with $K = 64$
# code units. To get $\nabla_x z_i$ we ask autograd for the gradient of $z_i$ with respect to
# $x$, one code unit at a time. Two details:
#
# * For a batch, we differentiate $\sum_n z_i(x_n)$. Each $z_i(x_n)$ depends only on its own
#   image $x_n$, so row $n$ of the result is $\nabla_{x_n} z_i(x_n)$: one backward pass gives
#   the gradient for every image of the batch.
# * The penalty will itself be differentiated with respect to $W$ and $b$ during training. So the
#   backward pass that computes $\nabla_x z_i$ must be recorded as a graph too:
#   `tinygen.grad(..., create_graph=True)`. This is **double backprop**: a gradient of a gradient.

# %%
CODE = 64
encoder = nn.Sequential(nn.Linear(784, CODE), nn.Sigmoid())  # z = sigmoid(W x + b)
W, b = encoder[0].weight, encoder[0].bias  # W is (K, D) = (64, 784)

x_test, _ = mnist("test", n=pick(10000, 1000))
small_batch = x_test[:16]


def contraction_by_hand(encoder, images):
    """||dz/dx||_F^2 per image, (N,), differentiable w.r.t. the encoder's weights."""
    x = tg.tensor(images, requires_grad=True)
    z = encoder(x)  # (N, K)
    total = 0
    for i in range(z.shape[1]):
        # row n of grad_i is the gradient of z_i(x_n) w.r.t. x_n, for every image n at once
        (grad_i,) = tg.grad(z[:, i].sum(), x, create_graph=True)  # (N, D)
        total = total + (grad_i * grad_i).sum(axis=1)  # + ||grad_x z_i||^2
    return total


by_hand = contraction_by_hand(encoder, small_batch)
print(f"||J||_F^2 by double backprop, first 4 images: {np.round(by_hand.data[:4], 4)}")

# %% [markdown]
# ## The closed form for a sigmoid layer
#
# For $z_i = \sigma(a_i)$ with $a_i = \sum_j W_{ij} x_j + b_i$, the chain rule and
# $\sigma'(a) = \sigma(a)(1 - \sigma(a))$ give
#
# $$\frac{\partial z_i}{\partial x_j} = z_i (1 - z_i)\, W_{ij}
#   \quad\Longrightarrow\quad
#   \lVert J \rVert_F^2 = \sum_i \big(z_i (1 - z_i)\big)^2 \sum_j W_{ij}^2 .$$
#
# One forward pass, no backward pass at all. It also shows *how* the penalty can be made small:
# shrink the weights, or drive a unit into saturation ($z_i$ near 0 or 1, where the slope
# $z_i(1 - z_i)$ vanishes).

# %%
def contraction_closed_form(encoder, images):
    """||dz/dx||_F^2 per image for z = sigmoid(W x + b), from the formula above."""
    z = encoder(tg.tensor(images))
    slope = z * (1 - z)  # (N, K): sigmoid'(a_i) = z_i (1 - z_i)
    weight = encoder[0].weight
    row_norms = (weight * weight).sum(axis=1)  # (K,): sum_j W_ij^2
    return (slope * slope) @ row_norms  # (N,)


closed = contraction_closed_form(encoder, small_batch)

# tinygen's versions: the three penalties of ContractiveAutoencoder and a metric
decoder = nn.Linear(CODE, 784)
tinygen_values = {}
for penalty in ContractiveAutoencoder.PENALTIES:
    model = ContractiveAutoencoder(encoder, decoder, penalty=penalty, n_projections=500)
    tinygen_values[f'model, penalty="{penalty}"'] = model.jacobian_penalty(tg.tensor(small_batch))
tinygen_values["metrics.jacobian_frobenius_sq"] = metrics.jacobian_frobenius_sq(encoder,
                                                                               small_batch)

print(f"mean ||J||_F^2 over {len(small_batch)} images, and the largest relative difference "
      "from the hand-built double backprop:")
reference = by_hand.data.astype(np.float64)
for name, values in {"closed form by hand": closed, **tinygen_values}.items():
    values = np.asarray(getattr(values, "data", values), dtype=np.float64)
    difference = np.max(np.abs(values - reference) / reference)
    print(f"  {name:34} {values.mean():.6f}   {difference:.1e}")
print(f"  {'double backprop by hand':34} {reference.mean():.6f}")

# %% [markdown]
# The exact computations agree to float32 round-off. The "projection" penalty is different in
# kind: it draws random vectors $v \sim \mathcal N(0, I_K)$ and uses
# $\mathbb E_v \lVert J^\top v \rVert^2 = \lVert J \rVert_F^2$, one backward pass per draw
# whatever $K$ is. It is right on average, with an error that shrinks like one over the square
# root of the number of draws (500 here, usually 1 to 4 when training).
#
# ## The penalty's gradient, and what each version costs
#
# Training needs $\partial \Omega / \partial W$. Because `create_graph=True` kept the graph of
# the first backward pass, autograd can go through it a second time. Both routes must give the
# same gradient:

# %%
grads_by_hand = tg.grad(by_hand.mean(), [W, b])
grads_closed = tg.grad(closed.mean(), [W, b])
for name, g1, g2 in zip(["W", "b"], grads_by_hand, grads_closed):
    scale = np.abs(g2.data).max()
    print(f"d Omega / d {name}: largest difference {np.abs(g1.data - g2.data).max():.1e} "
          f"(largest entry {scale:.1e})")


def seconds_per_step(penalty, batch):
    """The wall time of one loss + backward with this penalty (the best of three tries)."""
    model = ContractiveAutoencoder(encoder, decoder, lam=1.0, penalty=penalty)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        loss, _ = model.loss(tg.tensor(batch))
        loss.backward()
        times.append(time.perf_counter() - start)
    model.zero_grad()
    return min(times)


for penalty in ContractiveAutoencoder.PENALTIES:
    print(f'one training step, batch of 128, penalty="{penalty}": '
          f"{1000 * seconds_per_step(penalty, x_test[:128]):.1f} ms")

# %% [markdown]
# The exact penalty runs one backward pass per code unit (64 here), so a step costs many times
# the others. We train with the closed form, which is exact for this encoder and nearly free.
#
# ## Training a plain and a contractive autoencoder
#
# Two models with the same shape: the sigmoid encoder $784 \to 64$ and a linear decoder
# $64 \to 784$ whose output goes through a sigmoid, trained with the Bernoulli cross-entropy.
# One minimises $L$ alone, the other $L + \lambda \lVert J \rVert_F^2$ with $\lambda = 0.3$.
# After every epoch we measure the mean $\lVert J \rVert_F^2$ on the same 200 test images with
# `metrics.jacobian_frobenius_sq` (exact, independent of the training penalty).

# %%
x_train, _ = mnist("train", n=pick(60000, 3000))
EPOCHS = pick(12, 5)
LAMBDA = 0.3
watched = x_test[:200]


def sigmoid_encoder_and_decoder():
    return nn.Sequential(nn.Linear(784, CODE), nn.Sigmoid()), nn.Linear(CODE, 784)


def train(model):
    """Adam for EPOCHS epochs; returns the mean ||J||_F^2 on `watched` after each epoch."""
    jacobian_norms = []

    def measure(epoch, history):
        model.eval()
        jacobian_norms.append(float(np.mean(metrics.jacobian_frobenius_sq(model.encode,
                                                                         watched))))
        model.train()

    optimizer = tg.optim.Adam(model.parameters(), lr=3e-3)
    history = fit(model, DataLoader(x_train, batch_size=128), optimizer, EPOCHS,
                  progress=False, on_epoch_end=measure)
    model.eval()
    print(f"{type(model).__name__:22} {sum(history['seconds']):5.1f} s, last epoch: "
          + ", ".join(f"{name} {values[-1]:.2f}" for name, values in history.items()
                      if name != "seconds"))
    return jacobian_norms


tg.manual_seed(1)
plain = Autoencoder(*sigmoid_encoder_and_decoder(), reconstruction="bce")
contractive = ContractiveAutoencoder(*sigmoid_encoder_and_decoder(), lam=LAMBDA,
                                     penalty="closed_form", reconstruction="bce")
models = {"plain": plain, "contractive": contractive}
jacobian_history = {name: train(model) for name, model in models.items()}
plot.curves(jacobian_history, figure("06_jacobian_norm.png"), logy=True,
            title=f"mean ||dz/dx||_F^2 on 200 test images (contractive: lambda = {LAMBDA:g})")


def codes(model, images):
    with tg.no_grad():
        return model.encode(tg.tensor(images)).data


for name, model in models.items():
    error = metrics.mse_per_pixel(x_test, reconstruct(model, x_test))
    print(f"{name:12} test MSE per pixel {error:.4f}, "
          f"mean ||J||_F^2 {jacobian_history[name][-1]:.2f}")

# %% [markdown]
# The penalty costs a little reconstruction quality and buys a Jacobian many times smaller.
# The curves also show what happens without it: the plain encoder's Jacobian keeps growing as it
# trains, since nothing in its loss holds the slopes of its units back.
#
# ## Robustness to small changes of the input
#
# Now the promise itself. For each test image we draw a random direction $u$ (a unit vector)
# and a small step $\epsilon = 0.1\, u$ (about $0.0036$ per pixel, root mean square), and
# measure how far the code moves per unit of input change,
#
# $$s(x) = \frac{\lVert f(x + \epsilon) - f(x) \rVert}{\lVert \epsilon \rVert}
#   \approx \lVert J u \rVert, \qquad
#   \mathbb E_u \lVert J u \rVert^2 = \frac{\lVert J \rVert_F^2}{D}.$$
#
# A code can also look stable simply because it is small. So we compare $s$ with how far apart
# the codes of two *different* test images are: that is the scale of changes the code must keep.

# %%
STEP = 0.1
directions = rng.standard_normal(x_test.shape).astype(np.float32)
directions /= np.linalg.norm(directions, axis=1, keepdims=True)
sensitivity = {}
for name, model in models.items():
    z = codes(model, x_test)
    moved = codes(model, x_test + STEP * directions)
    sensitivity[name] = np.linalg.norm(moved - z, axis=1) / STEP
    half = len(z) // 2
    between_images = np.mean(np.linalg.norm(z[:half] - z[half:2 * half], axis=1))
    # root mean square over 500 images: measured, and sqrt(mean ||J||_F^2 / D) from the Jacobian
    measured_rms = np.sqrt(np.mean(sensitivity[name][:500] ** 2))
    predicted_rms = np.sqrt(np.mean(metrics.jacobian_frobenius_sq(model.encode,
                                                                  x_test[:500])) / 784)
    print(f"{name:12} ||f(x+eps) - f(x)|| / ||eps||: mean {sensitivity[name].mean():.4f}, "
          f"rms {measured_rms:.4f} (from ||J||_F: {predicted_rms:.4f}); between two images' "
          f"codes {between_images:.2f}; ratio {sensitivity[name].mean() / between_images:.4f}")

fig = plot.new_figure(6.4, 4.0)
ax = fig.add_subplot()
bins = np.linspace(0, np.percentile(sensitivity["plain"], 99.5), 60)
for name, values in sensitivity.items():
    ax.hist(values, bins=bins, alpha=0.6, label=f"{name} (mean {values.mean():.3f})")
ax.set_xlabel("||f(x + eps) - f(x)|| / ||eps||,  ||eps|| = 0.1, random direction")
ax.set_ylabel("test images")
ax.set_title("How far the code moves for a small random change of the input")
ax.legend()
plot.save(fig, figure("06_sensitivity.png"))

# %% [markdown]
# The contractive code moves about three times less for the same small change, and the root
# mean square matches $\sqrt{\lVert J \rVert_F^2 / D}$: at this step size the first-order
# picture holds. The code is somewhat smaller overall too (the codes of two different digits
# are a bit closer), but the change relative to that distance still falls by more than half,
# so this is real contraction, not a mere rescaling.
#
# ## Contracting, but not in every direction
#
# If the encoder were contractive in *every* direction, the code would be constant and useless.
# The reconstruction term forbids that. Which directions does the encoder stay sensitive to?
# The singular value decomposition of the Jacobian at an image answers it: the right singular
# vectors $v_1, v_2, \dots$ are the input directions (images of 784 pixels) that move the code
# most, and the singular values $s_1 \ge s_2 \ge \dots$ are the gains,
# $\lVert J v_k \rVert = s_k$. For our encoder $J = \mathrm{diag}\big(z(1 - z)\big)\, W$: a
# saturated unit ($z_i(1 - z_i) \approx 0$) contributes nothing, so only the units that are
# not saturated for this image give $J$ its rank.

# %%
def jacobians(model, images):
    """J = diag(z (1 - z)) W for each image, (N, K, D)."""
    z = codes(model, images)
    weight = model.encoder[0].weight.data
    return (z * (1 - z))[:, :, None] * weight[None]


fig = plot.new_figure(6.4, 4.0)
ax = fig.add_subplot()
for name, model in models.items():
    singular_values = np.linalg.svd(jacobians(model, x_test[:200]), compute_uv=False)
    ax.semilogy(np.arange(1, CODE + 1), singular_values.mean(axis=0), marker="o", markersize=3,
                label=name)
ax.set_xlabel("k (singular values sorted, largest first)")
ax.set_ylabel("s_k of dz/dx (mean over 200 test images)")
ax.set_title("The encoder's gain along its k-th most sensitive direction")
ax.grid(True, alpha=0.3)
ax.legend()
plot.save(fig, figure("06_spectrum.png"))

# %% [markdown]
# Every gain of the contractive encoder is several times lower, and its spectrum falls off
# sooner: its sensitivity is concentrated in fewer directions. Now look at the directions
# themselves: for three test digits, the six most sensitive input directions of each encoder
# (red: pixels that get brighter, blue: darker; above each, its gain $s_k$).

# %%
n_digits, n_directions = 3, 6
panels, titles = [], []
for index in range(n_digits):
    image = x_test[index:index + 1]
    for name, model in models.items():
        _, gains, right_vectors = np.linalg.svd(jacobians(model, image)[0], full_matrices=False)
        directions_k = right_vectors[:n_directions]  # unit vectors (6, 784)
        directions_k = directions_k / np.abs(directions_k).max(axis=1, keepdims=True)  # to [-1, 1]
        panels += [image, directions_k]
        titles += [name] + [f"s = {gain:.2f}" for gain in gains[:n_directions]]
plot.image_grid(np.concatenate(panels), figure("06_directions.png"), nrow=1 + n_directions,
                titles=titles, cmap="RdBu_r", value_range=(-1, 1))

# %% [markdown]
# The plain encoder's most sensitive direction is a frame of border pixels, where no digit ever
# has ink, and the next ones are grainy textures over the whole square. The reason is in the
# gradient of the reconstruction loss: for the first layer, $\partial L / \partial W_{ij} =
# \delta_i\, x_j$, which is zero for a pixel $j$ that is black in every training image. Those
# weights keep their random initial values, so the encoder reacts to noise in exactly the
# pixels that carry no information. The penalty's gradient, $2 \lambda \big(z_i(1 -
# z_i)\big)^2 W_{ij}$ per image, does reach them and shrinks them away. The contractive
# encoder's directions are smoother patterns confined to the middle of the image, where the
# strokes of digits are.
#
# A direct check of "sensitive where the data varies": move each test image a tenth of the way
# towards a copy shifted one pixel to the right, and compare the code's change with that along a
# random direction of the same length.

# %%
shifted = np.roll(x_test.reshape(-1, 28, 28), 1, axis=2).reshape(-1, 784)  # one pixel right
shift_directions = shifted - x_test
shift_directions /= np.linalg.norm(shift_directions, axis=1, keepdims=True)
for name, model in models.items():
    z = codes(model, x_test)
    along_shift = np.linalg.norm(codes(model, x_test + STEP * shift_directions) - z, axis=1) / STEP
    print(f"{name:12} code change per unit of input: along a shift {along_shift.mean():.4f}, "
          f"along a random direction {sensitivity[name].mean():.4f}, "
          f"ratio {along_shift.mean() / sensitivity[name].mean():.1f}")

print(f"elapsed {time.perf_counter() - started:.0f} s")

# %% [markdown]
# The contractive encoder reacts less to both, but it gives up much more of its sensitivity to
# random changes than to the shift: relative to noise, a small movement of the digit now counts
# about twice as much as it did for the plain encoder.
#
# ## What we saw
#
# * $\Omega = \lambda \sum_i \lVert \nabla_x z_i \rVert^2$ takes one backward pass per code unit
#   with `tinygen.grad(..., create_graph=True)`, and it can be differentiated again with respect
#   to the weights. For a sigmoid layer it has a closed form, and every version agrees.
# * Trained with it, the encoder's Jacobian is many times smaller, and a small random change of
#   the input moves the code much less, also relative to the distance between different digits,
#   for a small loss in reconstruction.
# * It is not a uniform shrinking: the encoder stops listening to pixels that never vary, keeps
#   a few directions in which digits do vary, and flattens the rest.
#
# ## Try this
#
# 1. Change `LAMBDA` to 0.1 and to 3. Follow the test MSE, the mean $\lVert J \rVert_F^2$ and
#    the spectrum: at what point does the reconstruction suffer more than the code gains?
# 2. Train with `penalty="projection"` (and `n_projections=1`) instead of `"closed_form"`: the
#    estimate is noisy, but is the trained model any different? Compare the seconds per epoch.
# 3. Give the encoder a hidden layer, `nn.Sequential(nn.Linear(784, 256), nn.ReLU(),
#    nn.Linear(256, CODE), nn.Sigmoid())`. The closed form no longer applies (try it and read
#    the error); check `contraction_by_hand` against `penalty="exact"` and train with
#    `"projection"` (the spectrum and directions cells assume one layer: use
#    `metrics.jacobian_frobenius_sq` instead).
# 4. Count saturated code units, `np.mean((z < 0.05) | (z > 0.95))` with `z = codes(model,
#    x_test)`, for both models. The closed form says saturation is one way to contract: does the
#    contractive model use it?
# 5. Replace `STEP = 0.1` by 1.0 or 3.0. The first-order picture $f(x + \epsilon) \approx f(x) +
#    J \epsilon$ stops holding: does the contractive model stay more robust to large changes?
