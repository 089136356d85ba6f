# %% [markdown]
# # 14: The accelerated core: how tinygen's convolutions run, and how fast
#
# The convolutional autoencoders, VAEs and the DCGAN of this course spend almost all their time
# in one operation: the 2-D convolution (and its mirror image, the transposed convolution). This
# lesson opens the box. We follow one convolution from its definition (seven nested loops) to
# the trick every framework uses, **im2col**, which turns it into a single matrix product
# (a GEMM), and see how the two gradients of a convolution are matrix products too, so that three
# kernels serve `Conv2d` and `ConvTranspose2d`, forward and backward. Then we read the two
# accelerated versions of those kernels, a parallel CPU one compiled by **Numba** and a GPU one
# written as a **tiled implicit GEMM** in CUDA, check that every backend gives the same numbers,
# and time them. The CPU version also shows where the time of a training step goes besides the
# products: moving data between layouts, allocating memory, and the many small passes of batch
# norm, which it fuses into one. Then we ask **where the data lives**: why sending each
# convolution to a GPU and its result back made training slower than staying on the CPU, how
# tinygen's tensors now live on a GPU, how one NumPy program runs on both devices through
# NumPy's dispatch protocols (watched on a small array class of our own that records every
# call), and how the GPU kernels work on the device's arrays in place.
#
# Runs in about 6 s on a 2-core CPU with no GPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 5 s. (It took 4 s and 3 s when first timed; on the machine
# of this measurement, the lesson without the part on where the data lives took about as long
# as now, and that part takes under 0.1 s without a GPU. With a GPU it also runs a DCGAN step
# benchmark in a subprocess, not timed here.)
# (The very first run on a machine also compiles the Numba kernels it uses, in float32 and
# float64: about 8 s more, once, measured with an empty `NUMBA_CACHE_DIR`. The machine code is
# then cached on disk, in `tinygen/kernels/__pycache__`, and later runs load it in a fraction of
# a second.)

# %%
import ast
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
import weakref
from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib.patches import Rectangle
from numpy.lib.mixins import NDArrayOperatorsMixin

import tinygen as tg
from tinygen import kernels, nn, plot
from tinygen.kernels import numpy_conv
from tinygen.ops import conv as conv_ops

from course import HERE, figure, pick

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
plot.save(fig, figure("14_im2col.png"))

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
# | `conv2d_grad_input(g, w)` | $\partial L/\partial x$ | $\text{col2im}(W_{\text{mat}}^\top G)$ |
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
# NumPy's im2col is loop-free in Python, but it moves data in several passes (pad, copy each
# offset, transpose, reshape), each one a trip through memory, and col2im needs as many to add
# the copies back.
# On a layer the size of the DCGAN's, those passes take about as long as the product itself.
# **Numba** compiles a Python function that uses only loops, arithmetic and NumPy arrays to
# machine code (through LLVM, the compiler behind clang), so that a plain loop runs at C speed:
#
# * `@njit` ("no Python") compiles the function the first time it is called, for the argument
#   types it sees (float32 and float64 get separate machine code);
# * `parallel=True` with `prange` in place of `range` splits that loop's iterations over a pool
#   of threads, one per core; iterations must not write to the same place;
# * `cache=True` writes the machine code next to the source, in `__pycache__`, so the next
#   process loads it instead of compiling again.
#
# tinygen's Numba backend (`tinygen/kernels/numba_conv.py`) leaves the products to BLAS, which
# is already near the machine's peak, and compiles the data movement around them. Four choices
# make that movement cheap: a memory layout in which a window is a few long runs, a split of the
# work in which no two threads write the same place, buffers reused from call to call, and a
# rule for the layers where all of this does not pay.
#
# ### Channels last: a window is a few long runs of memory
#
# An array stores its last axis contiguously. In the NCHW layout, the $C$ channels of one pixel
# lie $H W$ floats apart, so a window ($C$ channels of $k_H \times k_W$ pixels) is $C k_H$
# separate runs of only $k_W$ floats each. The numba kernels therefore first move the input,
# once, to a zero-padded **channels-last** (NHWC) copy $\tilde x$ of shape $(N, H_p, W_p, C)$,
# with $H_p = H + 2P_h$ and $W_p = W + 2P_w$. Its element $(n, h, v, c)$ sits at flat position
#
# $$\text{offset}(n, h, v, c) = \big((n H_p + h)\, W_p + v\big)\, C + c .$$
#
# They build the window matrix the other way round from NumPy's: one **row** per output pixel
# $(n, p, q)$ and one **column** per $(i, j, c)$, column number $(i k_W + j) C + c$:
#
# $$\text{cols}_{(n,p,q),\,(i,j,c)} = \tilde x_{n,\; p s_h + i,\; q s_w + j,\; c} .$$
#
# (The code still calls it `cols`; up to the order of its columns it is the transpose of NumPy's
# cols.) Fix one window $(n, p, q)$ and one kernel row $i$. As $(j, c)$ runs over its
# $k_W C$ values, the column number is $i k_W C + (jC + c)$ and the offset is
# $((n H_p + p s_h + i) W_p + q s_w) C + (jC + c)$: both count up by one from a fixed start.
# So a window's row $i$ is **one contiguous run of $k_W C$ floats**, in the matrix and in
# $\tilde x$ alike, and a whole row of cols is $k_H$ block copies. For the DCGAN's second layer
# ($C = 64$, $4 \times 4$) that is 4 copies of 256 floats per window, where NCHW needs 256
# copies of 4.
#
# A small example shows the order: one image of two $3 \times 3$ channels (channel 1 is
# channel 0 plus 100), a $2 \times 2$ kernel, stride 1, no padding, so four windows.

# %%
numba_kernels = kernels.load("numba") if "numba" in tg.backend.available() else None
two_channels = np.stack([np.arange(9.0), np.arange(9.0) + 100]).reshape(1, 2, 3, 3)
if numba_kernels is not None:
    # The NHWC copy (no padding here: the example has none), then the kernels' window matrix.
    channels_last = two_channels.transpose(0, 2, 3, 1)
    print("the channels-last copy, one image row per line (pixel by pixel, channel by channel):")
    for h in range(3):
        print(f"   row {h}: " + " ".join(f"{v:3.0f}" for v in channels_last[0, h].ravel()))
    windows = numba_kernels._window_matrix(two_channels, (2, 2), (1, 1), (0, 0))
    print(f"\nthe window matrix, shape {windows.shape}: one row per window (p, q), "
          "columns (i, j, c);\n'|' separates the two runs, kernel rows i = 0 and i = 1")
    labels = [f"({i},{j},{c})" for i in range(2) for j in range(2) for c in range(2)]
    print(" " * 10 + " ".join(labels[:4]) + " | " + " ".join(labels[4:]))
    for row, (p, q) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        values = [f"{v:7.0f}" for v in windows[row]]
        print(f"   ({p},{q})  " + " ".join(values[:4]) + " | " + " ".join(values[4:]))
else:
    print("numba is not installed here: the numba backend is unavailable")

