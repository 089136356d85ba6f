# %% [markdown]
# # 00: Gradients by hand, and what autograd does for us
#
# Every model in this course learns the same way: compute a loss, compute the gradient of the
# loss with respect to every weight, take a small step downhill. The gradient is the only
# "magic" part, so before we let tinygen's autograd compute it we derive it once ourselves, on
# paper, for a network small enough to hold in one's head: a **one-hidden-layer autoencoder**
# (the model of lesson 01) with a sigmoid code layer and a Bernoulli cross-entropy loss.
#
# We then check the hand derivation three ways: against tinygen's autograd (`loss.backward()`),
# against finite differences (`tinygen.gradcheck`), and by planting a mistake that the check has
# to catch. We look at the graph autograd records, at `create_graph=True` (gradients that can be
# differentiated again: the contractive autoencoder of lesson 06 needs them), and finish by
# training the network with a plain NumPy loop that uses nothing but our hand-derived formulas.
#
# Runs in about 9 s on a 2-core CPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 1 s.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import nn, plot
from tinygen.autograd import Function
from tinygen.models import Autoencoder

from course import figure, mnist, pick

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The network and its loss
#
# One image is a vector $x \in [0, 1]^D$ ($D = 784$ pixels). A batch of $N$ images is the matrix
# $X$ ($N \times D$), one image per row. The network has two linear layers with weights
# $W_1$ ($H \times D$), $b_1$ ($H$) and $W_2$ ($D \times H$), $b_2$ ($D$), stored as
# `nn.Linear` stores them (output $\times$ input):
#
# $$U = X W_1^\top + b_1, \qquad Z = \sigma(U), \qquad A = Z W_2^\top + b_2, \qquad R = \sigma(A)$$
#
# with $\sigma(u) = 1 / (1 + e^{-u})$ applied elementwise. $Z$ ($N \times H$) is the **code**,
# $A$ the decoder's logits and $R$ the reconstruction: pixel probabilities. The loss is the
# Bernoulli cross-entropy between $X$ and $R$, summed over the pixels of an image and averaged
# over the batch (as every autoencoder in tinygen does):
#
# $$L = -\frac{1}{N} \sum_{n,d} \big[x_{nd} \log r_{nd} + (1 - x_{nd}) \log(1 - r_{nd})\big]
#     = \frac{1}{N} \sum_{n,d} \big[\operatorname{softplus}(a_{nd}) - x_{nd}\, a_{nd}\big]$$
#
# The second form (with $\operatorname{softplus}(a) = \log(1 + e^a)$) follows from
# $\log \sigma(a) = a - \operatorname{softplus}(a)$ and
# $\log(1 - \sigma(a)) = -\operatorname{softplus}(a)$; it never takes the log of 0, so it is
# the one we compute with.
#
# tinygen builds exactly this network from its parts: an `Autoencoder` whose encoder is
# `Linear` + `Sigmoid` and whose decoder is one `Linear` (the model applies the output sigmoid
# inside its loss). We make it in float64, so that comparisons are accurate to ~$10^{-15}$.

# %%
n_pixels = 784
n_hidden = pick(32, 16)

model = Autoencoder(
    encoder=nn.Sequential(nn.Linear(n_pixels, n_hidden), nn.Sigmoid()),
    decoder=nn.Linear(n_hidden, n_pixels),
).double()
print(model)

images, labels = mnist("train", n=pick(60000, 2000))
batch = images[:8].astype(np.float64)  # 8 images for the gradient checks


def parameters_as_arrays(model):
    """The four weights of the model as plain NumPy arrays (copies), under short names."""
    return {
        "W1": model.encoder[0].weight.data.copy(),
        "b1": model.encoder[0].bias.data.copy(),
        "W2": model.decoder.weight.data.copy(),
        "b2": model.decoder.bias.data.copy(),
    }


params = parameters_as_arrays(model)
for name, value in params.items():
    print(f"{name}: shape {value.shape}")

# %% [markdown]
# ## The forward pass in NumPy
#
# We keep every intermediate array ($Z$, $A$, $R$) in a "cache": the backward pass needs them.
# `np.logaddexp(0, a)` is $\log(e^0 + e^a) = \operatorname{softplus}(a)$, computed without overflow.

# %%
def sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


