# %% [markdown]
# # 12: The accelerated core: how tinygen's convolutions run, and how fast
#
# The convolutional autoencoders, VAEs and the DCGAN of this course spend almost all their time
# in one operation: the 2-D convolution (and its mirror image, the transposed convolution). This
# lesson opens the box. We follow one convolution from its definition (seven nested loops) to
# the trick every framework uses, **im2col**, which turns it into a single matrix product
# (a GEMM), and see how the two gradients of a convolution are matrix products too, so that three
# kernels serve `Conv2d` and `ConvTranspose2d`, forward and backward. Then we read the two
# accelerated versions of those kernels, a parallel CPU one compiled by **Numba** and a GPU one
# written as a **tiled implicit GEMM** in CUDA, check that every backend gives the same numbers,
# and time them.
#
# Runs in about 4 s on a 2-core CPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 3 s.
# (The very first run on a machine also compiles the Numba kernels: about 20 s more, once, for
# float32 and float64. The machine code is then cached on disk, in `tinygen/kernels/__pycache__`,
# and later runs load it in a fraction of a second.)

# %%
import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from matplotlib.patches import Rectangle

import tinygen as tg
from tinygen import kernels, nn, plot
from tinygen.kernels import numpy_conv
from tinygen.ops import conv as conv_ops
from course import figure, pick

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)
F = nn.functional

# %% [markdown]
# ## The convolution, by definition
#
# A batch of images $x$ has shape $(N, C, H, W)$: $N$ images of $C$ channels of $H \times W$
# pixels. A convolution layer holds $O$ filters, the weight $w$ of shape $(O, C, k_H, k_W)$, and
# slides each filter over the image in steps of $s$ pixels (the **stride**), after surrounding the
# image with $P$ rows and columns of zeros (the **padding**); call the padded image $\tilde x$.
# Output pixel $(p, q)$ of filter $o$ is the dot product of the filter with the window under it:
#
# $$y_{n,o,p,q} = \sum_{c=0}^{C-1} \sum_{i=0}^{k_H-1} \sum_{j=0}^{k_W-1}
#   \tilde x_{n,\,c,\,p s + i,\,q s + j}\; w_{o,c,i,j},
#   \qquad OH = \left\lfloor \frac{H + 2P - k_H}{s} \right\rfloor + 1$$
#
# (indices counted from 0, as in the code; $OW$ likewise). Deep-learning "convolution" does not
# flip the filter; mathematicians call it a cross-correlation. The DCGAN paper's
# "fractionally-strided convolution" is the transposed convolution we meet below.
#
# Written as code, that is seven nested loops: four over the output entry $(n, o, p, q)$ and
# three over the sum $(c, i, j)$. It costs $N \cdot O \cdot OH \cdot OW \cdot
# C \cdot k_H \cdot k_W$ multiply-adds, each one several Python operations.

# %%
def conv2d_seven_loops(x, w, stride, padding):
    """The definition, loop by loop. x (N, C, H, W), w (O, C, kH, kW) -> y (N, O, OH, OW)."""
    n_images, n_channels, height, width = x.shape
    n_filters, _, kernel_h, kernel_w = w.shape
    padded = np.zeros((n_images, n_channels, height + 2 * padding, width + 2 * padding), x.dtype)
    padded[:, :, padding:padding + height, padding:padding + width] = x
    out_h = (height + 2 * padding - kernel_h) // stride + 1
    out_w = (width + 2 * padding - kernel_w) // stride + 1
    y = np.zeros((n_images, n_filters, out_h, out_w), x.dtype)
    for n in range(n_images):
        for o in range(n_filters):
            for p in range(out_h):
                for q in range(out_w):
                    total = 0.0
                    for c in range(n_channels):
                        for i in range(kernel_h):
                            for j in range(kernel_w):
                                pixel = padded[n, c, p * stride + i, q * stride + j]
                                total += pixel * w[o, c, i, j]
                    y[n, o, p, q] = total
    return y