# %% [markdown]
# Window $(0, 0)$ is `0 100 1 101` from the start of image row 0, then `3 103 4 104` from the
# start of row 1: two runs of $k_W C = 4$ floats. Window $(0, 1)$ starts $s_w C = 2$ floats
# further along the same rows.
#
# Flatten the weight with its columns in the same order, $W_{o,\,(i,j,c)} = w_{o,c,i,j}$, and
# write $G_r$ for the upstream gradient with one row per output pixel,
# $(G_r)_{(n,p,q),\,o} = g_{n,o,p,q}$. With $M = N \cdot OH \cdot OW$ output pixels and
# $K = k_H k_W C$ columns, the three kernels are three products ($dW$ is $\partial L / \partial W$
# as a matrix, reshaped to $w$'s shape at the end):
#
# | kernel | product | shapes |
# |---|---|---|
# | `conv2d` | $y^\top = W\, \text{cols}^\top$ | $(O \times K)(K \times M)$ |
# | `conv2d_grad_input` | $\text{cols}_g = G_r W$, then col2im | $(M \times O)(O \times K)$ |
# | `conv2d_grad_weight` | $dW = G_r^\top\, \text{cols}$ | $(O \times M)(M \times K)$ |
#
# A transposed operand costs no copy: `cols.T` is a view of the same memory with its strides
# swapped, and NumPy passes it to BLAS as `cols` with the flag "transposed" (every BLAS product
# takes such a flag per operand), so BLAS reads it in whatever order suits it. What the
# kernels do copy is small or cheap: the weight (a few hundred KB), the upstream gradient, which
# arrives in NCHW (one parallel pass to rows $G_r$; for $G_r^\top$ only whole
# $OH \times OW$ planes move), and the forward's result $y^\top$, of shape $(O, N, OH, OW)$,
# which becomes NCHW by moving whole planes too.
#
# Here is the loop that builds the window matrix (`.py_func` is the Python function that Numba
# compiled, so `inspect` can show its source):

# %%
if numba_kernels is not None:
    print(inspect.getsource(numba_kernels._windows.py_func))

# %% [markdown]
# Each task of `prange` takes one image $b$. It first copies the image into `xp`, its padded
# channels-last copy $\tilde x_b$ stored as $(H_p, W_p C)$: for the DCGAN's second layer that is
# $16 \times 16 \times 64$ floats, 64 KB, small enough to stay in the core's cache while it is
# read. Then `xp[p*sh + i, start:start + run]` is exactly one of the runs above, and the slice
# assignment is one block copy. The threads write different images' rows of cols and never
# meet.
#
# The input gradient runs the other way. Each entry of $\text{cols}_g = G_r W$ is the gradient
# of one *copy* of a pixel, and col2im adds every copy back into its pixel:

# %%
if numba_kernels is not None:
    print(inspect.getsource(numba_kernels._add_windows_back.py_func))

# %% [markdown]
# Windows overlap (with a $4 \times 4$ kernel at stride 2, a pixel lies in up to four of them),
# so several windows of one image add into the same pixel. Had two threads run the same `+=`
# at the same moment, each would read the old value, add its share and write it back, and one
# of the two shares would be lost: a **race**. So this loop is parallel over **images** `b`:
# every window of image $b$ is added by the one thread that owns $b$, and windows of different
# images never share a pixel. That makes the scatter-add race-free with no locks and no atomic
# additions. The task adds into a padded channels-last buffer of its own, again small enough for
# the cache, and at the end copies its inside to the NCHW gradient. The cost of one task per
# image is that a batch smaller than the number of cores leaves some cores idle.
#
# ### Buffers reused, and a window matrix kept for the backward
#
# The window matrix of the DCGAN's second layer at batch 64 is $3136 \times 1024$ float32 values,
# 12.8 MB. A fresh array that size costs more than its bytes: the operating system hands its
# memory over one 4 KB page at a time, at the first write to each page (a **page fault**, a trip
# into the operating system, about 3,000 of them here), and takes it back when the array dies.
# So the kernels keep a **workspace**: one buffer per role (the window matrix, the reordered
# upstream gradient), grown to the largest layer seen and reused at every call. Only the results
# they return are fresh arrays.
#
# The weight gradient $G_r^\top \cdot \text{cols}$ needs the window matrix of $x$, which the
# forward already built. PyTorch keeps such intermediate results from the forward for the
# backward (its **saved tensors**), and tinygen's `Conv2d` op does the same
# (`tinygen/ops/conv.py`): when the backend offers `conv2d_keeping_windows` and a weight gradient
# will be wanted, the forward builds cols in an array of its own and keeps it, and the backward
# hands it to `conv2d_grad_weight_from_windows` instead of building it again. The price is
# memory held from forward to backward, about $k_H k_W / s^2$ times the size of $x$ (4 times for
# that layer), so a matrix larger than `SAVED_WINDOWS_LIMIT_BYTES` (64 MB) is not kept.
#
# A kept matrix is an array of its own, so each step would pay the page faults again. Once the
# backward has run through the op it is dead: a backward frees the graph behind it (see "The
# step around the kernels" below), and at that moment the op gives its matrix back to the
# backend (`numba_conv.give_back_windows`), whose next forward of the same size takes it
# instead of a fresh array. Measured in one process, alternating blocks of DCGAN steps with the
# give-back on and off: 0.91 of the time at batch 64, 0.90 at batch 256.
#
# ### Thin layers go to NumPy
#
# Not every layer gains. The DCGAN's first layer, `Conv2d(1, 64, 4, 2, 1)`, has one input
# channel: a window row is 16 floats, four runs of 4. The product is cheap with so few columns,
# so the time is all data movement, and copying 4 floats at a time window by window loses to
# NumPy's im2col, which copies the whole batch in $k_H k_W = 16$ strided slices.
# `bench/conv_thin.py` timed the three kernels on that geometry ($28 \times 28 \to 14 \times 14$,
# 64 output channels, $4 \times 4$, stride 2, batch 64, float32), once by NumPy and once by the
# channels-last kernels, as the number of input channels $C$ grows:
#
# | $C$ | 1 | 2 | 4 | 8 | 16 | 32 |
# |---|---|---|---|---|---|---|
# | $C k_H k_W$ | 16 | 32 | 64 | 128 | 256 | 512 |
# | channels-last / numpy time | 1.63 | 1.46 | 1.12 | 0.91 | 0.72 | 0.64 |
#
# The two cross between $C = 4$ and $C = 8$, hence the rule `numba_conv.THIN_WINDOW = 128`: a
# layer with $C k_H k_W < 128$ runs NumPy's kernels. In the DCGAN those are the first and the
# last layer; the last, `ConvTranspose2d(64, 1, 4, 2, 1)`, is the input gradient of a
# convolution whose input has one channel.
#
# Could numba do better on them with loops of their own? NumPy's product leaves the output
# channel-first, $(O, N \cdot OH \cdot OW)$, and a strided copy puts it in NCHW order, which a
# profile of the step showed as the thin layers' largest cost. Direct loops were written and
# measured: one task per image, its windows as a small matrix in the cache, each output plane
# written in place. Alone on the first layer they beat NumPy's kernels in one run (forward 0.57
# against 0.85 ms), tied in another (`bench/conv_thin.py`: 1.00-1.04 of NumPy's time), lost from
# two input channels on (their inner work grows with $C k_H k_W$, BLAS's does not), and switched
# on and off between blocks of training steps they changed the step's time by less than the
# machine's noise (0.96 to 1.07). So they were not kept: a speed-up is what a measurement of the
# whole step shows, not what a profile suggests. The four layers as the kernels see them (a
# transposed convolution as the convolution it is the gradient of), at batch 64:

