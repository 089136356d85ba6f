"""An ablation of the DCGAN recipe: the baseline, each GAN technique added alone, then several
together, each trained on MNIST for the same number of steps and scored alike.

    TINYGEN_DATA=/path/to/mnist python bench/dcgan_recipe.py                  # 1 epoch each
    TINYGEN_DATA=/path/to/mnist python bench/dcgan_recipe.py --epochs 3 --seeds 0 1
    python bench/dcgan_recipe.py --variants baseline ema                      # a few of them
    python bench/dcgan_recipe.py --model mlp --epochs 10     # the MLP GAN of lesson 11 instead
    python bench/dcgan_recipe.py --steps 100 --n 1000        # seconds per step of each technique

Variants (tinygen.models.dcgan's keyword arguments, tinygen.models.gan_optimizers' rates):
    baseline      the course's DCGAN: Adam 2e-4, beta1 0.5, batch 64, non-saturating G loss
    ema           G's weights averaged with decay 0.999, and samples drawn from the average
    emawarm       the same with the decay ramped up, min(0.999, (1 + t) / (10 + t)) at step t
    smooth        one-sided label smoothing: D's target for real images 0.9
    ttur          two learning rates: D 4e-4, G 1e-4
    sn            spectral normalisation of D's layers (D then has no batch norm)
    dropout       dropout 0.3 after each of D's LeakyReLUs
    wide          G with twice the channels
    lr2x, lr4x    both learning rates 4e-4, or 8e-4 (instead of DCGAN's 2e-4)
    ema+smooth    (and the other combinations named with +): those techniques together

Each variant starts from the same seed (the same data order; its own initial weights where the
architecture differs) and trains the same number of steps, timed; its samples (N = 10,000, or
--n) are scored against the MNIST test set with the shipped classifier: FID beside the real-vs-real
floor at the same N, and the MNIST score. The ratio column is each variant's FID over the
baseline's from the same run (below 1: better). Training is the expensive part; the variants run
one after another, so a machine whose speed drifts affects the seconds column, not the scores.
TINYGEN_QUICK=1: 8 steps each on 512 bundled digits, N = 300, three variants that use every
technique but the wide G: a smoke test.
"""
import argparse
import os
import time

import machine  # noqa: F401  (importing it makes Ctrl-C end the bench with one line)
import mnist_inputs
import numpy as np

import tinygen as tg
from tinygen import mnist_classifier as mc
from tinygen import models
from tinygen.data import DataLoader, load_mnist
from tinygen.train import fit

QUICK = os.environ.get("TINYGEN_QUICK") == "1"
BATCH = 64

# name -> (dcgan keyword arguments, gan_optimizers keyword arguments)
TECHNIQUES = {
    "ema": ({"ema_decay": 0.999}, {}),
    "emawarm": ({"ema_decay": 0.999, "ema_warmup": True}, {}),
    "smooth": ({"real_label": 0.9}, {}),
    "ttur": ({}, {"lr_discriminator": 4e-4, "lr_generator": 1e-4}),
    "sn": ({"spectral_norm": True}, {}),
    "dropout": ({"discriminator_dropout": 0.3}, {}),
    "wide": ({"generator_width": 2.0}, {}),
    "lr2x": ({}, {"lr": 4e-4}),
    "lr4x": ({}, {"lr": 8e-4}),
}
DEFAULT_VARIANTS = ["baseline", "ema", "smooth", "ttur", "sn", "dropout", "ema+smooth+ttur"]
QUICK_VARIANTS = ["baseline", "sn", "ema+smooth+ttur+dropout"]


def settings(variant):
    """(dcgan kwargs, optimizer kwargs) of a variant such as "ema+ttur" ("baseline": none)."""
    model_kwargs, optimizer_kwargs = {}, {}
    if variant == "baseline":
        return model_kwargs, optimizer_kwargs
    for name in variant.split("+"):
        if name not in TECHNIQUES:
            raise SystemExit(f"dcgan_recipe: unknown technique {name!r} in {variant!r}; "
                             f"choose from {', '.join(TECHNIQUES)}")
        model_kwargs.update(TECHNIQUES[name][0])
        optimizer_kwargs.update(TECHNIQUES[name][1])
    return model_kwargs, optimizer_kwargs