# %% [markdown]
# ## im2col: a convolution is one matrix product
#
# Look at the sum again: for a fixed output pixel it is the dot product of the filter, flattened
# to a vector of length $C k_H k_W$, with the window of the image under it, flattened the same
# way. So copy every window into a column of one big matrix, the **im2col** ("image to columns")
# matrix, with $C k_H k_W$ rows and one column per output pixel, $N \cdot OH \cdot OW$ of them:
#
# $$\text{cols}_{(c,i,j),\,(n,p,q)} = \tilde x_{n,\,c,\,p s + i,\,q s + j} .$$
#
# Flatten the weight to $W_{\text{mat}}$, of shape $O \times C k_H k_W$ (one filter per row).
# Then all outputs at once are one matrix product, a **GEMM** (GEneral Matrix Multiply, the
# routine every BLAS library optimises to the last cycle):
#
# $$Y_{\text{mat}} = W_{\text{mat}} \cdot \text{cols}
#   \qquad (O \times C k_H k_W) \cdot (C k_H k_W \times N \cdot OH \cdot OW) .$$
#
# A tiny worked example: one $4 \times 4$ image holding $0, \dots, 15$ and one $2 \times 2$
# filter, stride 1, no padding. There are $3 \times 3$ windows, so cols is $4 \times 9$: column
# $(p, q)$ is window $(p, q)$ read row by row. `numpy_conv.im2col` builds it.

# %%
image = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
kernel = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])  # (O, C, kH, kW) = (1, 1, 2, 2)
cols = numpy_conv.im2col(image, (2, 2), (1, 1), (0, 0))  # kernel size, stride, padding
print("the image x[0, 0]:")
print(image[0, 0].astype(int))
print(f"\nits im2col matrix, shape {cols.shape}: rows (c, i, j), one column per window (p, q)")
print("        " + "".join(f"  ({p},{q})" for p in range(3) for q in range(3)))
for row, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    print(f"(0,{i},{j})  " + "".join(f"{v:7.0f}" for v in cols[row]))

weight_matrix = kernel.reshape(1, -1)  # (O, C*kH*kW) = (1, 4): [1, 2, 3, 4]
y_by_gemm = (weight_matrix @ cols).reshape(1, 1, 3, 3)
y_by_loops = conv2d_seven_loops(image, kernel, stride=1, padding=0)
print(f"\nW_mat = {weight_matrix.astype(int).tolist()};  y = W_mat @ cols, as a 3 x 3 image:")
print(y_by_gemm[0, 0].astype(int))
print("the same as the seven loops:", np.array_equal(y_by_gemm, y_by_loops))

# %% [markdown]
# Each pixel appears in up to $k_H k_W$ columns (pixel 5 is in four; at stride $s$, about
# $k_H k_W / s^2$), so cols is larger than the image: it spends memory to gain speed. Column 5,
# window $(1, 2)$, is highlighted in the figure: its four pixels, its column of cols, and the
# output it becomes.

# %%
def draw_matrix(ax, values, title, highlight=None, cmap="Blues"):
    """A small matrix as coloured cells with its numbers written in."""
    ax.imshow(values, cmap=cmap, vmin=values.min() - 0.3 * np.ptp(values), vmax=values.max())
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=9)
    if highlight is not None:
        (r0, c0), (height, width) = highlight
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), width, height, fill=False,
                               edgecolor="C3", lw=3))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)


fig = plot.new_figure(11, 3.2)
axes = fig.subplots(1, 4, width_ratios=[4, 1.3, 9, 3])
draw_matrix(axes[0], image[0, 0], "image x (4 x 4)", highlight=((1, 2), (2, 2)))
draw_matrix(axes[1], kernel[0, 0], "filter w", cmap="Oranges")
draw_matrix(axes[2], cols, "im2col matrix cols (4 x 9):\none column per window",
            highlight=((0, 5), (4, 1)))