def forward_by_hand(params, x):
    """The loss L and the intermediates the backward pass needs."""
    z = sigmoid(x @ params["W1"].T + params["b1"])  # code, (N, H)
    a = z @ params["W2"].T + params["b2"]  # logits, (N, D)
    r = sigmoid(a)  # reconstruction, (N, D)
    n = x.shape[0]
    loss = np.sum(np.logaddexp(0.0, a) - x * a) / n
    return loss, {"x": x, "z": z, "r": r}


loss_by_hand, _ = forward_by_hand(params, batch)
loss_by_tinygen, _ = model.loss(tg.tensor(batch, dtype="float64"))
print(f"loss by hand    {loss_by_hand:.12f}")
print(f"loss by tinygen {loss_by_tinygen.item():.12f}")

# %% [markdown]
# ## The backward pass on paper
#
# Walk the forward pass backwards, one chain-rule step at a time. Write $\Delta_A$ for
# $\partial L / \partial A$ (same shape as $A$), and so on.
#
# **1. Loss to logits.** Differentiate one term: $\frac{d}{da}[\operatorname{softplus}(a) - x a]
# = \sigma(a) - x$. So
#
# $$\Delta_A = \frac{\partial L}{\partial A} = \frac{1}{N}(R - X) \qquad (N \times D)$$
#
# (sigmoid followed by cross-entropy has this famously simple gradient: prediction minus target).
#
# **2. Decoder weights.** $a_{nd} = \sum_h z_{nh} (W_2)_{dh} + (b_2)_d$, so
# $\partial a_{nd} / \partial (W_2)_{dh} = z_{nh}$, and summing over the batch:
#
# $$\frac{\partial L}{\partial W_2} = \Delta_A^\top Z \quad (D \times H), \qquad
#   \frac{\partial L}{\partial b_2} = \sum_n (\Delta_A)_{n,:} \quad (D)$$
#
# **3. Back into the code.** $\partial a_{nd} / \partial z_{nh} = (W_2)_{dh}$, summed over the
# pixels $d$ that $z_{nh}$ feeds:
#
# $$\Delta_Z = \Delta_A W_2 \qquad (N \times H)$$
#
# **4. Through the sigmoid.** $\sigma'(u) = \sigma(u)(1 - \sigma(u))$, and $Z = \sigma(U)$
# elementwise, so (with $\odot$ the elementwise product)
#
# $$\Delta_U = \Delta_Z \odot Z \odot (1 - Z) \qquad (N \times H)$$
#
# **5. Encoder weights**, exactly as in step 2:
#
# $$\frac{\partial L}{\partial W_1} = \Delta_U^\top X \quad (H \times D), \qquad
#   \frac{\partial L}{\partial b_1} = \sum_n (\Delta_U)_{n,:} \quad (H)$$
#
# A check worth making every time: each gradient has the shape of its parameter.

# %%
def backward_by_hand(params, cache, forget_sigmoid_slope=False):
    """dL/dW1, dL/db1, dL/dW2, dL/db2 from the formulas above.

    forget_sigmoid_slope=True plants a classic bug: step 4 is skipped (the code layer is treated
    as if it had no sigmoid). The checks below must catch it.
    """
    x, z, r = cache["x"], cache["z"], cache["r"]
    n = x.shape[0]
    delta_a = (r - x) / n  # step 1: dL/dA
    grad_w2 = delta_a.T @ z  # step 2
    grad_b2 = delta_a.sum(axis=0)
    delta_z = delta_a @ params["W2"]  # step 3: dL/dZ
    if forget_sigmoid_slope:
        delta_u = delta_z  # the bug
    else:
        delta_u = delta_z * z * (1.0 - z)  # step 4: dL/dU
    grad_w1 = delta_u.T @ x  # step 5
    grad_b1 = delta_u.sum(axis=0)
    return {"W1": grad_w1, "b1": grad_b1, "W2": grad_w2, "b2": grad_b2}


_, cache = forward_by_hand(params, batch)
hand = backward_by_hand(params, cache)
for name, value in hand.items():
    print(f"dL/d{name}: shape {value.shape} (parameter {params[name].shape})")

# %% [markdown]
# ## The same gradient by autograd
#
# tinygen records every operation of `model.loss(x)` in a graph. `loss.backward()` walks it from
# the loss back to the parameters, and leaves $\partial L / \partial \theta$ in each parameter's
# `.grad`. Our hand formulas should agree to rounding error (float64: about $10^{-16}$ relative).
# Here they agree to the last bit: autograd runs the very same matrix products.