def build(model, model_kwargs):
    """models.dcgan or models.mlp_gan (the MLP GAN of lesson 11) with the variant's techniques."""
    if model == "dcgan":
        return models.dcgan(100, **model_kwargs)
    if "generator_width" in model_kwargs:
        raise SystemExit("dcgan_recipe: 'wide' widens the DCGAN's generator; the MLP GAN has no "
                         "width option")
    return models.mlp_gan(100, **model_kwargs)


def train_variant(variant, images, epochs, seed, max_steps=None, model="dcgan"):
    """Train one variant from seed; returns (model, training seconds, steps)."""
    model_kwargs, optimizer_kwargs = settings(variant)
    tg.manual_seed(seed)
    gan = build(model, model_kwargs)
    optimizers = models.gan_optimizers(gan, **optimizer_kwargs)
    loader = DataLoader(images, BATCH, shuffle=True, seed=seed)
    batches = loader if max_steps is None else list(loader)[:max_steps]
    started = time.perf_counter()
    fit(gan, batches, optimizers, epochs, progress=False)
    steps = epochs * (len(loader) if max_steps is None else len(batches))
    return gan, time.perf_counter() - started, steps


def score(gan, n, test_images, seed):
    """(FID against the test digits, MNIST score mean) of n samples, drawn 1,000 at a time."""
    gan.eval()
    tg.manual_seed(seed + 1000)
    chunks = [gan.sample(min(1000, n - start)).data for start in range(0, n, 1000)]
    samples = np.concatenate(chunks).reshape(-1, 1, 28, 28)
    fid = mc.fid(samples, test_images, value_range=(-1, 1))
    return fid, mc.mnist_score(samples, value_range=(-1, 1))[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+",
                        default=QUICK_VARIANTS if QUICK else DEFAULT_VARIANTS)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n", type=int, default=10000, help="samples scored per variant")
    parser.add_argument("--steps", type=int, default=None,
                        help="train only this many steps of each epoch (to time the techniques)")
    parser.add_argument("--root", default=None, help="MNIST folder (default: TINYGEN_DATA)")
    parser.add_argument("--model", choices=("dcgan", "mlp"), default="dcgan",
                        help="the DCGAN (lesson 13) or the MLP GAN (lesson 11, flat digits)")
    args = parser.parse_args()
    for variant in args.variants:
        build(args.model, settings(variant)[0])  # unknown or inapplicable names fail first
    unit, _, which = mnist_inputs.load("train", args.root, 512 if QUICK else None)
    images = unit * 2 - 1  # [0, 1] -> [-1, 1], as G's tanh
    if args.model == "dcgan":
        images = images.reshape(-1, 1, 28, 28)
    n = 300 if QUICK else args.n
    if QUICK:
        test_images = load_mnist("test", subset="bundled")[0][:1000]
    else:
        test_images = load_mnist("test", root=args.root)[0]
    if QUICK:
        floor = mc.fid(load_mnist("train", subset="bundled")[0][:n], test_images)
    else:  # n random training digits against the test set, as `tinygen score` prints it
        floor = mc.real_floor(n, root=args.root)["fid"]
    max_steps = 8 if QUICK else args.steps
    print(f"{args.model} recipe ablation on {which}: {len(images)} digits, batch {BATCH}, "
          f"{args.epochs} epoch(s) per variant, seeds {args.seeds}, N = {n} samples scored "
          f"against {len(test_images)} test digits; backend {tg.backend.current()}")
    print(f"real-vs-real floor at N = {n}: FID {floor:.1f}")
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            gan, seconds, steps = train_variant(variant, images, args.epochs, seed, max_steps,
                                                args.model)
            fid, mnist_score = score(gan, n, test_images, seed)
            rows.append((variant, seed, steps, seconds, fid, mnist_score))
            print(f"  {variant:22s} seed {seed}: {steps} steps in {seconds:6.1f} s, "
                  f"FID {fid:7.1f}, MNIST score {mnist_score:5.2f}", flush=True)
    baseline = {seed: fid for variant, seed, _, _, fid, _ in rows if variant == "baseline"}
    print(f"\n{'variant':22s} {'seed':>4s} {'steps':>6s} {'seconds':>8s} {'FID':>7s} "
          f"{'MNIST score':>11s} {'FID ratio to baseline':>22s}")
    for variant, seed, steps, seconds, fid, mnist_score in rows:
        ratio = f"{fid / baseline[seed]:.2f}" if seed in baseline else "-"
        print(f"{variant:22s} {seed:4d} {steps:6d} {seconds:8.1f} {fid:7.1f} {mnist_score:11.2f} "
              f"{ratio:>22s}")


if __name__ == "__main__":
    main()