draw_matrix(axes[3], y_by_gemm[0, 0], "y = W_mat @ cols\n(3 x 3)", highlight=((1, 2), (1, 1)),
            cmap="Greens")
plot.save(fig, figure("12_im2col.png"))

# %% [markdown]
# `numpy_conv.im2col` builds cols without a loop over pixels: for each kernel offset $(i, j)$
# one strided slice of the padded image gives row $(c, i, j)$ for every window at once, so the
# Python loop runs only $k_H k_W$ times. The product itself is `w.reshape(O, -1) @ cols`, and
# NumPy hands it to BLAS, which uses vector instructions and all the cores.
#
# ## The gradients are matrix products too
#
# With $Y_{\text{mat}} = W_{\text{mat}} \cdot \text{cols}$ and an upstream gradient
# $G = \partial L / \partial Y_{\text{mat}}$, the matrix-product rule (lesson 00, step 2) gives
#
# $$\frac{\partial L}{\partial W_{\text{mat}}} = G \cdot \text{cols}^\top, \qquad
#   \frac{\partial L}{\partial\, \text{cols}} = W_{\text{mat}}^\top \cdot G .$$
#
# The first is the weight gradient. The second is a gradient for every *copy* of a pixel in cols;
# since pixel $x_{n,c,h,v}$ was copied into several columns, its gradient is the sum over its
# copies. That scatter-add is **col2im**, the adjoint of im2col. So tinygen has three kernels,
# each one GEMM plus an im2col or a col2im:
#
# | kernel | computes | as |
# |---|---|---|
# | `conv2d(x, w)` | $y$ | $W_{\text{mat}} \cdot \text{im2col}(x)$ |
# | `conv2d_grad_input(g, w)` | $\partial L/\partial x$ | $\text{col2im}(W_{\text{mat}}^\top \cdot G)$ |
# | `conv2d_grad_weight(x, g)` | $\partial L/\partial w$ | $G \cdot \text{im2col}(x)^\top$ |
#
# **The transposed convolution** (`ConvTranspose2d`, the decoder's and generator's upsampling
# layer) is not a new operation: it *is* `conv2d_grad_input`. The gradient of a stride-2
# convolution maps a small $7 \times 7$ gradient back to the $14 \times 14$ input, which is
# exactly the upsampling a generator wants, with $w$ as its learned weight. Each input pixel
# "paints" a copy of the filter, scaled by its value, onto the output, $s$ pixels apart;
# overlapping copies add up. A tiny example, stride 2, $2 \times 2$ filter, so the copies just
# touch:

# %%
small = tg.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])  # (1, 1, 2, 2)
filter_2x2 = tg.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (C_in, C_out, kH, kW)
painted = F.conv_transpose2d(small, filter_2x2, stride=2)
print("input [[1, 0], [0, 2]], filter [[1, 2], [3, 4]], stride 2 -> 4 x 4 output:")
print(painted.numpy()[0, 0].astype(int))

# %% [markdown]
# Since all three kernels are bilinear (linear in each argument), the gradient of any of them is
# again one of the three, with the roles of the arguments swapped. tinygen's ops
# (`tinygen/ops/conv.py`) are wired that way: the backward of `Conv2d` calls `ConvGradInput`
# and `ConvGradWeight`, and the backward of `ConvGradInput` (the transposed convolution) calls
# `Conv2d` and `ConvGradWeight`:

# %%
print(inspect.getsource(conv_ops.ConvGradInput.backward))

