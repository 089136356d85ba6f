"""DCGAN on MNIST in tinygen against the same recipe in torch, trained in one run, scored alike.

The recipe (the course's DCGAN; tinygen.models.dcgan, architecture as in bench/dcgan_step.py):
    G: z (100) ~ N(0, I) -> Linear + BatchNorm1d + ReLU -> (128, 7, 7) -> ConvTranspose2d(128, 64,
       4, 2, 1) + BatchNorm2d + ReLU -> ConvTranspose2d(64, 1, 4, 2, 1) + Tanh -> (1, 28, 28)
    D: Conv2d(1, 64, 4, 2, 1) + LeakyReLU(0.2) -> Conv2d(64, 128, 4, 2, 1) + BatchNorm2d +
       LeakyReLU(0.2) -> Linear(128*7*7, 1), a logit
    weights N(0, 0.02) (BatchNorm scales N(1, 0.02)), biases 0; Adam lr 2e-4, betas (0.5, 0.999);
    batch 64 (the last partial batch of an epoch is dropped), k = 1, non-saturating generator loss
    from logits; images scaled to [-1, 1]; 5 epochs of the 60,000 training digits. (The paper's
    learning rate: `tinygen train dcgan` uses 8e-4 since issue 17, and bench/dcgan_recipe.py and
    bench/dcgan_recipe_torch.py compare recipes; this bench compares the engines on one.)
Every iteration is models.GAN.train_step: D on m real digits (label 1) and on m fakes from fresh z
(label 0, no graph into G), one Adam step on D; then fresh z, G through the updated D with D frozen,
one Adam step on G. The torch run does the same in torch.nn from the same initial weights (copied
through state_dict) on the same batches in the same order; its noise is torch's own. Checked
first: from those shared weights, every implementation's G gives the same 64 images (1e-4).

Timing: the implementations take turns in blocks of steps (so both see the same machine load; these
machines are shared and noisy) and each one's seconds per epoch sum its own steps only. Besides
numpy (every epoch), each other tinygen backend that runs here (numba; cuda only on a real GPU)
trains its own copy for --other-epochs (default 1) to time it; its loss means are printed as a
check.

Scoring, after the last epoch, every model in eval mode (BatchNorm's running statistics):
    FID: tinygen.mnist_classifier.fid of --n-eval generated digits against the 10,000 test digits;
         the real-vs-real floor (as many training digits against the test digits) beside it.
    MNIST score: the Inception Score with the same classifier (10 splits), the test digits' beside.
Targets (the issue): tinygen's FID within 10 % of torch's, its time per step within 2x torch's.
One run of each is one draw: GAN training is noisy, so read a 10 % FID gap with that in mind.

Written to --out: the fixed-noise grid after every epoch (tinygen: epochs/samples_epoch_NNN.png;
torch: torch_epochs/), 64 final samples of each, and the real-or-generated quiz with its answer key.

Data: the full MNIST when found (--root or $TINYGEN_DATA), else the bundled subset (10,000 / 2,000
digits). TINYGEN_QUICK=1: 64 digits of the bundled subset, batch 8, one epoch, 100 scored
samples (seconds; the targets are printed, not expected to be met).

    TINYGEN_DATA=/path/to/mnist python bench/dcgan.py [--epochs 5] [--out /tmp/dcgan] [--seed 0]
"""
import argparse
import math
import os
import tempfile
import time

import numpy as np
from dcgan_step import build
from machine import machine_report
from mnist_inputs import load

import tinygen as tg
from tinygen import mnist_classifier, plot
from tinygen.models import dcgan, gan_optimizers

try:
    import torch
    import torch.nn.functional as torch_F
except ImportError:
    torch = None

LATENT, LR, BETAS = 100, 2e-4, (0.5, 0.999)
TARGET_FID_RATIO, TARGET_TIME_RATIO = 1.10, 2.0


class TinygenDCGAN:
    """tinygen's DCGAN on one backend; step(images) is one GAN.train_step."""

    def __init__(self, state, backend):
        self.backend = backend
        self.gan = dcgan(LATENT)
        self.gan.load_state_dict(state)
        self.optimizers = gan_optimizers(self.gan, lr=LR, betas=BETAS)

    def step(self, images):
        with tg.backend.use(self.backend):
            metrics = self.gan.train_step(tg.tensor(images), self.optimizers)
        return float(metrics["loss_d"].item()), float(metrics["loss_g"].item())

    def generate(self, z):
        """G(z) in eval mode, as a NumPy array (N, 1, 28, 28) in [-1, 1]."""
        self.gan.eval()
        with tg.backend.use(self.backend), tg.no_grad():
            images = np.concatenate([self.gan.generator(tg.tensor(z[i:i + 500])).numpy()
                                     for i in range(0, len(z), 500)])
        self.gan.train()
        return images


