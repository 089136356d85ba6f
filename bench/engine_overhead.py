"""How much does autograd cost? A 784-400-20-400-784 MLP autoencoder step, \
tinygen vs hand-written NumPy.

Both compute the same forward (ReLU hidden layers, sigmoid output, mean squared error) and the
gradients of all eight parameters at batch 128 in float32. The NumPy version is the backward a
student would derive on paper. Timings alternate between the two in one run (the machine is
noisy) and the ratio of medians is printed. Target: tinygen / NumPy < 1.3.

They alternate in blocks of steps, not step by step: a training loop runs its steps back to back,
while strict alternation of two different allocation patterns makes the C allocator hand memory
back to the system and fault it in again on every step (about a thousand page faults per step
here), which measures the allocator rather than either implementation.

Second, the cost of one op itself: a chain of CHAIN_OPS small ops (x * 1.01, + 0.01, tanh,
repeated) on a 4 x 4 float32 tensor, forward and backward, where the arithmetic is nothing and
everything is the engine (building the graph, wrapping arrays, walking the graph back). Printed
in microseconds per op, against the same chain in torch when it is installed (same run,
alternating blocks): tinygen / torch per op.

    python bench/engine_overhead.py [--blocks 20] [--block-size 10] [--batch 128]
"""
import argparse
import os

import numpy as np
from machine import interleaved_medians

import tinygen as tg

try:
    import torch
except ImportError:
    torch = None

SIZES = [784, 400, 20, 400, 784]
CHAIN_OPS = 300  # ops in the small-op chain: 100 rounds of mul, add, tanh


def init_params(rng):
    """PyTorch-style uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights (in, out) and biases."""
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(n_in)
        params.append(rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, n_out).astype(np.float32))
    return params


def numpy_step(x, params):
    """Forward and backward by hand. Returns the loss and the eight gradients."""
    # ReLU hidden layers, a linear 20-unit code, a sigmoid output.
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    # forward
    a1 = x @ w1 + b1
    h1 = np.maximum(a1, 0)
    z = h1 @ w2 + b2
    a3 = z @ w3 + b3
    h3 = np.maximum(a3, 0)
    a4 = h3 @ w4 + b4
    r = 1 / (1 + np.exp(-a4))
    diff = r - x
    loss = np.mean(diff * diff)
    # backward: L = mean((r - x)^2), r = sigmoid(a4)
    g_r = diff * (2 / diff.size)
    g_a4 = g_r * r * (1 - r)
    g_w4, g_b4 = h3.T @ g_a4, g_a4.sum(axis=0)
    g_a3 = (g_a4 @ w4.T) * (a3 > 0)
    g_w3, g_b3 = z.T @ g_a3, g_a3.sum(axis=0)
    g_z = g_a3 @ w3.T
    g_w2, g_b2 = h1.T @ g_z, g_z.sum(axis=0)
    g_a1 = (g_z @ w2.T) * (a1 > 0)
    g_w1, g_b1 = x.T @ g_a1, g_a1.sum(axis=0)
    return loss, [g_w1, g_b1, g_w2, g_b2, g_w3, g_b3, g_w4, g_b4]


def tinygen_step(x, params):
    """The same step with tinygen's autograd."""
    for p in params:
        p.grad = None
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    h1 = (x @ w1 + b1).relu()
    z = h1 @ w2 + b2
    h3 = (z @ w3 + b3).relu()
    r = (h3 @ w4 + b4).sigmoid()
    diff = r - x
    loss = (diff * diff).mean()
    loss.backward()
    return loss.item(), [p.grad.data for p in params]


def op_chain(x):
    """CHAIN_OPS small ops and their backward; x is a tinygen or torch leaf. Returns x's grad."""
    x.grad = None
    y = x
    for _ in range(CHAIN_OPS // 3):
        y = (y * 1.01 + 0.01).tanh()
    y.sum().backward()
    return x.grad


def per_op_overhead(blocks, block_size):
    """Print tinygen's (and torch's) microseconds per op on the small-op chain."""
    start = np.random.default_rng(1).standard_normal((4, 4)).astype(np.float32)
    steps = {"tinygen": lambda: op_chain(tg.tensor(start, requires_grad=True))}
    if torch is not None:
        steps["torch"] = lambda: op_chain(torch.tensor(start, requires_grad=True))
        g_tg, g_torch = steps["tinygen"]().data, steps["torch"]().numpy()
        np.testing.assert_allclose(g_tg, g_torch, rtol=1e-4, atol=1e-6)  # same chain, same grad
    median = interleaved_medians(steps, blocks, block_size)
    print(f"chain of {CHAIN_OPS} small ops (mul, add, tanh) on a 4 x 4 float32 tensor, forward + "
          f"backward, median of {blocks} x {block_size} chains")
    for name, seconds in median.items():
        print(f"  {name:14s}: {seconds / CHAIN_OPS * 1e6:8.2f} us per op")
    if torch is not None:
        print(f"  ratio tinygen / torch per op = {median['tinygen'] / median['torch']:.3f}")
    else:
        print("  torch not installed: no baseline")


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=3 if quick else 20)
    parser.add_argument("--block-size", type=int, default=5 if quick else 10)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((args.batch, SIZES[0])).astype(np.float32)
    params = init_params(rng)
    tg_x = tg.tensor(x)
    tg_params = [tg.tensor(p, requires_grad=True) for p in params]

    # Same numbers first: the comparison means nothing otherwise.
    loss_np, grads_np = numpy_step(x, params)
    loss_tg, grads_tg = tinygen_step(tg_x, tg_params)
    assert abs(loss_np - loss_tg) <= 1e-6 * abs(loss_np), (loss_np, loss_tg)
    for g_np, g_tg in zip(grads_np, grads_tg):
        np.testing.assert_allclose(g_tg, g_np, rtol=1e-4, atol=1e-7)

    steps = {
        "numpy": lambda: numpy_step(x, params),
        "tinygen": lambda: tinygen_step(tg_x, tg_params),
    }
    median = interleaved_medians(steps, args.blocks, args.block_size)
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {args.batch}, float32, "
          f"forward + backward, median of {args.blocks} x {args.block_size} steps")
    print(f"  numpy by hand : {median['numpy'] * 1e3:8.2f} ms")
    print(f"  tinygen       : {median['tinygen'] * 1e3:8.2f} ms")
    print(f"  ratio tinygen / numpy = {median['tinygen'] / median['numpy']:.3f}  (target < 1.3)")
    per_op_overhead(args.blocks, max(1, args.block_size // 2))


if __name__ == "__main__":
    main()