# %% [markdown]
# Three checks that the wiring is right, on a stride-2, padding-1 layer in float64:
#
# 1. the **adjoint identity**: for any $x, w, g$,
#    $\langle \text{conv}(x, w), g\rangle = \langle x, \text{grad\_input}(g, w)\rangle
#    = \langle w, \text{grad\_weight}(x, g)\rangle$ (three ways to compute
#    $\sum_{n,o,p,q,c,i,j} g\, \tilde x\, w$);
# 2. `tinygen.gradcheck` (finite differences) on `conv2d` and `conv_transpose2d`;
# 3. `tinygen.gradgradcheck`: their gradients can be differentiated again (a WGAN-GP penalty or
#    a contractive penalty on a conv encoder needs that).

# %%
stride, padding = (2, 2), (1, 1)
x64 = rng.standard_normal((2, 3, 6, 6))
w64 = rng.standard_normal((4, 3, 4, 4))
y64 = numpy_conv.conv2d(x64, w64, stride, padding)
g64 = rng.standard_normal(y64.shape)
print("<conv(x, w), g>           =", np.vdot(y64, g64))
grad_x64 = numpy_conv.conv2d_grad_input(g64, w64, x64.shape, stride, padding)
grad_w64 = numpy_conv.conv2d_grad_weight(x64, g64, w64.shape, stride, padding)
print("<x, grad_input(g, w)>     =", np.vdot(x64, grad_x64))
print("<w, grad_weight(x, g)>    =", np.vdot(w64, grad_w64))

x_leaf = tg.tensor(x64, dtype="float64", requires_grad=True)
w_leaf = tg.tensor(w64, dtype="float64", requires_grad=True)
print("gradcheck conv2d:", tg.gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1),
                                        [x_leaf, w_leaf], max_elements=pick(60, 15)))
print("gradcheck conv_transpose2d:",
      tg.gradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
                   [x_leaf, tg.tensor(rng.standard_normal((3, 2, 4, 4)), dtype="float64",
                                      requires_grad=True)], max_elements=pick(60, 15)))
print("gradgradcheck conv2d:", tg.gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1),
                                                [x_leaf, w_leaf], max_elements=pick(30, 8)))

# %% [markdown]
# ## Numba: the loops compiled, in parallel
#
# NumPy's im2col is already loop-free in Python, but it moves data in several passes (pad, copy
# each offset, transpose, reshape), each one a trip through memory. **Numba** compiles a Python
# function that uses only loops, arithmetic and NumPy arrays to machine code (through LLVM, the
# compiler behind clang), so that a plain loop runs at C speed:
#
# * `@njit` ("no Python") compiles the function the first time it is called, for the argument
#   types it sees (float32 and float64 get separate machine code);
# * `parallel=True` with `prange` in place of `range` splits that loop's iterations over a pool
#   of threads, one per core; iterations must not write to the same place;
# * `cache=True` writes the machine code next to the source, in `__pycache__`, so the next
#   process loads it instead of compiling again.
#
# tinygen's Numba backend (`tinygen/kernels/numba_conv.py`) keeps the GEMM in BLAS, which is
# already at the machine's peak, and compiles the data movement around it. Here is its im2col:
# one task per row $(c, i, j)$ of cols, each filling its row in one pass over the windows,
# writing zeros where a window hangs over the border (no padded copy of the image).

# %%
numba_kernels = kernels.load("numba") if "numba" in tg.backend.available() else None
if numba_kernels is not None:
    print(inspect.getsource(numba_kernels._im2col.py_func))  # .py_func: the Python source
else:
    print("numba is not installed here: the numba backend is unavailable")