class TorchDCGAN:
    """The same recipe in torch, from the same initial weights."""

    def __init__(self, state):
        self.G, self.D = build(torch.nn)  # bench/dcgan_step.py's DCGAN, in torch.nn's layers
        for prefix, model in (("generator.", self.G), ("discriminator.", self.D)):
            own = {key[len(prefix):]: torch.from_numpy(np.array(value))
                   for key, value in state.items() if key.startswith(prefix)}
            model.load_state_dict(own)  # strict: the keys, shapes and dtypes are torch's
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)

    def step(self, images):
        bce = torch_F.binary_cross_entropy_with_logits
        real = torch.from_numpy(images)
        m = len(real)
        ones, zeros = torch.ones(m, 1), torch.zeros(m, 1)
        with torch.no_grad():
            fake = self.G(torch.randn(m, LATENT))
        self.opt_d.zero_grad()
        loss_d = bce(self.D(real), ones) + bce(self.D(fake), zeros)
        loss_d.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)  # the generator step does not touch D, as in GAN.train_step
        self.opt_g.zero_grad()
        loss_g = bce(self.D(self.G(torch.randn(m, LATENT))), ones)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return loss_d.item(), loss_g.item()

    def generate(self, z):
        self.G.eval()
        with torch.no_grad():
            images = self.G(torch.from_numpy(z)).numpy()
        self.G.train()
        return images


def other_backends():
    """The tinygen backends other than numpy that run here (never cuda in numba's simulator)."""
    return [name for name in tg.backend.available(simulated=False) if name != "numpy"]


