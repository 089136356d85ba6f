"""The slides' implicit generative models: a GAN learns a 1-D mixture, a ring of 8 and a grid of 25.

A generator G turns noise z ~ p(z) into samples; nothing in it says what density they have. It
learns only from a discriminator D trained to tell its samples from the data (models.GAN: k = 1
discriminator step per generator step, the non-saturating generator loss; Adam, betas (0.5,
0.999), its learning rate decayed geometrically from 1e-3 to 1e-4 over the run). Every step draws
fresh data from the toy distribution, so there are no epochs.

Check first: the vanishing gradient of the slides' saturating loss. On the 1-D problem, D is
trained alone against the untrained G until it rejects G's samples; then the ratio of the norm of
G's gradient from log(1 - D(G(z))) to that from -log D(G(z)) is printed (and asserted < 1).

    1. 1-D: G maps N(0, 1) noise, then U(-1, 1) noise (prior="uniform"), to the mixture
       0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2). At several moments of training: the Kolmogorov-Smirnov
       distance between G's samples and the mixture, the fraction of samples within 3 sd of each
       mode, and a picture (data density, G's samples as a histogram, D(x)): density_1d plots.
    2. 2-D ring of 8 Gaussians (radius 2, sd 0.02) and grid of 25 (spacing 2, sd 0.05), the
       settings of VEEGAN (Srivastava et al. 2017): MLP G and D (3 hidden layers of 128), batch
       512. Every few hundred steps: the modes covered and the high-quality fraction (samples
       within 3 sd of their nearest mode; data.toy.mode_coverage, on 2,500 samples), the
       high-quality samples per mode, the seconds so far; samples_2d plots.
       Target (ring): all 8 modes covered and >= 80 % high-quality samples within 180 s.
       tinygen's mode_coverage counts a mode covered from one high-quality sample (VEEGAN's
       convention); the modes holding >= 1 % of the samples are printed beside it.

TINYGEN_QUICK=1 runs 100-200 steps of each (about 15 s), plots in gan_toy_quick: targets printed,
not expected to be met.

    python bench/gan_toy.py [--out /tmp/gan_toy] [--seed 0] [--ring-steps 3000] [--grid-steps 5000]
"""
import os

# Before NumPy loads OpenBLAS: the matrices are small (batch x 128), and on the 2-core machine,
# with other processes running, a step of the ring's GAN (batch 256) took 4-7 ms with one BLAS
# thread and 15-70 ms with two (OpenBLAS's spinning threads wait for a core). The caller's
# OPENBLAS_NUM_THREADS wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from machine import machine_report  # noqa: E402

import tinygen as tg  # noqa: E402
from tinygen import plot  # noqa: E402
from tinygen.data import toy  # noqa: E402
from tinygen.models import GAN, gan_optimizers, mlp_discriminator, mlp_generator  # noqa: E402

LR_START, LR_END = 1e-3, 1e-4
BETAS = (0.5, 0.999)
HIDDEN_1D, BATCH_1D = [32, 32], 512
HIDDEN_2D, BATCH_2D, LATENT_2D = [128, 128, 128], 512, 2
N_EVAL = 2500  # samples scored by mode_coverage, as in VEEGAN
TARGET_MODES, TARGET_HQ, TARGET_S = 8, 0.80, 180.0


def set_lr(optimizers, step, steps):
    """Geometric decay from LR_START (step 1) towards LR_END (after the last step)."""
    lr = LR_START * (LR_END / LR_START) ** ((step - 1) / steps)
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = lr


def train_step(gan, optimizers, dist, batch, rng, step, steps):
    """One GAN iteration on a fresh batch of data; returns the metrics as floats."""
    set_lr(optimizers, step, steps)
    x = dist.sample(batch, rng).astype(np.float32)
    if x.ndim == 1:
        x = x[:, None]  # (batch, 1)
    metrics = gan.train_step(tg.tensor(x), optimizers)
    return {name: float(np.asarray(getattr(v, "data", v))) for name, v in metrics.items()}


def d_probability(gan):
    """x (K,) -> D(x) (K,): the discriminator's probability that x is real."""
    def d(x):
        logits = gan.discriminator(tg.tensor(np.asarray(x, dtype=np.float32)[:, None]))
        return 1.0 / (1.0 + np.exp(-logits.numpy().ravel()))
    return d