# %% [markdown]
# col2im runs in parallel over the (image, channel) planes instead: two windows can add into
# the same pixel, so the rows of cols would race, but two planes never share a pixel.
#
# ## CUDA: a tiled implicit GEMM
#
# On a GPU, tinygen never builds cols at all (`tinygen/kernels/cuda_conv.py`). A GPU runs
# thousands of threads at once; they are grouped in **blocks** (here $16 \times 16 = 256$
# threads), and the blocks in a **grid** that covers the output. Each thread computes one entry
# of the product $\text{out} = A \cdot B$ ($M \times K$ times $K \times P$): in the forward,
# $A = W_{\text{mat}}$, $B = \text{cols}$, and thread $(\text{row}, \text{col})$ owns
# $y$ for filter row and output pixel col.
#
# A thread that read its whole row of $A$ and column of $B$ from the GPU's main memory would
# read each entry $16$ times over (once per thread of its block that needs it). Instead the
# block walks along $K$ in steps of 16. At each step every thread copies **one** entry of $A$
# and one of $B$ into two $16 \times 16$ tiles in **shared memory** (fast on-chip memory the
# block shares), the block waits at a barrier (`cuda.syncthreads()`), then every thread adds up
# 16 products from the tiles. Main memory is read 16 times less. And the entry of $B$ =
# cols is computed on the spot from the image, `x[n, c, p*s + i - P, q*s + j - P]` or 0: the
# im2col matrix is only **implicit**. The same kernel serves all three products, with different
# functions `read_a`, `read_b` to fetch an entry and `write` to store one.
#
# The source (read from the file, so this works on a machine without a GPU):

# %%
def function_source(path, name):
    """The source of the top-level function `name` in the Python file at path."""
    text = Path(path).read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(text, node)
    raise KeyError(name)


cuda_file = Path(kernels.__file__).parent / "cuda_conv.py"
kernel_source = function_source(cuda_file, "_implicit_gemm")
start = kernel_source.index("    @cuda.jit")
print(textwrap.dedent(kernel_source[start:kernel_source.index("    return kernel")]))

# %% [markdown]
# A launch, for the forward of our DCGAN layer below: $M = O = 128$ filters, $P = N \cdot OH
# \cdot OW$ output pixels, so a grid of $\lceil P/16 \rceil \times 8$ blocks, one thread per
# output entry. (tinygen copies the arrays to the GPU and back at every call, which costs more
# than the kernel for small layers.)
#
# ## Every backend gives the same numbers
#
# `tinygen.backend.available()` lists the backends that can run here; `tinygen.backend.use(name)`
# switches to one, for the rest of the program or (as a context manager) inside a `with` block.
# Models never name a backend, so a network is the same program on every one. We run a
# convolution and a transposed convolution forward and backward through autograd on each
# backend, in float32, and compare with NumPy's results.

# %%
upstream_gradients = {}  # shape -> a fixed dL/dy of that shape, made once


def conv_forward_backward(x, w, transposed=False):
    """y = conv(x, w) (or the transposed conv, both stride 2, padding 1), then backward with a
    fixed upstream gradient dL/dy; returns (y, dL/dx, dL/dw) as arrays."""
    x_leaf = tg.tensor(x, requires_grad=True)
    w_leaf = tg.tensor(w, requires_grad=True)
    layer = F.conv_transpose2d if transposed else F.conv2d
    y = layer(x_leaf, w_leaf, stride=2, padding=1)
    if y.shape not in upstream_gradients:
        values = np.cos(np.arange(y.numpy().size, dtype=np.float32)).reshape(y.shape)
        upstream_gradients[y.shape] = tg.tensor(values)
    y.backward(upstream_gradients[y.shape])
    return y.numpy(), x_leaf.grad.numpy(), w_leaf.grad.numpy()


backends = tg.backend.available()
print("backends available here:", backends, "| default:", tg.backend.current())
check_x = rng.standard_normal((4, 8, 14, 14)).astype(np.float32)
check_w = rng.standard_normal((16, 8, 4, 4)).astype(np.float32) * 0.1
check_wt = rng.standard_normal((8, 16, 4, 4)).astype(np.float32) * 0.1
with tg.backend.use("numpy"):
    reference = {False: conv_forward_backward(check_x, check_w),
                 True: conv_forward_backward(check_x, check_wt, transposed=True)}
