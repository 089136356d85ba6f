"""The fused numba ops against the composites they replace: batch norm and leaky relu of the DCGAN.

tinygen/nn/functional.py builds batch norm and leaky relu from primitives (the numpy backend runs
those); the numba backend runs one fused op each (tinygen/ops/fused.py, kernels in
tinygen/kernels/numba_fused.py). Timed here, through autograd as a training step runs them: the
forward and one backward (a fixed upstream gradient), on the activations of the MNIST DCGAN at
batch 64 (float32):
    BatchNorm1d(6272)  train   G's first layer        (64, 6272)
    BatchNorm2d(64)    train   G's second layer       (64, 64, 14, 14)
    BatchNorm2d(128)   train   D's third layer        (64, 128, 7, 7)
    BatchNorm2d(128)   eval    the same, sampling     (64, 128, 7, 7), forward only (no_grad)
    LeakyReLU(0.2)             D's first activation   (64, 64, 14, 14)
and the updates of the infogan DCGAN's largest weight (1024, 6272), float32, numpy's passes
against the numba kernels of tinygen/kernels/numba_optim.py:
    Adam step                  optim.Adam (DCGAN's betas), one step
    EMA update                 ema.ExponentialMovingAverage.update, decay 0.999
Before timing, each pair is checked equal (float32, rtol 1e-5). Medians of interleaved blocks;
ratios fused / composite.

    python bench/fused_ops.py [--batch 64] [--blocks 10] [--repeats 5]
TINYGEN_QUICK=1 runs batch 4 with few repeats.
"""
import argparse
import os

import numpy as np
from machine import interleaved_medians, machine_report

import tinygen as tg
from tinygen import nn


def cases(batch):
    """name -> (module, input shape, training?)."""
    return {
        "BatchNorm1d(6272) train": (nn.BatchNorm1d(6272), (batch, 6272), True),
        "BatchNorm2d(64) train": (nn.BatchNorm2d(64), (batch, 64, 14, 14), True),
        "BatchNorm2d(128) train": (nn.BatchNorm2d(128), (batch, 128, 7, 7), True),
        "BatchNorm2d(128) eval": (nn.BatchNorm2d(128), (batch, 128, 7, 7), False),
        "LeakyReLU(0.2)": (nn.LeakyReLU(0.2), (batch, 64, 14, 14), True),
    }


def make_call(backend, module, x, upstream, training):
    """A call running module forward (and backward in training) on backend; returns y, dL/dx."""
    module.train(training)

    def call():
        with tg.backend.use(backend):
            if not training:
                with tg.no_grad():
                    return module(x).data, None
            x.grad = None
            y = module(x)
            y.backward(upstream)
            return y.data, x.grad.data

    return call


UPDATE_SHAPE = (1024, 6272)  # the infogan DCGAN's D.6.weight


def update_calls(rng):
    """name -> {backend: a call making one Adam step / EMA update on its own copy} of one large
    weight, and the check that both backends' first calls agree."""
    from tinygen.ema import ExponentialMovingAverage
    w0 = rng.standard_normal(UPDATE_SHAPE).astype(np.float32)
    grad = rng.standard_normal(UPDATE_SHAPE).astype(np.float32)
    calls = {"Adam step": {}, "EMA update": {}}
    for backend in ("numpy", "numba"):
        p = tg.tensor(w0, requires_grad=True)
        p.grad = tg.tensor(grad)
        adam = tg.optim.Adam([p], lr=1e-3, betas=(0.5, 0.999))
        model = nn.Linear(*UPDATE_SHAPE[::-1], bias=False)
        model.weight.data[...] = w0
        ema = ExponentialMovingAverage(model, decay=0.999)
        ema.update(model)  # the first update copies; the timed ones average

        def adam_step(backend=backend, adam=adam, p=p):
            with tg.backend.use(backend):
                adam.step()
            return p.data

        def ema_update(backend=backend, ema=ema, model=model):
            with tg.backend.use(backend):
                ema.update(model)
            return ema.module.weight.data

        calls["Adam step"][backend] = adam_step
        calls["EMA update"][backend] = ema_update
    for name, pair in calls.items():
        np.testing.assert_allclose(pair["numba"](), pair["numpy"](), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    return calls


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4 if quick else 64)
    parser.add_argument("--blocks", type=int, default=2 if quick else 10)
    parser.add_argument("--repeats", type=int, default=2 if quick else 5)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    rng = np.random.default_rng(0)

    rows = []
    for name, (module, shape, training) in cases(args.batch).items():
        x = tg.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
        upstream = tg.tensor(rng.standard_normal(shape).astype(np.float32))
        calls = {backend: make_call(backend, module, x, upstream, training)
                 for backend in ("numpy", "numba")}
        composite, fused = calls["numpy"](), calls["numba"]()  # also compiles and warms up
        for got, expected in zip(fused, composite):
            if expected is not None:
                scale = max(1.0, float(np.abs(expected).max()))
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale,
                                           err_msg=name)
        seconds = interleaved_medians(calls, args.blocks, args.repeats)
        rows.append((name, shape, seconds["numpy"] * 1e3, seconds["numba"] * 1e3))
    for name, calls in update_calls(rng).items():
        seconds = interleaved_medians(calls, args.blocks, args.repeats)
        rows.append((name, UPDATE_SHAPE, seconds["numpy"] * 1e3, seconds["numba"] * 1e3))

    print(f"Fused numba ops vs the composites, float32, forward + backward through autograd "
          f"(eval: forward under no_grad); median of {args.blocks} blocks x {args.repeats} calls")
    for line in machine_report(["numba"], load_start, compares_with_torch=False):
        print(line)
    print("checks: fused == composite (outputs and input gradients, rtol 1e-5) ok")
    print(f"  {'op':26}{'input':>20}{'composite ms':>14}{'fused ms':>10}{'ratio':>8}")
    for name, shape, composite_ms, fused_ms in rows:
        print(f"  {name:26}{str(shape):>20}{composite_ms:14.2f}{fused_ms:10.2f}"
              f"{fused_ms / composite_ms:8.2f}")


if __name__ == "__main__":
    main()