# %%
model.zero_grad()
loss, _ = model.loss(tg.tensor(batch, dtype="float64"))
loss.backward()

autograd = {
    "W1": model.encoder[0].weight.grad.numpy(),
    "b1": model.encoder[0].bias.grad.numpy(),
    "W2": model.decoder.weight.grad.numpy(),
    "b2": model.decoder.bias.grad.numpy(),
}
print(f"{'parameter':>9}  {'largest |gradient|':>18}  {'largest |hand - autograd|':>25}")
for name in hand:
    difference = np.max(np.abs(hand[name] - autograd[name]))
    print(f"{name:>9}  {np.max(np.abs(autograd[name])):18.3e}  {difference:25.3e}")

# %% [markdown]
# ## The graph autograd recorded
#
# `tinygen.graph(loss)` prints the graph as a tree, from the loss (top) down to the leaves: the
# input and the parameters. Naming a tensor (`t.name = ...`) labels its leaf. Read it bottom-up
# and you find the forward pass: `MatMul` with the transposed weight, `Add` the bias, `Sigmoid`,
# again for the decoder, then `Softplus(A) - X * A`, summed and multiplied by $1/N$. The node
# `(see #5)` is the logits $A$ used a second time: autograd adds up the gradients that arrive
# along both uses (that is the sum in the multivariable chain rule). Backward visits the nodes
# in this order, top to bottom, each node turning the gradient of its output into gradients of
# its inputs: the steps 1 to 5 above, one op at a time.

# %%
for name, parameter in model.named_parameters():
    parameter.name = name
x_small = tg.tensor(batch[:2], dtype="float64")
x_small.name = "x"
small_loss, _ = model.loss(x_small)
print(tg.graph(small_loss))

# %% [markdown]
# ## Finite differences: the check that needs no derivation
#
# A derivative is a limit, and a small step approximates it. The **central difference**
#
# $$\frac{\partial L}{\partial \theta_k} \approx
#   \frac{L(\theta + \varepsilon e_k) - L(\theta - \varepsilon e_k)}{2 \varepsilon}$$
#
# has an error of order $\varepsilon^2$ (the $\varepsilon^1$ terms of the two Taylor series
# cancel). It costs two forward passes per parameter, far too slow for training but perfect for
# testing a backward pass. With $\varepsilon = 10^{-6}$ it needs float64: in float32 the
# difference $L(\theta + \varepsilon) - L(\theta - \varepsilon)$ would be lost in rounding.
#
# We compute it ourselves for a sample of entries of every parameter, and compare it with the
# correct hand gradient and with the planted bug.

# %%
def central_difference(params, x, name, index, eps=1e-6):
    """(L(theta + eps e_k) - L(theta - eps e_k)) / (2 eps) for one entry k of params[name]."""
    original = params[name][index]
    params[name][index] = original + eps
    loss_plus, _ = forward_by_hand(params, x)
    params[name][index] = original - eps
    loss_minus, _ = forward_by_hand(params, x)
    params[name][index] = original  # put it back
    return (loss_plus - loss_minus) / (2 * eps)


wrong = backward_by_hand(params, cache, forget_sigmoid_slope=True)
entries_per_parameter = pick(100, 30)
numeric, correct_sample, wrong_sample, which = [], [], [], []
for name, value in params.items():
    n_entries = min(entries_per_parameter, value.size)
    flat_indices = rng.choice(value.size, size=n_entries, replace=False)
    for flat in flat_indices:
        index = np.unravel_index(flat, value.shape)
        numeric.append(central_difference(params, batch, name, index))
        correct_sample.append(hand[name][index])
        wrong_sample.append(wrong[name][index])
        which.append(name)
numeric, correct_sample, wrong_sample = map(np.array, (numeric, correct_sample, wrong_sample))
which = np.array(which)

for name in params:
    rows = which == name
    error_correct = np.max(np.abs(correct_sample[rows] - numeric[rows]))
    error_wrong = np.max(np.abs(wrong_sample[rows] - numeric[rows]))
    print(f"{name}: {rows.sum():3d} entries, largest |hand - numeric| {error_correct:.1e}, "
          f"with the bug {error_wrong:.1e}")