for name in [name for name in backends if name != "numpy"]:
    with tg.backend.use(name):
        for transposed, w in ((False, check_w), (True, check_wt)):
            results = conv_forward_backward(check_x, w, transposed)
            worst = max(np.max(np.abs(mine - expected)) / np.max(np.abs(expected))
                        for mine, expected in zip(results, reference[transposed]))
            layer = "conv_transpose2d" if transposed else "conv2d"
            print(f"{name:>6} {layer:>16}: y, dL/dx, dL/dw agree with numpy to {worst:.1e} "
                  f"(relative, float32)")

# %% [markdown]
# ## How fast?
#
# First the reason for im2col: the seven loops against `numpy_conv` on a tiny layer
# (2 images, 3 channels of $8 \times 8$, 4 filters of $3 \times 3$, the forward only).

# %%
def readable_time(seconds):
    """'12 min', '3.4 s' or '280 ms'."""
    if seconds > 60:
        return f"{seconds / 60:.0f} min"
    if seconds > 1:
        return f"{seconds:.1f} s"
    return f"{seconds * 1e3:.3g} ms"


def median_seconds(call, repeats):
    """The median wall time of `repeats` calls (the machine is noisy: the median ignores spikes)."""
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        call()
        times.append(time.perf_counter() - tick)
    return float(np.median(times))


tiny_x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
tiny_w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
tiny_y = numpy_conv.conv2d(tiny_x, tiny_w, (1, 1), (1, 1))
tiny_macs = 2 * 4 * 8 * 8 * 3 * 3 * 3  # N O OH OW C kH kW multiply-adds
tiny = {"seven loops": median_seconds(lambda: conv2d_seven_loops(tiny_x, tiny_w, 1, 1), pick(5, 2))}
for name in backends:
    kernel_module = kernels.load(name)
    kernel_module.conv2d(tiny_x, tiny_w, (1, 1), (1, 1))  # the first call may load compiled code
    tiny[name] = median_seconds(lambda: kernel_module.conv2d(tiny_x, tiny_w, (1, 1), (1, 1)),
                                pick(200, 50))
seconds_per_mac_loops = tiny["seven loops"] / tiny_macs
for name, seconds in tiny.items():
    print(f"tiny layer ({tiny_macs} multiply-adds), {name:>11}: {seconds * 1e3:8.3f} ms "
          f"({tiny['seven loops'] / seconds:7.0f}x faster than the loops)")
print(f"the loops: {seconds_per_mac_loops * 1e9:.0f} ns per multiply-add")

# %% [markdown]
# Now a real layer: the DCGAN discriminator's second convolution, `Conv2d(64, 128, 4, 2, 1)` on
# a batch of $64 \times 14 \times 14$ feature maps, and the generator's first transposed
# convolution, `ConvTranspose2d(128, 64, 4, 2, 1)` from $7 \times 7$ to $14 \times 14$. We time
# forward + backward (both gradients) through autograd on each backend, and estimate what the
# seven loops would need from their time per multiply-add.

# %%
batch = pick(64, 16)
layers = {
    "D2 Conv2d(64, 128, 4, 2, 1)": (False, (batch, 64, 14, 14), (128, 64, 4, 4)),
    "G1 ConvTranspose2d(128, 64, 4, 2, 1)": (True, (batch, 128, 7, 7), (128, 64, 4, 4)),
}
repeats = pick(7, 3)  # calls per backend and layer; the median is kept
timings = {}
for label, (transposed, x_shape, w_shape) in layers.items():
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.05).astype(np.float32)
    # Both layers have N * 128 * 7 * 7 * 64 * 4 * 4 multiply-adds per kernel, three kernels.
    macs = 3 * batch * 128 * 7 * 7 * 64 * 4 * 4
    timings[label] = {"seven loops (estimate)": macs * seconds_per_mac_loops}
    for name in backends:
        with tg.backend.use(name):
            conv_forward_backward(x, w, transposed)  # warm-up
            timings[label][name] = median_seconds(lambda: conv_forward_backward(x, w, transposed),
                                                  repeats)
    print(f"{label}, batch {batch}, forward + backward ({macs / 1e9:.2f} G multiply-adds):")
    for name, seconds in timings[label].items():
        speed = macs / seconds / 1e9
        print(f"   {name:>22}: {readable_time(seconds):>9}   {speed:7.3f} G multiply-adds/s")
    for name in backends:
        if name != "numpy":
            ratio = timings[label][name] / timings[label]["numpy"]
            print(f"   {name} / numpy time ratio: {ratio:.2f}")

