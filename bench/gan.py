"""An MLP GAN on MNIST with k = 1 and k = 5 discriminator steps per generator step, scored by FID
after the same wall-clock budget of training each.

The model (the `tinygen train gan` recipe): G 100-256-512-784 (ReLU, Tanh output), D 784-512-256-1
(LeakyReLU 0.2), z ~ N(0, I), images scaled to [-1, 1], Adam lr 2e-4 betas (0.5, 0.999) for both
players, the non-saturating generator loss, m = 64 samples per step. One iteration of
models.GAN.train_step takes k * m training digits: k discriminator steps of m each, then one
generator step. Both runs start from the same weights.

The two runs take turns in blocks of --block-seconds (so they share the machine's load alike) and
each stops once its own training time reaches --budget seconds; the seconds counted are those of
train_step only. Then each is scored in eval mode: the FID (tinygen.mnist_classifier.fid) of
--n-eval generated digits against the 10,000 test digits, with the real-vs-real floor at the same N
beside it, and the MNIST score. The question the course asks: with a fixed budget, are k > 1
discriminator steps worth their price? (k = 5 spends 5/6 of its time on D.)

Written to --out: the final 64 samples of each run. Data: the full MNIST when found (--root or
$TINYGEN_DATA), else the bundled subset. TINYGEN_QUICK=1: a 3-second budget on the bundled
subset, 200 scored digits.

    TINYGEN_DATA=/path/to/mnist python bench/gan.py [--budget 120] [--out /tmp/gan_k] [--seed 0]
"""
import argparse
import math
import os
import tempfile
import time

import numpy as np
from machine import machine_report
from mnist_inputs import load

import tinygen as tg
from tinygen import mnist_classifier, plot
from tinygen.models import GAN, gan_optimizers, mlp_discriminator, mlp_generator

LATENT, BATCH, KS = 100, 64, (1, 5)


def build(k=1):
    return GAN(mlp_generator(LATENT, (256, 512), 784), mlp_discriminator(784, (512, 256)), LATENT,
               k=k)


class Run:
    """One GAN with its own k, optimizers, data order and clock."""

    def __init__(self, state, k, images, seed):
        self.k = k
        self.gan = build(k)
        self.gan.load_state_dict(state)
        self.optimizers = gan_optimizers(self.gan)
        self.images = images
        self.rng = np.random.default_rng(seed)
        self.order, self.position = self.rng.permutation(len(images)), 0
        self.seconds = 0.0
        self.iterations = 0
        self.last = {}

    def next_batch(self):
        """k * m digits; a new permutation when the epoch runs out."""
        size = self.k * BATCH
        if self.position + size > len(self.order):
            self.order, self.position = self.rng.permutation(len(self.images)), 0
        batch = self.images[self.order[self.position:self.position + size]]
        self.position += size
        return batch

    def train_for(self, seconds, budget):
        """Iterations until `seconds` more (or the whole budget) of training time are spent."""
        stop = min(self.seconds + seconds, budget)
        while self.seconds < stop:
            batch = tg.tensor(self.next_batch())
            start = time.perf_counter()
            metrics = self.gan.train_step(batch, self.optimizers)
            self.seconds += time.perf_counter() - start
            self.iterations += 1
            self.last = {name: float(np.asarray(getattr(v, "data", v))) for name, v in
                         metrics.items()}
            if not all(math.isfinite(v) for v in self.last.values()):
                raise SystemExit(f"k = {self.k}: non-finite metrics {self.last}")


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=3.0 if quick else 120.0,
                        help="seconds of training for each k")
    parser.add_argument("--block-seconds", type=float, default=1.0 if quick else 10.0)
    parser.add_argument("--n-eval", type=int, default=200 if quick else 10000)
    parser.add_argument("--root", default=None, help="the MNIST folder (else $TINYGEN_DATA)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out or os.path.join(tempfile.gettempdir(), "gan_k_quick" if quick else "gan_k")
    load_start = os.getloadavg()[0]

    train, _, which = load("train", args.root, quick_size=1000 if quick else None)
    test, _, _ = load("test", args.root, quick_size=200 if quick else None)
    images = train * 2 - 1  # [0, 1] -> [-1, 1], the Tanh generator's range

    tg.manual_seed(args.seed)
    state = build().state_dict()
    runs = [Run(state, k, images, args.seed + k) for k in KS]
    print(f"MLP GAN on {which} ({len(images)} digits), m = {BATCH}, k in {KS}, "
          f"{args.budget:.0f} s of training each, in turns of {args.block_seconds:.0f} s",
          flush=True)
    while any(run.seconds < args.budget for run in runs):
        for run in runs:
            run.train_for(args.block_seconds, args.budget)

    z = tg.tensor(np.random.default_rng(args.seed + 100).standard_normal(
        (args.n_eval, LATENT)).astype(np.float32))
    floor_train = train[np.random.default_rng(args.seed).choice(
        len(train), size=min(args.n_eval, len(train)), replace=False)]
    floor = mnist_classifier.fid(floor_train, test)
    print()
    print(f"MLP GAN, MNIST ({which}), budget {args.budget:.0f} s of train_step each, Adam 2e-4 "
          f"betas (0.5, 0.999), non-saturating loss, float32")
    report = machine_report(["numpy"], load_start, compares_with_torch=False)
    for line in [report[0]] + report[2:]:  # not the torch line: this bench has no torch baseline
        print(line)
    print(f"  {'k':>3}{'iterations':>12}{'G steps/s':>11}{'D steps':>9}{'digits seen':>13}"
          f"{'FID':>9}{'MNIST score':>16}   last D(x), D(G(z))")
    fids = {}
    for run in runs:
        run.gan.eval()
        with tg.no_grad():
            fake = run.gan.generator(z).numpy()
        fids[run.k] = mnist_classifier.fid(fake, test, value_range=(-1, 1), value_range_b=(0, 1))
        mean, sd = mnist_classifier.mnist_score(fake, value_range=(-1, 1))
        plot.image_grid(fake[:64], os.path.join(out, f"samples_k{run.k}.png"), value_range=(-1, 1))
        print(f"  {run.k:3d}{run.iterations:12d}{run.iterations / run.seconds:11.1f}"
              f"{run.iterations * run.k:9d}{run.iterations * run.k * BATCH:13d}"
              f"{fids[run.k]:9.2f}{mean:10.2f} +- {sd:.2f}   {run.last['d_real']:.3f}, "
              f"{run.last['d_fake']:.3f}")
    print(f"  real-vs-real floor: FID {floor:.2f} ({len(floor_train)} training digits vs "
          f"{len(test)} test digits); generated digits scored: {args.n_eval}")
    print(f"  FID ratio k = 5 / k = 1 at equal wall-clock: {fids[5] / fids[1]:.3f} "
          f"({'k = 5 better' if fids[5] < fids[1] else 'k = 1 better'})")
    print(f"  samples written to {out}/samples_k1.png, samples_k5.png")


if __name__ == "__main__":
    main()