# %% [markdown]
# The correct formulas agree to about $10^{-7}$ (the $\varepsilon^2$ error and rounding, on
# gradients of size up to 1); the bug shows up in $W_1$ and $b_1$, and only there: steps 1 to 3
# (the decoder's gradients) do not depend on step 4. A gradient check localises a mistake to the
# layer that has it. The size of the error is telling too: at initialisation the codes are close
# to $1/2$, where $\sigma' = 1/4$, so forgetting the slope makes the encoder's gradients about 4
# times too large.
#
# ## `tinygen.gradcheck`: the same test as a one-liner
#
# `tinygen.gradcheck(fn, inputs)` does this for any function of tensors: it compares autograd's
# gradient of `fn` with central differences, for every element of every input that requires a
# gradient (or a random sample of `max_elements` of them), and raises `GradcheckError` with the
# worst mismatches when they disagree. First on tinygen's own loss: the parameters become the
# inputs of a function (float64 leaves with `requires_grad=True`).

# %%
def tensors_for(params):
    """Fresh float64 leaves holding the parameters, for gradcheck to differentiate."""
    return [tg.tensor(params[name], dtype="float64", requires_grad=True)
            for name in ("W1", "b1", "W2", "b2")]


def autoencoder_loss(x, w1, b1, w2, b2):
    """The loss written with tinygen ops (what model.loss computes), parameters as arguments."""
    z = nn.functional.sigmoid(nn.functional.linear(x, w1, b1))
    logits = nn.functional.linear(z, w2, b2)
    return nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="batchmean")


x_check = tg.tensor(batch, dtype="float64")
print("autograd passes gradcheck:",
      tg.gradcheck(autoencoder_loss, [x_check, *tensors_for(params)], max_elements=pick(200, 40)))

# %% [markdown]
# gradcheck can test our hand derivation too. A `Function` is one autograd op: its `forward`
# works on NumPy arrays, its `backward` receives $\partial(\text{final}) / \partial(\text{output})$
# and returns one gradient per input. Every op in tinygen is written this way; ours puts the
# whole network in one op, with the five hand-derived steps as its backward. The chain rule
# multiplies the incoming gradient (a scalar here) into each of ours.

# %%
class HandDerivedLoss(Function):
    """The autoencoder loss as one autograd op whose backward is backward_by_hand."""

    def forward(self, x, w1, b1, w2, b2, forget_sigmoid_slope=False):
        self.params = {"W1": w1, "b1": b1, "W2": w2, "b2": b2}
        self.forget_sigmoid_slope = forget_sigmoid_slope
        loss, self.cache = forward_by_hand(self.params, x)
        return np.array(loss)

    def backward(self, grad):
        g = backward_by_hand(self.params, self.cache, self.forget_sigmoid_slope)
        gradients = [grad * tg.tensor(g[name], dtype="float64")
                     for name in ("W1", "b1", "W2", "b2")]
        return (None, *gradients)  # None: no gradient for the input images x


def hand_loss(x, w1, b1, w2, b2):
    return HandDerivedLoss.apply(x, w1, b1, w2, b2)


def buggy_hand_loss(x, w1, b1, w2, b2):
    return HandDerivedLoss.apply(x, w1, b1, w2, b2, forget_sigmoid_slope=True)


print("hand derivation passes gradcheck:",
      tg.gradcheck(hand_loss, [x_check, *tensors_for(params)], max_elements=pick(200, 40)))
try:
    tg.gradcheck(buggy_hand_loss, [x_check, *tensors_for(params)], max_elements=pick(200, 40))
    print("the bug was NOT caught (this should not happen)")
except tg.GradcheckError as error:
    print("the planted bug is caught. gradcheck says:")
    print(error)

# %% [markdown]
# In the table, input 1 is $W_1$ and input 2 is $b_1$ (input 0 is $x$): the check points at the
# encoder, as our own comparison did.
#
# The figure shows both checks. Left: every entry of every gradient, hand (vertical) against
# autograd (horizontal); all points lie on the diagonal. Right: the sampled entries against
# their finite differences, for the correct formulas and for the bug, whose encoder entries
# leave the diagonal.

# %%
fig = plot.new_figure(10, 4.4)
left, right = fig.subplots(1, 2)
for k, name in enumerate(params):
    left.scatter(autograd[name].ravel(), hand[name].ravel(), s=6, color=f"C{k}",
                 label=f"{name} ({hand[name].size} entries)")
limits = [min(v.min() for v in hand.values()), max(v.max() for v in hand.values())]
left.plot(limits, limits, color="gray", lw=0.8, zorder=0)
left.set_xlabel("autograd gradient (loss.backward())")
left.set_ylabel("hand-derived gradient")
left.set_title("hand derivation vs autograd: every entry")
left.legend(fontsize=8)