def save_grid(impl, z, path):
    return plot.image_grid(impl.generate(z), path, value_range=(-1, 1))


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1 if quick else 5)
    parser.add_argument("--other-epochs", type=int, default=1,
                        help="epochs timed on the other tinygen backends (numba, cuda)")
    parser.add_argument("--batch", type=int, default=8 if quick else 64)
    parser.add_argument("--block", type=int, default=4 if quick else 25,
                        help="steps each implementation runs before the next takes its turn")
    parser.add_argument("--n-eval", type=int, default=100 if quick else 10000,
                        help="generated digits scored (FID, MNIST score)")
    parser.add_argument("--root", default=None, help="the MNIST folder (else $TINYGEN_DATA)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out or os.path.join(tempfile.gettempdir(), "dcgan_quick" if quick else "dcgan")
    load_start = os.getloadavg()[0]

    train, _, which = load("train", args.root, quick_size=64 if quick else None)
    test, _, _ = load("test", args.root, quick_size=100 if quick else None)
    images = (train * 2 - 1).reshape(-1, 1, 28, 28).astype(np.float32)  # [0, 1] -> [-1, 1]
    steps_per_epoch = len(images) // args.batch

    tg.manual_seed(args.seed)
    state = dcgan(LATENT).state_dict()  # one initialisation, copied into every implementation
    runs = {"numpy": TinygenDCGAN(state, "numpy")}
    for name in other_backends():
        runs[name] = TinygenDCGAN(state, name)
    if torch is not None:
        torch.manual_seed(args.seed)
        runs["torch"] = TorchDCGAN(state)
    epochs_of = {name: args.epochs if name in ("numpy", "torch") else min(args.other_epochs,
                                                                          args.epochs)
                 for name in runs}

    z_fixed = np.random.default_rng(args.seed + 1).standard_normal((64, LATENT)).astype(np.float32)
    # The same recipe or the comparison means nothing: from the shared weights, G(z) agrees.
    reference = runs["numpy"].generate(z_fixed)
    for name, impl in runs.items():
        np.testing.assert_allclose(impl.generate(z_fixed), reference, rtol=1e-4, atol=1e-4,
                                   err_msg=f"untrained G(z): {name} vs numpy")
    seconds = {name: [] for name in runs}
    losses = {name: [] for name in runs}
    order_rng = np.random.default_rng(args.seed)
    print(f"DCGAN on {which}: {len(images)} digits, batch {args.batch}, "
          f"{steps_per_epoch} steps per epoch, {args.epochs} epochs; implementations "
          f"{', '.join(runs)} (blocks of {args.block} steps in turn); writing to {out}")
    for epoch in range(1, args.epochs + 1):
        order = order_rng.permutation(len(images))
        active = [name for name in runs if epoch <= epochs_of[name]]
        spent = {name: 0.0 for name in active}
        sums = {name: np.zeros(2) for name in active}
        for start in range(0, steps_per_epoch, args.block):
            for name in active:
                t0 = time.perf_counter()
                for step in range(start, min(start + args.block, steps_per_epoch)):
                    batch = images[order[step * args.batch:(step + 1) * args.batch]]
                    sums[name] += runs[name].step(batch)
                spent[name] += time.perf_counter() - t0
            for name in active:
                if not np.all(np.isfinite(sums[name])):
                    raise SystemExit(f"{name}: the losses are not finite in epoch {epoch}")
        for name in active:
            seconds[name].append(spent[name])
            losses[name].append(sums[name] / steps_per_epoch)
            folder = "epochs" if name == "numpy" else f"{name}_epochs"
            save_grid(runs[name], z_fixed, os.path.join(out, folder,
                                                        f"samples_epoch_{epoch:03d}.png"))
        print(f"epoch {epoch}: " + "; ".join(
            f"{name} {spent[name]:.1f} s, loss_d {losses[name][-1][0]:.3f}, "
            f"loss_g {losses[name][-1][1]:.3f}" for name in active), flush=True)

    # ---- scoring: every fully trained model, at the same N, beside the real-vs-real floor --------
    z_eval = np.random.default_rng(args.seed + 2).standard_normal(
        (args.n_eval, LATENT)).astype(np.float32)
    scored = [name for name in runs if epochs_of[name] == args.epochs]
    scores = {}
    for name in scored:
        fake = runs[name].generate(z_eval)
        scores[name] = {
            "fid": mnist_classifier.fid(fake, test, value_range=(-1, 1), value_range_b=(0, 1)),
            "mnist_score": mnist_classifier.mnist_score(fake, value_range=(-1, 1)),
        }
        plot.image_grid(fake[:64], os.path.join(out, f"{name}_samples.png"), value_range=(-1, 1))
    floor_train = train[np.random.default_rng(args.seed).choice(
        len(train), size=min(args.n_eval, len(train)), replace=False)]
    floor_fid = mnist_classifier.fid(floor_train, test)
    test_score = mnist_classifier.mnist_score(test)
    key = mnist_classifier.quiz(test, runs["numpy"].generate(z_eval[:16]),
                                os.path.join(out, "quiz.png"), value_range=(0, 1),
                                value_range_fake=(-1, 1))

    print()
    print(f"DCGAN, MNIST ({which}), batch {args.batch}, {args.epochs} epochs, Adam {LR} "
          f"betas {BETAS}, k = 1, non-saturating loss, float32")
    for line in machine_report(list(runs), load_start, torch):
        print(line)
    print(f"  {'':8}{'s / epoch':>11}{'s / step':>10}{'FID':>9}{'MNIST score':>16}")
    median_step = {}
    for name in runs:
        per_epoch = float(np.median(seconds[name]))
        median_step[name] = per_epoch / steps_per_epoch
        row = f"  {name:8}{per_epoch:11.1f}{median_step[name]:10.4f}"
        if name in scores:
            mean, sd = scores[name]["mnist_score"]
            row += f"{scores[name]['fid']:9.2f}{mean:10.2f} +- {sd:.2f}"
        else:
            row += f"   (timed over {epochs_of[name]} epoch(s), not scored)"
        print(row)
    print(f"  real-vs-real floor: FID {floor_fid:.2f} ({len(floor_train)} training digits vs "
          f"{len(test)} test digits); MNIST score of the test digits {test_score[0]:.2f} +- "
          f"{test_score[1]:.2f}; generated digits scored: {args.n_eval}")
    for name in runs:
        if name != "numpy":
            print(f"  time ratio {name} / numpy = {median_step[name] / median_step['numpy']:.3f}")
    if "torch" in runs:
        fid_ratio = scores["numpy"]["fid"] / scores["torch"]["fid"]
        time_ratio = median_step["numpy"] / median_step["torch"]
        print(f"  FID ratio tinygen / torch = {fid_ratio:.3f} (target <= {TARGET_FID_RATIO}): "
              f"{'met' if fid_ratio <= TARGET_FID_RATIO else 'NOT met'}")
        print(f"  time per step ratio tinygen (numpy) / torch = {time_ratio:.2f} (target <= "
              f"{TARGET_TIME_RATIO}): {'met' if time_ratio <= TARGET_TIME_RATIO else 'NOT met'}")
    else:
        print("  torch not installed: no baseline, no ratios")
    print(f"  written: fixed-noise grids per epoch, final samples, {out}/quiz.png (answer key: "
          f"{len(key)} generated cells listed in quiz.answers.txt)")
    assert all(math.isfinite(s["fid"]) for s in scores.values())


if __name__ == "__main__":
    main()