# %% [markdown]
# The seven loops would take minutes for one training step of one layer; im2col + GEMM takes
# milliseconds: a factor of thousands, bought by letting BLAS do the arithmetic. Between NumPy and
# Numba the difference is far smaller, and it depends on the machine: both wait on the same BLAS
# product, and Numba only speeds up the data movement around it. `bench/conv.py` (which times
# each kernel many times, alternating the backends) found them to tie on an idle 2-core laptop,
# which is why tinygen's default on a CPU is `numpy` (it also never has to compile). Which one
# wins on your machine depends on its cores, its BLAS and what else is running: look at the
# ratios above, and run the lesson twice. On the tiny layer Numba loses to NumPy: waking its pool
# of threads costs more than the work they share. Timings on a shared machine are noisy: trust a
# ratio only when it is large or repeats. A GPU is where the next factor of a hundred lives.

# %%
fig = plot.new_figure(11, 4)
tiny_axes, layer_axes = fig.subplots(1, 2, width_ratios=[2, 3])
names = list(tiny)
tiny_axes.bar(names, [tiny[n] * 1e3 for n in names], color=[f"C{k}" for k in range(len(names))])
tiny_axes.set_yscale("log")
tiny_axes.set_ylabel("forward time (ms, log scale)")
tiny_axes.set_title(f"tiny layer, {tiny_macs} multiply-adds")
for k, n in enumerate(names):
    tiny_axes.text(k, tiny[n] * 1e3 * 1.15, readable_time(tiny[n]), ha="center", fontsize=8)

implementations = ["seven loops (estimate)"] + backends
width = 0.8 / len(implementations)
for k, name in enumerate(implementations):
    values = [timings[label][name] * 1e3 for label in layers]
    positions = np.arange(len(layers)) + (k - (len(implementations) - 1) / 2) * width
    estimated = "estimate" in name
    layer_axes.bar(positions, values, width, label=name, color=f"C{k}",
                   hatch="//" if estimated else None, alpha=0.6 if estimated else 1.0)
    for position, value in zip(positions, values):
        layer_axes.text(position, value * 1.15, readable_time(value / 1e3), ha="center",
                        fontsize=8)
short_names = ["D2: Conv2d(64, 128)", "G1: ConvTranspose2d(128, 64)"]
layer_axes.set_xticks(np.arange(len(layers)), short_names)
layer_axes.set_yscale("log")
layer_axes.set_ylabel("forward + backward time (ms, log scale)")
layer_axes.set_title(f"DCGAN layers, batch {batch}")
layer_axes.legend(fontsize=8, loc="center right")
plot.save(fig, figure("12_conv_speed.png"))

# %% [markdown]
# ## The CUDA kernels without a GPU: Numba's simulator
#
# With no GPU, the `cuda` backend is unavailable. But Numba can *simulate* CUDA: with the
# environment variable `NUMBA_ENABLE_CUDASIM=1` set **before numba is imported**, `numba.cuda`
# runs every kernel in Python, one Python thread per GPU thread, shared memory and barriers
# included. That is too late for this process (numba is loaded), so we start a fresh Python
# with the variable set, run the three CUDA kernels on a tiny layer there and compare them with
# NumPy. The simulator is for checking that a kernel is *correct*, and for stepping through one
# with a debugger; it is thousands of times slower than NumPy, never a way to run a model.