right.scatter(numeric, correct_sample, s=10, color="C2", label="hand, correct")
encoder = (which == "W1") | (which == "b1")
right.scatter(numeric[encoder], wrong_sample[encoder], s=10, color="C3", marker="x",
              label="hand, sigmoid slope forgotten (W1, b1)")
limits = [numeric.min(), numeric.max()]
right.plot(limits, limits, color="gray", lw=0.8, zorder=0)
right.set_xlabel("central difference (L(θ+ε) − L(θ−ε)) / 2ε")
right.set_ylabel("hand-derived gradient")
right.set_title("finite differences catch the bug")
right.legend(fontsize=8)
plot.save(fig, figure("00_gradient_check.png"))

# %% [markdown]
# ## Gradients of gradients: `create_graph=True`
#
# `tinygen.grad(output, inputs)` returns gradients without writing `.grad`. Normally the backward
# pass runs outside the graph (its result is a plain number with no history). With
# `create_graph=True` every backward op is itself recorded, so the gradient is a function of the
# inputs that autograd can differentiate again.
#
# **A second derivative.** For $f(u) = \sigma(u)$ we know $f' = \sigma(1 - \sigma)$ and
# $f'' = \sigma(1 - \sigma)(1 - 2\sigma)$. Since $f$ acts elementwise, the gradient of
# $\sum_k f(u_k)$ with respect to $u$ is the vector of $f'(u_k)$; differentiating the sum of
# that again gives the $f''(u_k)$.

# %%
u = tg.tensor(np.linspace(-6, 6, 13), dtype="float64", requires_grad=True)
(first,) = tg.grad(nn.functional.sigmoid(u).sum(), u, create_graph=True)
(second,) = tg.grad(first.sum(), u)

s = sigmoid(u.numpy())
print("first derivative graph recorded:", first.requires_grad)
first_exact = s * (1 - s)
second_exact = s * (1 - s) * (1 - 2 * s)
print(f"largest |f'  - s(1-s)|       = {np.max(np.abs(first.numpy() - first_exact)):.1e}")
print(f"largest |f'' - s(1-s)(1-2s)| = {np.max(np.abs(second.numpy() - second_exact)):.1e}")

# %% [markdown]
# **The contractive penalty.** Lesson 06 penalises how fast the code moves when the input
# moves: with $J_n = \partial z_n / \partial x_n$ ($H \times D$, the Jacobian of the encoder at
# image $n$),
#
# $$\Omega = \frac{1}{N} \sum_n \lVert J_n \rVert_F^2
#   = \frac{1}{N} \sum_n \sum_{i=1}^{H} \lVert \nabla_x z_{ni} \rVert^2 .$$
#
# Row $i$ of $J_n$ is a gradient, $\nabla_x z_{ni}$: one `tinygen.grad` per code unit $i$ gives
# it for the whole batch at once (image $n$'s code depends only on image $n$, so the gradient
# of $\sum_n z_{ni}$ with respect to $X$ has $\nabla_x z_{ni}$ in row $n$). To *train* with
# $\Omega$ we need $\partial \Omega / \partial W_1$: a derivative of a derivative, so the inner
# gradients must be taken with `create_graph=True`.
#
# For our sigmoid encoder there is also a closed form to check against: $\partial z_{ni} /
# \partial x_{nj} = z_{ni}(1 - z_{ni}) (W_1)_{ij}$, so
# $\lVert J_n \rVert_F^2 = \sum_i \big(z_{ni}(1 - z_{ni})\big)^2 \sum_j (W_1)_{ij}^2$.

# %%
def contractive_penalty_by_autograd(x, w1, b1, create_graph=True):
    """(1/N) sum_n ||dz_n/dx_n||_F^2, one gradient per code unit."""
    x = x.detach().requires_grad_(True)
    z = nn.functional.sigmoid(nn.functional.linear(x, w1, b1))
    total = None
    for i in range(z.shape[1]):
        (row_i,) = tg.grad(z[:, i].sum(), x, create_graph=create_graph)  # (N, D): grad_x z_ni
        term = (row_i * row_i).sum()
        total = term if total is None else total + term
    return total / x.shape[0]


def contractive_penalty_closed_form(x, w1, b1):
    z = nn.functional.sigmoid(nn.functional.linear(x, w1, b1))
    slope = z * (1 - z)  # sigma'(u), (N, H)
    return ((slope * slope) @ (w1 * w1).sum(axis=1)).sum() / x.shape[0]