# ---- the check -----------------------------------------------------------------------------------
def check_vanishing_gradient(seed, d_steps):
    """D trained alone against a fixed, untrained G; G's gradient norm from each loss."""
    tg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mixture = toy.GaussianMixture1D()
    gan = GAN(mlp_generator(1, HIDDEN_1D, 1, out_activation=None),
              mlp_discriminator(1, HIDDEN_1D), 1)
    opt_d = gan_optimizers(gan, lr=LR_START, betas=BETAS)["discriminator"]
    for _ in range(d_steps):
        real = tg.tensor(mixture.sample(BATCH_1D, rng).astype(np.float32)[:, None])
        opt_d.zero_grad()
        loss_d, _, _ = gan.discriminator_loss(real, gan.sample(BATCH_1D))
        loss_d.backward()
        opt_d.step()
    z = gan.sample_prior(BATCH_1D)
    with tg.no_grad():
        d_fake = float(tg.nn.functional.sigmoid(gan.discriminator(gan.generator(z))).mean().item())
    norms = {}
    for kind in ("saturating", "non-saturating"):
        gan.generator_loss_kind = kind
        gan.zero_grad()
        gan.generator_loss(gan.discriminator(gan.generator(z))).backward()
        norms[kind] = math.sqrt(sum(float(np.sum(p.grad.data.astype(np.float64) ** 2))
                                    for p in gan.generator.parameters()))
    ratio = norms["saturating"] / norms["non-saturating"]
    assert ratio < 1, f"saturating gradient {norms['saturating']:.3g} not below the " \
                      f"non-saturating {norms['non-saturating']:.3g} (D(G(z)) = {d_fake:.3f})"
    return (f"check: after {d_steps} steps of D alone, D(G(z)) = {d_fake:.4f}; |grad_G| of "
            f"log(1 - D(G(z))) {norms['saturating']:.3g}, of -log D(G(z)) "
            f"{norms['non-saturating']:.3g}: ratio saturating / non-saturating = {ratio:.4f} "
            "(the slides' vanishing gradient)")


# ---- 1-D -----------------------------------------------------------------------------------------
def mixture_cdf(mixture, x):
    """The mixture's cumulative distribution function at x (n,)."""
    erf = np.vectorize(math.erf)
    return sum(w * 0.5 * (1.0 + erf((x - mu) / (sd * math.sqrt(2.0))))
               for mu, sd, w in zip(mixture.means, mixture.stds, mixture.weights))


def ks_distance(samples, mixture):
    """sup_x |F_samples(x) - F(x)|: the Kolmogorov-Smirnov distance to the mixture."""
    s = np.sort(samples)
    n = len(s)
    f = mixture_cdf(mixture, s)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def run_1d(prior, steps, moments, out, seed):
    """Train a 1-D GAN from `prior` noise; print and plot at the given steps."""
    tg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mixture = toy.GaussianMixture1D()
    gan = GAN(mlp_generator(1, HIDDEN_1D, 1, out_activation=None),
              mlp_discriminator(1, HIDDEN_1D), 1, prior=prior)
    optimizers = gan_optimizers(gan, lr=LR_START, betas=BETAS)
    x_grid = np.linspace(-5, 5, 400)
    lo, hi = mixture.means - 3 * mixture.stds, mixture.means + 3 * mixture.stds
    print(f"1-D, prior {prior} ({'N(0, 1)' if prior == 'normal' else 'U(-1, 1)'}), target "
          f"{mixture}: G 1-{'-'.join(map(str, HIDDEN_1D))}-1, D 1-"
          f"{'-'.join(map(str, HIDDEN_1D))}-1, batch {BATCH_1D}, {steps} steps")
    print(f"{'step':>6} {'KS':>6} {'in mode -2':>10} {'in mode 2':>9} {'between':>7} "
          f"{'D(x)':>5} {'D(G(z))':>7} {'s':>6}")
    started = time.perf_counter()
    metrics = {"d_real": float("nan"), "d_fake": float("nan")}
    for step in range(steps + 1):
        if step > 0:
            metrics = train_step(gan, optimizers, mixture, BATCH_1D, rng, step, steps)
        if step in moments:
            seconds = time.perf_counter() - started
            s = gan.sample(5000).numpy().ravel()
            inside = [float(np.mean((s >= a) & (s <= b))) for a, b in zip(lo, hi)]
            print(f"{step:6d} {ks_distance(s, mixture):6.3f} {inside[0]:10.3f} {inside[1]:9.3f} "
                  f"{1 - sum(inside):7.3f} {metrics['d_real']:5.2f} {metrics['d_fake']:7.2f} "
                  f"{seconds:6.1f}", flush=True)
            plot.density_1d(x_grid, os.path.join(out, f"gan1d_{prior}_step{step:05d}.png"),
                            data_density=mixture, samples=s, discriminator=d_probability(gan),
                            title=f"1-D GAN, {prior} noise, step {step}")