# %%
SIMULATOR_CHECK = """
import json, time
import numpy as np
import tinygen
from tinygen import kernels
simulator = kernels.load("cuda")           # the CUDA kernels, running in numba's simulator
numpy_k = kernels.load("numpy")
rng = np.random.default_rng(0)
x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)   # small: every thread is simulated
w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
s, p = (2, 2), (1, 1)
y = numpy_k.conv2d(x, w, s, p)
g = rng.standard_normal(y.shape).astype(np.float32)
tick = time.perf_counter()
results = [simulator.conv2d(x, w, s, p), simulator.conv2d_grad_input(g, w, x.shape, s, p),
           simulator.conv2d_grad_weight(x, g, w.shape, s, p)]
seconds = time.perf_counter() - tick
expected = [y, numpy_k.conv2d_grad_input(g, w, x.shape, s, p),
            numpy_k.conv2d_grad_weight(x, g, w.shape, s, p)]
errors = [float(np.max(np.abs(a - b))) for a, b in zip(results, expected)]
print(json.dumps({"available": tinygen.backend.available(), "simulated": kernels.is_simulated(),
                  "errors": errors, "seconds": seconds}))
"""
environment = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
finished = subprocess.run([sys.executable, "-c", SIMULATOR_CHECK], env=environment,
                          capture_output=True, text=True, timeout=300)
if finished.returncode == 0:
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    print("in the subprocess: available backends", report["available"],
          "| simulated:", report["simulated"])
    for kernel_name, error in zip(["conv2d", "conv2d_grad_input", "conv2d_grad_weight"],
                                  report["errors"]):
        print(f"   simulated CUDA {kernel_name:>18} vs numpy: largest difference {error:.1e}")
    numpy_seconds = median_seconds(lambda: [
        numpy_conv.conv2d(tiny_x, tiny_w, (1, 1), (1, 1)),
        numpy_conv.conv2d_grad_input(tiny_y, tiny_w, tiny_x.shape, (1, 1), (1, 1)),
        numpy_conv.conv2d_grad_weight(tiny_x, tiny_y, tiny_w.shape, (1, 1), (1, 1))], 20)
    print(f"   the three simulated kernels took {report['seconds']:.2f} s; NumPy does the same "
          f"three on the (larger) tiny layer above in {numpy_seconds * 1e3:.2f} ms")
else:
    print("the simulator could not run here:", finished.stderr.strip().splitlines()[-1:])

print(f"elapsed {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. **Stride and padding in im2col.** In the worked example, call `numpy_conv.im2col` with
#    `stride=(2, 2)`, then with `padding=(1, 1)`. How many columns are there, and where do the
#    zeros of the padding appear?
# 2. **Where the time goes.** Time `numpy_conv.im2col` alone and the product
#    `w.reshape(128, -1) @ cols` alone for the D2 layer. Which dominates, and how does that explain
#    the numba / numpy ratio?
# 3. **Threads.** Run the lesson with `NUMBA_NUM_THREADS=1` (and with `OPENBLAS_NUM_THREADS=1`) in
#    the environment. Which backend slows down, and by how much?
# 4. **Read the simulator's threads.** In `SIMULATOR_CHECK`, make the layer bigger
#    (`x (8, 16, 14, 14)`, `w (32, 16, 4, 4)`) and watch the time grow. With `TILE = 16` in
#    `cuda_conv.py`, how many blocks and threads does the forward launch for it (M, K, P as in the
#    text)? Why must a 32 x 32 tile be the largest (look up the CUDA limit of threads per block)?
# 5. **Your own transposed convolution.** Build `F.conv_transpose2d(x, w, stride=2, padding=1)` for
#    a random `x (1, 3, 7, 7)` and `w (3, 2, 4, 4)` from `numpy_conv.conv2d_grad_input` alone and
#    check it against tinygen's. What output shape do you need to pass, and why?