w1, b1, _, _ = tensors_for(params)
penalty = contractive_penalty_by_autograd(x_check, w1, b1)
(grad_penalty,) = tg.grad(penalty, w1)  # differentiates through the inner backward passes

w1_again, b1_again, _, _ = tensors_for(params)
penalty_closed = contractive_penalty_closed_form(x_check, w1_again, b1_again)
(grad_closed,) = tg.grad(penalty_closed, w1_again)

print(f"penalty: autograd {penalty.item():.10f}, closed form {penalty_closed.item():.10f}")
print(f"largest |dOmega/dW1 (double backprop) - dOmega/dW1 (closed form)| = "
      f"{np.max(np.abs(grad_penalty.numpy() - grad_closed.numpy())):.1e}")

try:
    flat_penalty = contractive_penalty_by_autograd(x_check, w1, b1, create_graph=False)
    tg.grad(flat_penalty, w1)
except RuntimeError as error:
    print("without create_graph=True the penalty cannot be differentiated:")
    print("   ", error)

# %% [markdown]
# ## Training by hand
#
# With the gradient in hand, **stochastic gradient descent** is three lines: draw a mini-batch,
# compute $\nabla_\theta L$ on it, and step $\theta \leftarrow \theta - \eta \nabla_\theta L$ with
# learning rate $\eta$. We train the autoencoder on MNIST twice from the same starting weights,
# with the same batches in the same order, side by side:
#
# * **by hand**: NumPy only, `forward_by_hand` and `backward_by_hand`;
# * **by tinygen**: `model.loss(x)`, `loss.backward()` and `tinygen.optim.SGD`.
#
# Training runs in float32 (the usual precision: half the memory, twice the speed of float64).
# If our derivation is right the two runs are the same computation, up to rounding: the two
# programs add up the same numbers in a different order (tinygen computes the softplus its own
# way, for one), so their float32 results differ in the last bits. After every step we record
# the largest difference between the two sets of weights.

# %%
model.float()
hand_params = parameters_as_arrays(model)  # float32 copies of the same starting weights
learning_rate = 0.5
optimizer = tg.optim.SGD(model.parameters(), lr=learning_rate)
batch_size = 100
epochs = pick(5, 2)
train_images = images.astype(np.float32)
steps_per_epoch = len(train_images) // batch_size


def largest_weight_difference(model, hand_params):
    tinygen_params = parameters_as_arrays(model)
    return max(np.max(np.abs(tinygen_params[name] - hand_params[name])) for name in hand_params)