# ---- 2-D -----------------------------------------------------------------------------------------
def run_2d(name, dist, steps, every, out, seed, extent):
    """Train a 2-D GAN on dist; print mode coverage every `every` steps. Returns the last row."""
    tg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gan = GAN(mlp_generator(LATENT_2D, HIDDEN_2D, 2, out_activation=None),
              mlp_discriminator(2, HIDDEN_2D), LATENT_2D, k=1, generator_loss="non-saturating")
    optimizers = gan_optimizers(gan, lr=LR_START, betas=BETAS)
    k = len(dist.modes)
    widths = "-".join(map(str, HIDDEN_2D))
    print(f"{name}: {dist}, {k} modes: G {LATENT_2D}-{widths}-2, D 2-{widths}-1, batch "
          f"{BATCH_2D}, {steps} steps; mode coverage of {N_EVAL} samples")
    print(f"{'step':>6} {'modes':>5} {'>=1%':>4} {'high-quality':>12} {'D(x)':>5} {'D(G(z))':>7} "
          f"{'s':>6}  high-quality samples per mode")
    started = time.perf_counter()
    training_s = 0.0  # the seconds of the training steps alone (no scoring, no plots)
    row = None
    for step in range(1, steps + 1):
        tick = time.perf_counter()
        metrics = train_step(gan, optimizers, dist, BATCH_2D, rng, step, steps)
        training_s += time.perf_counter() - tick
        if step % every == 0 or step == steps:
            seconds = time.perf_counter() - started
            s = gan.sample(N_EVAL).numpy()
            coverage = toy.mode_coverage(s, dist.modes, dist.std)
            strict = toy.mode_coverage(s, dist.modes, dist.std, min_count=N_EVAL // 100)
            row = (step, coverage["n_modes_covered"], coverage["high_quality_fraction"], seconds)
            print(f"{step:6d} {coverage['n_modes_covered']:5d} {strict['n_modes_covered']:4d} "
                  f"{coverage['high_quality_fraction']:12.3f} {metrics['d_real']:5.2f} "
                  f"{metrics['d_fake']:7.2f} {seconds:6.1f}  {coverage['counts'].tolist()}",
                  flush=True)
            plot.samples_2d(s, os.path.join(out, f"gan2d_{name}_step{step:05d}.png"),
                            data_density=dist, extent=extent, modes=dist.modes,
                            title=f"GAN on the {name}, step {step}")
    print(f"{name}: {training_s:.1f} s of training steps ({1000 * training_s / steps:.1f} ms "
          f"per step), {time.perf_counter() - started:.1f} s with the scoring and plots")
    return row


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(),
                                                      "gan_toy_quick" if quick else "gan_toy"),
                        help="folder for the plots (default: gan_toy, or gan_toy_quick, in the "
                             "temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-1d", type=int, default=100 if quick else 3000)
    parser.add_argument("--ring-steps", type=int, default=200 if quick else 3000)
    parser.add_argument("--grid-steps", type=int, default=200 if quick else 5000)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    load_start = os.getloadavg()[0]
    print(f"tinygen backend {tg.backend.current()}, float32, seed {args.seed}; plots in "
          f"{args.out}" + ("; TINYGEN_QUICK=1: targets not expected to be met" if quick else ""))
    print(f"Adam betas {BETAS}, lr {LR_START} decayed geometrically to {LR_END}; k = 1, "
          "non-saturating generator loss")

    print(check_vanishing_gradient(args.seed, d_steps=50 if quick else 300), flush=True)

    for prior in ("normal", "uniform"):
        moments = sorted({0, 100, args.steps_1d // 4, args.steps_1d // 2, args.steps_1d})
        run_1d(prior, args.steps_1d, set(moments), args.out, args.seed)

    every = 100 if quick else 250
    step, modes, hq, seconds = run_2d("ring", toy.Ring(), args.ring_steps, every, args.out,
                                      args.seed, extent=(-3, 3, -3, 3))
    met = "met" if (modes >= TARGET_MODES and hq >= TARGET_HQ and seconds <= TARGET_S) else \
        "NOT met"
    print(f"target: ring, {modes}/8 modes >= {TARGET_MODES}, high-quality {hq:.3f} >= "
          f"{TARGET_HQ}, after {step} steps in {seconds:.1f} s <= {TARGET_S:.0f} s: {met}")
    step, modes, hq, seconds = run_2d("grid", toy.Grid(), args.grid_steps, 2 * every, args.out,
                                      args.seed, extent=(-6, 6, -6, 6))
    print(f"grid (no target): {modes}/25 modes, high-quality {hq:.3f} after {step} steps in "
          f"{seconds:.1f} s")

    for line in machine_report([tg.backend.current()], load_start, compares_with_torch=False):
        print(line)


if __name__ == "__main__":
    main()