# %%
dcgan_convolutions = {  # name: (x shape, w shape) of the underlying convolution, 4x4, stride 2
    "D1 Conv2d(1, 64)": ((64, 1, 28, 28), (64, 1, 4, 4)),
    "D2 Conv2d(64, 128)": ((64, 64, 14, 14), (128, 64, 4, 4)),
    "G1 ConvTranspose2d(128, 64)": ((64, 64, 14, 14), (128, 64, 4, 4)),
    "G2 ConvTranspose2d(64, 1)": ((64, 1, 28, 28), (64, 1, 4, 4)),
}
if numba_kernels is not None:
    print(f"THIN_WINDOW = {numba_kernels.THIN_WINDOW}, SAVED_WINDOWS_LIMIT_BYTES = "
          f"{conv_ops.SAVED_WINDOWS_LIMIT_BYTES / 2**20:.0f} MB")
    print(f"{'layer':>28} {'C kH kW':>8}  {'kernels':>13}  {'window matrix (float32)':>24}")
    for name, (x_shape, w_shape) in dcgan_convolutions.items():
        n, c, h, _ = x_shape
        window_width = c * w_shape[2] * w_shape[3]
        out_pixels = n * (h // 2) * (h // 2)  # stride 2, padding 1, 4x4: OH = H / 2
        thin = window_width < numba_kernels.THIN_WINDOW
        size = f"{out_pixels} x {window_width}, {out_pixels * window_width * 4 / 1e6:.1f} MB"
        print(f"{name:>28} {window_width:8d}  {'numpy' if thin else 'channels-last':>13}  "
              f"{size:>24}")

# %% [markdown]
# ### Fused kernels: batch norm and leaky relu
#
# Convolutions are not the whole training step. `tinygen/nn/functional.py` writes batch norm
# from primitives (mean, variance, subtract, divide, multiply, add): readable, and
# differentiable to any order, but each primitive is an op that reads and writes the whole
# activation, and its backward is more such ops. The numba backend has fused kernels instead
# (`tinygen/kernels/numba_fused.py`, called by the ops in `tinygen/ops/fused.py`):
#
# * **batch norm, training**: one op. One parallel loop over the channels computes each
#   channel's mean and variance and then $y = x \cdot \text{scale}_c + \text{shift}_c$. Its
#   backward is one fused kernel too (below);
# * **batch norm, evaluation**: with the running statistics fixed, it is a per-channel scale and
#   shift, $x \cdot \gamma / \sqrt{\text{running var} + \epsilon} + (\beta - \text{running mean}
#   \cdot \gamma / \sqrt{\text{running var} + \epsilon})$: one pass;
# * **leaky relu**: one pass writes $y$; the backward is one pass too, the gradient times the
#   slope (1 where $x > 0$, the negative slope elsewhere), read off the sign of the saved input.
#
# The derivative behind the fused backward: with $\sigma = \sqrt{\text{var} + \epsilon}$,
# $\hat x = (x - \text{mean}) / \sigma$, $g = \partial L / \partial y$, and bars for means over
# the batch and the pixels of one channel,
#
# $$\frac{\partial L}{\partial x} = \frac{\gamma}{\sigma}
#   \left(g - \overline{g} - \hat x\; \overline{g \hat x}\right), \qquad
#   \frac{\partial L}{\partial \gamma} = \sum g \hat x, \qquad
#   \frac{\partial L}{\partial \beta} = \sum g .$$
#
# The two mean terms are there because the channel's mean and variance depend on every $x$ of
# the channel. The kernel makes one pass for the two sums per channel and one that writes
# $\partial L / \partial x$.
#
# A fused kernel returns numbers, not a graph of ops. So when the gradient must itself be
# differentiated (`create_graph=True`, as for the contractive penalty of lesson 06), the batch
# norm's backward is written with Tensor ops instead, the same formula, and gradients of
# gradients stay exact. Leaky relu's does the same: a product of the gradient with a constant.
# The numpy backend keeps the readable composites of `tinygen/nn/functional.py`, the reference
# the fused kernels are checked against. Here, on a small batch in float64, against each other,
# and by `gradgradcheck` on the numba backend:

# %%
bn_x = rng.standard_normal((8, 4, 5, 5))
bn_gamma = rng.standard_normal(4)
bn_beta = rng.standard_normal(4)
bn_upstream = rng.standard_normal(bn_x.shape)


def batch_norm_leaky(x, gamma, beta):
    """Training-mode batch norm over the channels, then leaky relu with slope 0.2."""
    return F.leaky_relu(F.batch_norm(x, None, None, gamma, beta, training=True), 0.2)


def batch_norm_and_gradients(backend):
    """y and dL/dx, dL/dgamma, dL/dbeta for a fixed upstream gradient, on one backend."""
    with tg.backend.use(backend):
        leaves = [tg.tensor(a, dtype="float64", requires_grad=True)
                  for a in (bn_x, bn_gamma, bn_beta)]
        y = batch_norm_leaky(*leaves)
        y.backward(tg.tensor(bn_upstream, dtype="float64"))
        return [y.numpy()] + [leaf.grad.numpy() for leaf in leaves]


if numba_kernels is not None:
    fused = batch_norm_and_gradients("numba")
    composite = batch_norm_and_gradients("numpy")
    for name, a, b in zip(["y", "dL/dx", "dL/dgamma", "dL/dbeta"], fused, composite):
        print(f"fused (numba) vs composite (numpy) {name:>9}: largest difference "
              f"{np.max(np.abs(a - b)):.1e}")
    with tg.backend.use("numba"):
        leaves = [tg.tensor(a, dtype="float64", requires_grad=True)
                  for a in (bn_x, bn_gamma, bn_beta)]
        print("gradgradcheck of batch norm + leaky relu on numba:",
              tg.gradgradcheck(batch_norm_leaky, leaves, max_elements=pick(30, 8)))

# %% [markdown]
# ## The step around the kernels
#
# With the kernels in place, a profile of a whole DCGAN training step (`python
# bench/profile_step.py`, cProfile, ms per step) showed time and memory going to the engine
# around them. Five things were fixed, each measured alone:
#
# * **A backward frees the graph as it goes.** Every op keeps its inputs for its backward, and
#   the inputs keep their arrays, so a graph holds every activation of the forward. The loss
#   kept the graph alive after `backward()` too, into the next model's forward (the GAN's D step
#   held its graph during the G step). PyTorch frees what a graph saved once the backward has
#   passed, and so does tinygen now: right after an op's backward has run, the op forgets its
#   inputs and whatever it saved (`Function.release`), and the engine's list of nodes lets go of
#   each tensor as it passes it, so activations die during the backward, not after the step.
#   Running backward twice through one graph then needs `retain_graph=True` on the first call,
#   as in PyTorch (it is the default with `create_graph=True`). Peak memory of the DCGAN step
#   (`bench/dcgan_memory.py`): 299 MB -> 169 MB at batch 64, 984 -> 448 MB at batch 256 (torch:
#   126 and 310).
# * **A gradient's layout matters.** `Linear` computed $x W^\top$ as three ops: a transpose, a
#   product and an add. The transpose's backward hands $W$ the transpose of $(x^\top g)$: a strided
#   view, which `.grad` copied into order, and again Adam, whose one-pass kernel walks C-ordered
#   arrays. On the InfoGAN-sized DCGAN (two $1024 \times 6272$ weights) those copies were 120 ms
#   of a 680 ms step. As one op (`tinygen/ops/linear.py`) the bias goes into the product in
#   place and $\partial L/\partial W = g^\top x$ is computed in $W$'s own layout.
# * **One thread can beat two.** Adam's one-pass kernel ran in parallel over every parameter.
#   On two cores a parallel loop right after a BLAS product waits for BLAS's threads, which spin
#   for a while after each product; the VAE's Adam step took 1.9 ms in parallel and 1.1 ms on one
#   thread. Parameters under a million elements now take one thread; larger ones are split into
#   parallel chunks. On the way, the kernel itself got 4x faster on one thread: Numba's default
#   division checks for a zero divisor (to raise Python's `ZeroDivisionError`), and that branch
#   kept LLVM from vectorising the loop; `error_model="numpy"` (a division by zero gives inf, as
#   in NumPy) took it from 6.1 to 1.5 ns per element.
# * **Less Python per op.** `bench/engine_overhead.py` times a chain of 300 tiny ops (multiply,
#   add, tanh on a $4 \times 4$ tensor) where the arithmetic is nothing: 25.0 microseconds per op
#   against torch's 9.0. The profile showed `Add`'s backward summing the gradient of a constant
#   (the `0.01` of `x + 0.01`) that needs none, and each number beside a tensor going through
#   the full `tensor()` constructor; without them, 13.1 microseconds per op.
# * **A vectorised log instead of log1p.** Softplus, $\log(1 + e^a) = \max(a, 0) + \log(1 +
#   e^{-|a|})$, is the core of binary cross-entropy with logits, and NumPy's `log1p` has no
#   vectorised loop: the VAE's loss spent 1.4 ms of a 9 ms step in it. For $t \in [0, 1]$,
#   $\log(1 + t) = \log(u)\, t / (u - 1)$ with $u = 1 + t$ as rounded (Goldberg 1991): the
#   rounding error of $u$ appears in $\log u$ and in $u - 1$ alike and cancels, so the result is
#   within a few ulps of `log1p`, from NumPy's vectorised `log`, three times faster.
#
# Two things the profile pointed at were not changed. Activations stay NCHW between layers:
# storing them channels-last (as PyTorch's `channels_last` memory format does) would spare the
# conversions at each convolution, about 6 ms of a 145 ms step at batch 64. And the thin
# layers keep NumPy's kernels (above).
#
# Watch the first point happen: a weak reference to an activation lives as long as the graph
# needs it, and no longer.

# %%
layer = nn.Linear(3, 2)
inputs = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
hidden = F.relu(layer(inputs))
hidden_alive = weakref.ref(hidden)
loss = (hidden * hidden).sum()
del hidden  # only the graph holds the activation now
print("after the forward:              activation alive?", hidden_alive() is not None)
loss.backward(retain_graph=True)
print("after backward(retain_graph):   activation alive?", hidden_alive() is not None)
loss.backward()
print("after a plain backward:         activation alive?", hidden_alive() is not None)
try:
    loss.backward()
except RuntimeError as error:
    print("a third backward:", error)
print("Linear's weight gradient in the weight's own layout (C-contiguous):",
      layer.weight.grad.numpy().flags.c_contiguous)

# %% [markdown]
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
# output entry. What the kernel is given matters as much as the kernel. Given NumPy arrays
# (tensors on the CPU with `tg.backend.use("cuda")`), it copies them to the GPU and its result
# back at every call, which costs more than the kernel for small layers; given arrays that
# already live on the GPU, it works on them where they are. That difference is the next part.
#
# ## Where the data lives
#
# A GPU computes on its own memory. The CPU's memory (the **host**'s) is reached over the PCIe
# bus, which is far slower than either memory. So where an array lives decides what a
# computation on it costs, and a GPU is fast only for data that stays there.
#
# ### Why per-call copies lost
#
# tinygen's first `cuda` backend took NumPy arrays. Every convolution kernel copied its two
# inputs to the GPU, ran there and copied its result back, while everything else in a training
# step stayed in NumPy on the host: batch norm, the activations, the losses, the Linear layers,
# Adam and the data. Its first run on a GPU (`bench/gpu_check.sh` on an H200 beside 16 CPU
# cores, 2026-11-28) timed a whole DCGAN training step (`bench/dcgan_step.py`, the DCGAN of
# lesson 13) as a fraction of the numpy backend's step on the same machine:
#
# | batch | numba (CPU) | cuda (kernels with per-call copies) | torch on the GPU |
# |---|---|---|---|
# | 64 | 0.525 | 0.725 | 0.024 |
# | 256 | 0.389 | 0.569 | 0.004 |
#
# The GPU backend was slower than the CPU's numba backend, and PyTorch on the same GPU took
# about 1/20 of numba's time at batch 64 and about 1/100 at batch 256. Layer by layer
# (`bench/conv.py`, the three kernels of one layer at batch 64) the cuda kernels took 7 to
# 9.5 ms where cuDNN, PyTorch's GPU library, took 0.12 to 0.25 ms.
#
# How much of that do the copies explain? Each of a layer's three kernels (forward, input
# gradient, weight gradient) reads two of the arrays $x, w, y$ (or gradients of the same
# shapes) and writes the third, so one training step sends each of them across the bus three
# times, and the kernels do three convolutions' arithmetic (a multiply-add is two
# floating-point operations):
#
# $$\text{bytes} = 3 \cdot 4\,(|x| + |w| + |y|) \ \text{(float32)}, \qquad
#   \text{FLOPs} = 3 \cdot 2\, N O \cdot OH \cdot OW \cdot C k_H k_W .$$
#
# (A real step calls the discriminator's layers more than once, on real and on fake images, so
# this counts the least that crosses.) To turn these into times we need two rates, and here
# they are **assumptions**, not measurements: a PCIe link that moves about 25 GB/s (about what
# a PCIe 4.0 x16 link sustains; copies from ordinary, pageable NumPy memory are often slower)
# and an H200-class GPU that sustains about 50 TFLOP/s of float32 arithmetic on these
# products. The four layers are the convolutions of the table in the Numba section, at
# batch 64; the last two columns are the H200 measurements.

# %%
ASSUMED_PCIE_BYTES_PER_S = 25e9  # an assumption: about a PCIe 4.0 x16 link, pinned memory
ASSUMED_GPU_FLOP_PER_S = 50e12  # an assumption: a large GPU's sustained float32 rate

# Measured on an H200 beside 16 CPU cores with bench/gpu_check.sh (2026-11-28), before tensors
# could live on the GPU. A DCGAN step's time as a fraction of the numpy backend's step there:
old_design_steps = {64: {"numba (CPU)": 0.525, "cuda, per-call copies": 0.725,
                         "torch on the GPU": 0.024},
                    256: {"numba (CPU)": 0.389, "cuda, per-call copies": 0.569,
                          "torch on the GPU": 0.004}}
# bench/conv.py, forward + both gradients of one layer at batch 64, ms: (cuda kernels, cuDNN)
old_design_layer_ms = {"D1 Conv2d(1, 64)": (6.94, 0.12), "D2 Conv2d(64, 128)": (9.23, 0.24),
                       "G1 ConvTranspose2d(128, 64)": (9.47, 0.25),
                       "G2 ConvTranspose2d(64, 1)": (6.76, 0.12)}

print(f"{'layer (batch 64)':>28} {'MB across':>10} {'at 25 GB/s':>11} {'GFLOP':>6} "
      f"{'at 50 TFLOP/s':>14} {'measured: cuda':>15} {'cuDNN':>8}")
total_bytes = total_flops = 0
for name, (x_shape, w_shape) in dcgan_convolutions.items():
    n, c, h, width = x_shape
    o, _, kh, kw = w_shape
    oh = numpy_conv.output_size(h, kh, 2, 1)
    ow = numpy_conv.output_size(width, kw, 2, 1)
    sizes = {"x": n * c * h * width, "w": o * c * kh * kw, "y": n * o * oh * ow}
    kernel_calls = [(("x", "w"), "y"),  # forward: x, w in; y back
                    (("y", "w"), "x"),  # input gradient: dL/dy, w in; dL/dx back
                    (("x", "y"), "w")]  # weight gradient: x, dL/dy in; dL/dw back
    moved = sum(4 * (sizes[a] + sizes[b] + sizes[out]) for (a, b), out in kernel_calls)
    flops = 3 * 2 * n * o * oh * ow * c * kh * kw
    total_bytes, total_flops = total_bytes + moved, total_flops + flops
    cuda_ms, cudnn_ms = old_design_layer_ms[name]
    print(f"{name:>28} {moved / 1e6:10.1f} {moved / ASSUMED_PCIE_BYTES_PER_S * 1e3:8.2f} ms "
          f"{flops / 1e9:6.2f} {flops / ASSUMED_GPU_FLOP_PER_S * 1e3:11.3f} ms "
          f"{cuda_ms:12.2f} ms {cudnn_ms:5.2f} ms")
copy_ms = total_bytes / ASSUMED_PCIE_BYTES_PER_S * 1e3
arithmetic_ms = total_flops / ASSUMED_GPU_FLOP_PER_S * 1e3
print(f"{'the four layers':>28} {total_bytes / 1e6:10.1f} {copy_ms:8.2f} ms "
      f"{total_flops / 1e9:6.2f} {arithmetic_ms:11.3f} ms "
      f"{sum(t[0] for t in old_design_layer_ms.values()):12.2f} ms "
      f"{sum(t[1] for t in old_design_layer_ms.values()):5.2f} ms")
print(f"at the assumed rates, the copies take {copy_ms / arithmetic_ms:.0f} times as long as "
      "the arithmetic")

# %% [markdown]
# Three things follow. First, a kernel whose inputs must cross the bus can be no faster than
# the crossing, and at the assumed rate the copies alone take longer than cuDNN's whole call,
# on every layer, and many times longer than the arithmetic. Second, the copies do not explain
# all of the measured 7 to 9.5 ms: each call also allocated fresh GPU memory, waited for the
# GPU to finish before copying the result back, and ran the teaching kernel rather than a tuned
# one (the weight gradient of D1 and G2, a $64 \times 16$ output, is only four blocks of
# threads on a GPU built for thousands); `bench/conv.py` did not measure these costs
# separately. Third, and decisive for the whole step: the convolutions were not all of it.
# If a fraction $p$ of a step is made $s$ times faster, the step takes
#
# $$1 - p + p / s$$
#
# of its time (Amdahl's law), so with everything else on the host in NumPy the step could
# never get below that rest, however fast the convolutions. PyTorch's 0.024 comes from the
# opposite design: its tensors live on the GPU from the model's creation to the loss, and in
# the bench nothing crosses the bus during a step but the two losses it returns. So the cure
# was not faster kernels but arrays that stay on the device from one op to the next.
#
# ### Tensors on a device
#
# tinygen now follows PyTorch. A tensor has a **device**, `cpu` or `cuda` (one GPU,
# `cuda:0`); every op runs where its inputs live and leaves its result there; and nothing moves
# between host and device unless the program asks:
#
# ```python
# x = tg.randn(64, 100, device="cuda")    # drawn on the host, copied to the GPU once
# x.device                                # device('cuda:0')
# h = x.to("cpu"); x.cpu(); h.cuda()      # copies, recorded in the graph: gradients flow back
# model.to("cuda")                        # parameters and buffers move, in place
# optimizer = tg.optim.Adam(model.parameters(), lr=2e-4)  # after the move, as PyTorch advises
# ```
#
# `Module.to` moves each parameter's array but keeps the parameter, so an optimizer made after
# the move makes its state (Adam's two moments per parameter) beside the parameters, on the
# GPU. Two mistakes are errors rather than silent copies: `.numpy()` of a GPU tensor (a NumPy
# array is host memory; the message names `.cpu()`, the explicit copy, and `.item()` reads one
# number), and an op whose inputs live on two devices (the message names both). Checkpoints and
# `state_dict()` hold host arrays, and loading puts them on the model's device.
#
# The GPU arrays are CuPy's (`pip install -e ".[cuda]"`). `tg.devices.is_available("cuda")`
# says whether this machine can use them, and `tg.devices.why_unavailable("cuda")` says why
# not. The cell below asks, and runs a small network's training step on the GPU if there is
# one; here there may be none, and then it runs the same lines on the CPU.

# %%
why_not = tg.devices.why_unavailable("cuda")
print("tg.devices.is_available('cuda'):", tg.devices.is_available("cuda"))
print("tg.devices.why_unavailable('cuda'):", repr(why_not))
device = "cpu" if why_not else "cuda"
print(f"the example runs on {device}"
      + (": no GPU here, so the same lines run on the CPU" if why_not else ""))

tg.manual_seed(0)
inputs = tg.randn(64, 100, device=device)
net = nn.Sequential(nn.Linear(100, 32), nn.ReLU(), nn.Linear(32, 1)).to(device)
optimizer = tg.optim.Adam(net.parameters(), lr=1e-3)  # made after the move
loss = (net(inputs) ** 2).mean()
loss.backward()
optimizer.step()
print(f"inputs on {inputs.device}, first weight on {net[0].weight.device}, its gradient on "
      f"{net[0].weight.grad.device}, the loss on {loss.device}")
output = net(inputs).cpu().numpy()  # the explicit copy to the host
print(f"loss {loss.item():.4f} (.item(): one number, read from where the loss lives); the "
      f"output, copied to the host: {type(output).__module__}.{type(output).__name__} "
      f"{output.shape}")

# %% [markdown]
# ### One program for both devices: NumPy's dispatch protocols
#
# tinygen's ops are written with NumPy: `np.exp(a)`, `a * b`, `np.sum(a, axis=0)`,
# `np.zeros_like(a)`, `w.reshape(o, -1) @ cols`. None of these lines names a GPU, yet they run
# on one, because NumPy does not insist on doing the work itself: it first asks its arguments
# whether they want to. There are three ways to be asked.
#
# * **`__array_ufunc__`** (NumPy's NEP 13). The **ufuncs**, NumPy's elementwise functions
#   (`np.add`, `np.multiply`, `np.exp`, `np.maximum`, `np.matmul`, ...) and the operators that
#   call them, look for this method on their arguments and hand the call over:
#   `np.exp(a)` becomes `type(a).__array_ufunc__(a, np.exp, "__call__", a)`, and a sum written
#   as `np.add.reduce(a, axis=0)` arrives with the method `"reduce"`.
# * **`__array_function__`** (NEP 18). Almost every other function of NumPy's API (`np.sum`,
#   `np.concatenate`, `np.where`, `np.pad`, `np.zeros_like`, `np.broadcast_to`, ...) does the
#   same: `np.sum(a)` becomes `type(a).__array_function__(a, np.sum, types, (a,), {})`.
# * **`like=`** (NEP 35). A creation function such as `np.zeros(shape)` has no array argument
#   to ask; `np.zeros(shape, like=x)` asks `x`. That is how the kernels make new arrays beside
#   their inputs: `np.empty(out_shape, dtype=dtype, like=x)`.
#
# CuPy's arrays answer all three by calling CuPy's function of the same name, which runs on the
# GPU and returns a CuPy array. So when a tensor's `.data` is a CuPy array, an op's forward and
# backward are the same lines as on the CPU, and every result stays in GPU memory: the ops
# need no GPU code of their own (only the kernels of the next section do). What does not
# dispatch is handled by hand: random draws (tinygen draws on the host, so a seed gives the
# same numbers on both devices, then copies once), conversions to NumPy (CuPy refuses the
# implicit ones, so a forgotten host copy is an error, not a slowdown), and Python numbers (a
# reduction on the GPU gives a 0-d GPU array; `.item()` reads it).
#
# We can watch the dispatch without a GPU. `TracedArray` below holds a NumPy array, implements
# both protocols and forwards attributes (`.shape`, `.reshape(...)`), and writes down the name
# of every NumPy function that reaches it before doing the work with NumPy. Like CuPy's arrays,
# it refuses to become a NumPy array implicitly and refuses to be mixed with one. Registered as
# the "cuda" array library inside a `with` block (`tg.devices.use_library`), it stands in for
# CuPy: tinygen makes "cuda" tensors of it, and runs the numpy backend's kernels on it, as the
# im2col method runs them on CuPy's. (The test suite does the same with a stricter class,
# `tests/strict_device.py`, that also refuses every array method CuPy lacks.)

# %%
class TracedArray(NDArrayOperatorsMixin):  # the mixin maps + * @ < ... to ufuncs, so to us
    """A NumPy array that plays a device array: NumPy hands it every call made on it, and it
    writes the call down, then does the work with NumPy and wraps the result again."""

    calls = Counter()  # (protocol, name) -> how many times, in the order first seen

    def __init__(self, array):
        self.array = array

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        TracedArray.calls["ufunc", name] += 1
        result = getattr(ufunc, method)(*unwrap(inputs), **unwrap(kwargs))
        return kwargs["out"][0] if "out" in kwargs else wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        TracedArray.calls["function", func.__name__] += 1
        return wrap(func(*unwrap(args), **unwrap(kwargs)))

    def __array__(self, dtype=None, copy=None):  # np.asarray(traced): refused, as by CuPy
        raise TypeError("a device array does not become a NumPy array implicitly")

    def __getattr__(self, name):  # .shape, .dtype, .T and methods such as .reshape(...)
        if name == "array":
            raise AttributeError(name)
        value = getattr(self.array, name)
        if not callable(value):
            return wrap(value)

        def method(*args, **kwargs):
            TracedArray.calls["method", name] += 1
            return wrap(value(*unwrap(args), **unwrap(kwargs)))
        return method

    def __getitem__(self, index):
        return wrap(self.array[unwrap(index)])

    def __setitem__(self, index, value):
        self.array[unwrap(index)] = unwrap(value)

    def __len__(self):
        return len(self.array)

    def __float__(self):  # float(a) of one value: an explicit read, which CuPy allows too
        return float(self.array)


def wrap(value):
    """NumPy results -> TracedArrays (scalars too: a device library returns 0-d arrays)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return TracedArray(np.asarray(value))
    if isinstance(value, (tuple, list)):
        return type(value)(wrap(item) for item in value)
    return value


def unwrap(value):
    """TracedArrays -> their NumPy arrays, inside tuples, lists and dicts; a host array is
    refused, as CuPy refuses to mix its arrays with NumPy's."""
    if isinstance(value, TracedArray):
        return value.array
    if isinstance(value, np.ndarray):
        raise TypeError("a host (NumPy) array met a device array")
    if isinstance(value, (tuple, list)):
        return type(value)(unwrap(item) for item in value)
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    return value


TRACED = tg.devices.ArrayLibrary("traced", TracedArray,
                                 to_device=lambda host: TracedArray(np.array(host, copy=True)),
                                 to_host=lambda traced: traced.array.copy(), kernels="numpy")


def print_calls(title):
    """The calls recorded since the last print, by protocol, then forget them."""
    print(title)
    for protocol in ("ufunc", "function", "method"):
        names = [name + (f" x{count}" if count > 1 else "")
                 for (kind, name), count in TracedArray.calls.items() if kind == protocol]
        print(f"   {protocol:>8}: {', '.join(names) or '-'}")
    TracedArray.calls.clear()


with tg.devices.use_library("cuda", TRACED):  # inside the block, "cuda" arrays are ours
    tg.manual_seed(0)
    x = tg.randn(3, 4, device="cuda", requires_grad=True)
    w = tg.randn(4, device="cuda", requires_grad=True)
    print(f"x lives on {x.device}; x.data is a {type(x.data).__name__}")
    TracedArray.calls.clear()
    loss = (x * w).sum()
    print_calls("(x * w).sum(), forward:")
    loss.backward()
    print_calls("its backward:")
    print(f"x.grad on {x.grad.device}, equal to w in every row: "
          f"{np.array_equal(x.grad.cpu().numpy(), np.tile(w.cpu().numpy(), (3, 1)))}")

    images = tg.randn(2, 3, 6, 6, device="cuda", requires_grad=True)
    filters = tg.randn(4, 3, 4, 4, device="cuda", requires_grad=True)
    TracedArray.calls.clear()
    loss = F.conv2d(images, filters, stride=2, padding=1).sum()
    print_calls("\nF.conv2d(images, filters, stride=2, padding=1).sum(), forward:")
    loss.backward()
    print_calls("its backward:")

    print("\nthe two mistakes, on the stand-in device:")
    for mistake in (lambda: x.numpy(), lambda: x + tg.ones(3, 4)):
        try:
            mistake()
        except (TypeError, RuntimeError) as error:
            print(f"   {type(error).__name__}: {error}")

# %% [markdown]
# Read the lists against the code. The forward of `(x * w).sum()` is one ufunc and one
# function. Its backward starts from `ones_like`, the seed $\partial L / \partial L = 1$, made
# beside the loss; `broadcast_to` spreads it back over the shape that was summed; the two
# `multiply` are the product rule, $\partial L / \partial x = g\,w$ and
# $\partial L / \partial w = g\,x$; and `sum` adds $w$'s gradient over the rows it was
# broadcast to. The convolution runs the numpy kernels of the first half of this lesson:
# `zeros` (the padded image) and `empty` (cols), made with `like=`, one `matmul` forward, two
# backward, and 16 `add`s, col2im's strided additions, one per kernel offset $(i, j)$ of the
# $4 \times 4$ filter. Every call reached the stand-in, and nothing was turned into a NumPy
# array on the way: with CuPy's arrays in its place, each of these lines would have run on
# the GPU.
#
# ### The device kernels
#
# Convolutions and the fused ops are where tinygen has kernels of its own, and a kernel must be
# given the device arrays themselves. `numba.cuda` understands any object with a
# **`__cuda_array_interface__`**: a dictionary giving the array's shape, its dtype (`typestr`),
# its strides and the address of its data in GPU memory, the GPU's counterpart of NumPy's
# `__array_interface__`. CuPy's arrays have one (so do PyTorch's GPU tensors), and
# `cuda.as_cuda_array(a)` turns it into numba's view of the same memory: no copy, so a kernel
# reads and writes the CuPy array where it is. (The kernels pass `sync=False`, in `numba_view`
# of `cuda_fused.py`. By the interface's rule a consumer first waits until the GPU has
# finished the producer's queued work, which would stop the program at every argument of every
# launch; CuPy and numba queue their work on the same default stream, in order, so the wait
# buys nothing.) A kernel's output is made by `np.empty(out_shape, dtype=dtype, like=x)`,
# which `like=` turns into a CuPy allocation (from CuPy's memory pool, which reuses freed
# blocks rather than asking the driver every time). `tg.backend.kernels_for(array)` chooses
# the kernels by where an array lives: a CuPy array gets the cuda backend's, whichever backend
# runs the CPU's tensors.
#
# A convolution on device arrays has two methods (`TINYGEN_GPU_CONV=im2col` or
# `implicit_gemm`, or `cuda_conv.use_conv_method(name)`):
#
# * **im2col**, the default for now: `numpy_conv`'s functions, the ones read at the start of
#   this lesson, called on the CuPy arrays. Through the dispatch protocols CuPy builds the
#   window matrix in GPU memory and `w.reshape(o, -1) @ cols` is one call to cuBLAS, NVIDIA's
#   tuned matrix product. The price: cols is $k_H k_W / s^2$ times the input (4 times for the
#   DCGAN's layers, 12.8 MB for D2), written to GPU memory and read back, and im2col is
#   $k_H k_W = 16$ strided copies, each a small launch of its own.
# * **implicit_gemm**: the tiled kernel above. No window matrix and one launch per kernel,
#   but a $16 \times 16$ teaching tile against cuBLAS's tuned code.
#
# Which is faster depends on the GPU and the layer, and is measured, not argued:
# `bash bench/gpu_check.sh` times both against cuDNN (steps 4 to 6). Until it has run on a GPU
# for this design, im2col is the default only provisionally.
#
# **Batch norm on the GPU** (`tinygen/kernels/cuda_fused.py`) needs a sum over each channel's
# $M = N \cdot H \cdot W$ values, for the mean and then for the variance. It gives each channel
# one block of 256 threads. Each thread adds every 256th value of the channel in a register,
# then the block adds its 256 partial sums in shared memory by folding the upper half onto the
# lower, $h = 128, 64, \dots, 1$:
#
# $$\text{partial}[t] \leftarrow \text{partial}[t] + \text{partial}[t + h] \quad (t < h),$$
#
# $\log_2 256 = 8$ steps of parallel additions, each followed by a barrier, instead of 255
# additions one after the other. For the discriminator's `BatchNorm2d(128)` at batch 64 that
# is 128 blocks, $M = 64 \cdot 7 \cdot 7 = 3136$ values per channel, 12 or 13 per thread, then
# the 8 steps. The forward reduces twice (the sum of $x$, then of $(x - \text{mean})^2$: two
# passes avoid the cancellation of $E[x^2] - \text{mean}^2$), in float64 whatever the input;
# the backward reduces $\sum g$ and $\sum g \hat x$ and writes $\partial L / \partial x$ by the
# formula of the fused-kernels section. The reduction, read from the file
# (`@cuda.jit(device=True)` above it makes it a function that kernels call, not a kernel):

# %%
cuda_fused_file = Path(kernels.__file__).parent / "cuda_fused.py"
print(function_source(cuda_fused_file, "_block_sum"))

# %% [markdown]
# The barrier inside the loop is what makes the fold correct: step $h$ reads slots that other
# threads wrote at step $2h$. The one before `return` keeps a fast thread from writing its
# next partial sum into `partial` (the forward reduces again right away) while a slower one is
# still reading `partial[0]`. Leaky relu needs no cooperation: one thread per element, in a
# grid-stride loop (thread $k$ of a grid of $G$ threads does elements $k, k + G, k + 2G,
# \dots$), so one launch of at most 1,024 blocks covers any size.
#
# ### Measured step times, CPU and GPU, with torch
#
# The test of the design is a whole training step. `bench/dcgan_step.py --device cuda` builds
# the DCGAN of lesson 13 once per implementation from one set of weights, checks that the first
# two steps give the same losses everywhere, then times steps in alternating blocks: the CPU
# backends (numpy, numba) on the machine's cores, tinygen on device tensors once per
# convolution method (`gpu:im2col`, `gpu:implicit_gemm`; every step ends by waiting for the
# GPU, whose calls return before their work is done), and torch on the GPU with
# `--torch-device cuda`. The targets of the design are a device step at least 3 times faster
# than numba's at batch 64 and 10 times at batch 256 (`bash bench/gpu_check.sh`, steps 5 and
# 6). Where a GPU is available, the cell below runs it at batch 64 with few repeats and prints
# its table; elsewhere it prints the old design's table for contrast, and no new numbers.

# %%
if tg.devices.is_available("cuda"):
    bench_command = [sys.executable, "bench/dcgan_step.py", "--device", "cuda", "--batch", "64",
                     *pick(["--blocks", "5"], ["--blocks", "2", "--block-size", "2",
                                               "--warmup", "1"])]
    if importlib.util.find_spec("torch") is not None:
        bench_command += ["--torch-device", "cuda"]
    repository = HERE.parent
    bench_environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(repository)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    print("$", " ".join(["python"] + bench_command[1:]))
    finished = subprocess.run(bench_command, cwd=repository, env=bench_environment,
                              capture_output=True, text=True, timeout=300)
    print(finished.stdout.strip() if finished.returncode == 0 else
          f"the bench failed (exit status {finished.returncode}):\n"
          + "\n".join(finished.stderr.strip().splitlines()[-5:]))
else:
    print(f"no GPU here ({why_not}).")
    print("Device-tensor step times come from `bash bench/gpu_check.sh` (steps 5 and 6) on a GPU "
          "machine;\nthey have not been measured yet for this design. For contrast, the old "
          "design on an H200\n(DCGAN step time / the numpy backend's step on the same machine):")
    columns = list(old_design_steps[64])
    print(f"   {'batch':>5}" + "".join(f"{name:>24}" for name in columns))
    for batch_size, ratios in old_design_steps.items():
        print(f"   {batch_size:>5}" + "".join(f"{ratios[name]:24.3f}" for name in columns))

# %% [markdown]
# ## Every backend gives the same numbers
#
# `tinygen.backend.available()` lists the backends that can run here; `tinygen.backend.use(name)`
# switches to one, for the rest of the program or (as a context manager) inside a `with` block.
# Models never name a backend, so a network is the same program on every one. We run a
# convolution and a transposed convolution forward and backward through autograd on each
# backend, in float32, and compare with NumPy's results.
#
# Where do backends come from? `tinygen/kernels/__init__.py` keeps a registry, fastest first:
# each entry names a kernel module, whether it runs on the CPU or a GPU, and a check that says why
# it cannot run here (no numba, no GPU). A module joins by defining the three functions of the
# `ConvKernels` protocol; adding a backend is that one file plus one `register(Backend(...))`
# line, and the switch, `tinygen info` and the tests pick it up. `tinygen.backend.status()` is
# the registry as seen from this machine:

# %%
for entry in tg.backend.status():
    print(f"{entry.name:6s} {entry.device}: "
          + ("available" if entry.available else f"not available ({entry.why_not})"))

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
if numba_kernels is not None:
    # C kH kW = 27 < THIN_WINDOW, so numba ran NumPy's kernel above. Force its channels-last
    # kernel (as bench/conv_thin.py does) to see what the rule spares this layer.
    kept_threshold = numba_kernels.THIN_WINDOW
    numba_kernels.THIN_WINDOW = 0
    try:
        numba_kernels.conv2d(tiny_x, tiny_w, (1, 1), (1, 1))
        forced = median_seconds(lambda: numba_kernels.conv2d(tiny_x, tiny_w, (1, 1), (1, 1)),
                                pick(200, 50))
    finally:
        numba_kernels.THIN_WINDOW = kept_threshold
    print(f"tiny layer, numba's channels-last kernel forced (THIN_WINDOW = 0): "
          f"{forced * 1e3:.3f} ms, {forced / tiny['numpy']:.0f} times NumPy's time")

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
# milliseconds: a factor of thousands, bought by letting BLAS do the arithmetic. Between NumPy
# and Numba the difference is far smaller, because both wait on the same BLAS products: Numba
# wins only in the data movement around them, which is where the channels-last windows, the
# race-free scatter-add, the reused buffers and the saved window matrix pay. `bench/conv.py`,
# which times each kernel many times, alternating the backends, measured numba's time on D2
# (forward and both gradients) at 0.59 times NumPy's. On a whole DCGAN training step
# (`bench/dcgan_step.py`, where the fused batch norm and leaky relu count too) numba took 0.54
# times NumPy's time, and 1.8 times PyTorch's on the same CPU. That is why numba is now
# tinygen's default on a CPU, with numpy kept as the readable reference and the fallback where
# numba is not installed.
#
# Which one wins on your machine depends on its cores, its BLAS and what else is running: look
# at the ratios above, and run the lesson twice. Timings on a shared machine are noisy: trust a
# ratio only when it is large or repeats. And a parallel kernel has a fixed cost: forced onto
# the channels-last kernel, the tiny layer above is many times slower than NumPy's (the line
# printed above), because waking a pool of threads costs more than the work they share. That
# is the THIN_WINDOW rule again, at a smaller scale. A GPU is where the next factor of a
# hundred lives.

# %%
fig = plot.new_figure(11, 4)
tiny_axes, layer_axes = fig.subplots(1, 2, width_ratios=[2, 3])
names = list(tiny)
tiny_axes.bar(names, [tiny[n] * 1e3 for n in names], color=[f"C{k}" for k in range(len(names))])
tiny_axes.set_yscale("log")
tiny_axes.set_ylim(top=max(tiny.values()) * 1e3 * 3)  # room for the labels above the bars
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
layer_axes.set_ylim(top=max(max(t.values()) for t in timings.values()) * 1e3 * 3)
layer_axes.set_ylabel("forward + backward time (ms, log scale)")
layer_axes.set_title(f"DCGAN layers, batch {batch}")
layer_axes.legend(fontsize=8, loc="center right")
plot.save(fig, figure("14_conv_speed.png"))

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
# 2. **Where the time goes now.** Build the D2 layer's `x (64, 64, 14, 14)` and
#    `w (128, 64, 4, 4)` in float32, and with `median_seconds` time the window matrix alone,
#    `cols = numba_conv._window_matrix(x, (4, 4), (2, 2), (1, 1))` (import `numba_conv` from
#    `tinygen.kernels`), and the product alone, `numba_conv._weight_matrix(w) @ cols.T`. Then the
#    same for NumPy: `numpy_conv.im2col(x, (4, 4), (2, 2), (1, 1))` and
#    `w.reshape(128, -1) @ cols`. The two products do the same arithmetic in the same BLAS: how
#    much of the forward's numba / numpy ratio do the two window builds explain, and what is
#    left (look at what `_conv2d_from_windows` does after the product)?
# 3. **Where would you put THIN_WINDOW?** Run `python bench/conv_thin.py` (a few seconds; it
#    prints the table of the Numba section, measured on your machine). At which $C$ does the
#    ratio cross 1 here, and what value of `numba_conv.THIN_WINDOW` would you choose? Run it
#    again with `NUMBA_NUM_THREADS=1`: does the crossing move, and which way would more cores
#    move it?
# 4. **Threads.** Run the lesson with `NUMBA_NUM_THREADS=1` (and with `OPENBLAS_NUM_THREADS=1`) in
#    the environment. Which backend slows down, and by how much?
# 5. **Read the simulator's threads.** In `SIMULATOR_CHECK`, make the layer bigger
#    (`x (8, 16, 14, 14)`, `w (32, 16, 4, 4)`) and watch the time grow. With `TILE = 16` in
#    `cuda_conv.py`, how many blocks and threads does the forward launch for it (M, K, P as in the
#    text)? Why must a 32 x 32 tile be the largest (look up the CUDA limit of threads per block)?
# 6. **Your own transposed convolution.** Build `F.conv_transpose2d(x, w, stride=2, padding=1)` for
#    a random `x (1, 3, 7, 7)` and `w (3, 2, 4, 4)` from `numpy_conv.conv2d_grad_input` alone and
#    check it against tinygen's. What output shape do you need to pass, and why?
# 7. **Count the copies.** Wrap `tg.devices.to_device` in a function that counts the calls in
#    which the array changes device (compare `tg.devices.device_of(array)` with
#    `tg.devices.device(target)`) and then calls the original, and put it in its place
#    (`tg.devices.to_device = counting`). On the GPU, or inside
#    `with tg.devices.use_library("cuda", TRACED):`, make `gan = tg.models.dcgan().to("cuda")`,
#    `optimizers = tg.models.gan_optimizers(gan)` and a batch
#    `tg.rand(16, 1, 28, 28, device="cuda") * 2 - 1`, then run
#    `gan.train_step(batch, optimizers)` three times. How many copies does the setup make, and
#    how many does each step make? Find the line of `tinygen/models/gan.py` behind the ones in a
#    step. `_grad_norm` in the same file reads one number from the device every step, with
#    `float()`: why does your counter not see it, and what does such a read cost on a GPU
#    besides its 4 bytes (think of the asynchronous calls of the last section)?
# 8. **Why draw on the host?** `tg.randn(64, 100, device="cuda")` draws its numbers with NumPy
#    on the host and copies them over (`tinygen/creation.py`). Check what this buys: after
#    `tg.manual_seed(1)`, draw with `device="cuda"` (or on the `TRACED` stand-in), seed again and
#    draw on the CPU, and compare the values. How many bytes cross the bus for the DCGAN's noise
#    at batch 64, and how does that compare with what the old design copied per step (the table
#    of the first section)? What would be lost by drawing with CuPy's own generator instead?