hand_losses, tinygen_losses, weight_differences = [], [], []
hand_seconds = tinygen_seconds = 0.0
for epoch in range(epochs):
    order = rng.permutation(len(train_images))  # a new random order of the images every epoch
    for step in range(steps_per_epoch):
        x = train_images[order[step * batch_size:(step + 1) * batch_size]]

        # By hand: plain NumPy.
        tick = time.perf_counter()
        loss, cache = forward_by_hand(hand_params, x)
        gradients = backward_by_hand(hand_params, cache)
        for name in hand_params:
            hand_params[name] -= learning_rate * gradients[name]  # theta <- theta - eta grad
        hand_losses.append(loss)
        hand_seconds += time.perf_counter() - tick

        # By tinygen: the same step through autograd and an optimizer.
        tick = time.perf_counter()
        loss, _ = model.loss(tg.tensor(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tinygen_losses.append(loss.item())
        tinygen_seconds += time.perf_counter() - tick

        weight_differences.append(largest_weight_difference(model, hand_params))

last_epoch = slice(-steps_per_epoch, None)
print(f"{epochs} epochs x {steps_per_epoch} steps of {batch_size} images, "
      f"learning rate {learning_rate}")
print(f"loss (nats per image): first step {hand_losses[0]:.1f}; mean over the last epoch "
      f"{np.mean(hand_losses[last_epoch]):.2f} by hand, "
      f"{np.mean(tinygen_losses[last_epoch]):.2f} by tinygen")
for step in (1, 10, 100, 1000, len(weight_differences)):
    if step <= len(weight_differences):
        difference = weight_differences[step - 1]
        print(f"largest weight difference after {step:5d} steps: {difference:.1e}")
print(f"time: by hand {hand_seconds:.1f} s, by tinygen {tinygen_seconds:.1f} s")

test_images, test_labels = mnist("test", n=pick(10000, 500))
test_loss, _ = forward_by_hand(hand_params, test_images)
print(f"test loss of the hand-trained network: {test_loss:.2f} nats per image")

# %% [markdown]
# The figure shows the loss per step for both runs (the thick lines are running means over 20
# steps) and, on the right, the weight difference. The loss falls fast in the first steps, as
# the decoder biases learn the average digit; then the code starts carrying information about
# each image and the loss keeps falling slowly. The two runs start identical up to float32
# rounding (about $10^{-7}$) but the difference **grows exponentially**: SGD with a large
# learning rate is a chaotic process, and it amplifies any difference, however small, as a ball
# rolling down a bumpy hill ends somewhere else after a tiny nudge. After a few hundred steps
# the two networks have different weights, yet they learn equally well: their loss curves lie on
# top of each other. (It is also why a GPU run never reproduces a CPU run bit for bit.)

# %%
def running_mean(values, width=20):
    values = np.asarray(values)
    return np.convolve(values, np.ones(width) / width, mode="valid")


fig = plot.new_figure(11, 4)
loss_axes, difference_axes = fig.subplots(1, 2, width_ratios=[3, 2])
steps = np.arange(1, len(hand_losses) + 1)
loss_axes.plot(steps, hand_losses, color="C0", alpha=0.25, lw=0.6)
loss_axes.plot(steps[19:], running_mean(hand_losses), color="C0", lw=2.5, label="by hand (NumPy)")
loss_axes.plot(steps[19:], running_mean(tinygen_losses), color="C1", lw=1, ls="--",
               label="by tinygen (autograd + optim.SGD)")
loss_axes.set_yscale("log")
loss_axes.set_yticks([100, 150, 200, 300, 500], labels=["100", "150", "200", "300", "500"])
loss_axes.minorticks_off()
loss_axes.set_xlabel("SGD step")
loss_axes.set_ylabel("loss L (nats per image)")
loss_axes.set_title(f"{n_hidden}-unit autoencoder on MNIST, SGD, learning rate {learning_rate}")
loss_axes.grid(True, alpha=0.3)
loss_axes.legend()

difference_axes.plot(steps, weight_differences, color="C3")
difference_axes.set_xscale("log")
difference_axes.set_yscale("log")
difference_axes.set_xlabel("SGD step")
difference_axes.set_ylabel("largest |weight by hand − weight by tinygen|")
difference_axes.set_title("float32 rounding, amplified by SGD")
difference_axes.grid(True, alpha=0.3)
plot.save(fig, figure("00_loss_curve.png"))

# %% [markdown]
# And what the hand-trained network does: test digits (top row) and their reconstructions
# $R = \sigma(A)$ (bottom row), from a code of only `n_hidden` numbers per image.

# %%
shown = np.array([np.flatnonzero(test_labels == digit)[0] for digit in range(10)])
_, cache = forward_by_hand(hand_params, test_images[shown])
plot.image_grid(np.concatenate([test_images[shown], cache["r"]]), figure("00_reconstructions.png"),
                nrow=10)

print(f"elapsed {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. **Plant your own bug.** In `backward_by_hand`, drop the `/ n` in step 1, or write
#    `delta_z * z` in step 4 (half of the sigmoid's slope). Which parameters does the check flag,
#    and by what factor are their gradients off?
# 2. **Why float64?** Run `central_difference` on float32 copies of `params` with `eps=1e-6`,
#    then with `eps=1e-3`. How far from the hand gradient are the estimates, and why does a larger
#    step help in float32?
# 3. **Change the activation.** Replace the code layer's sigmoid by tanh in `forward_by_hand`,
#    `backward_by_hand` (step 4 becomes $\Delta_U = \Delta_Z \odot (1 - Z^2)$) and in the model
#    (`nn.Tanh()`). Do the checks still pass?
# 4. **Learning rate.** Set `learning_rate` to 0.05 and to 5. How does the loss curve change? At
#    which value does training stop making progress (or diverge)?
# 5. **A cheaper penalty.** In `contractive_penalty_by_autograd`, replace the loop over code units
#    by one `tg.grad(z, x, grad_outputs=v, create_graph=True)` with `v` a random normal matrix:
#    $\lVert J^\top v \rVert^2$ is an unbiased estimate of $\lVert J \rVert_F^2$. Average 10 draws
#    and compare with the closed form.
