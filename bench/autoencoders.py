"""The autoencoder family on MNIST: each claim of the autoencoder issue measured against its target.

A PCA reference first (fitted on the training images, scored on the test images), then eight
parts, each one or a few claims:
    1. MLP autoencoder 784-256-32-256-784 (ReLU hidden, sigmoid output, Bernoulli cross-entropy):
       test MSE per pixel.
    2. Denoising autoencoder (same architecture, Gaussian noise sigma 0.5, clipped to [0, 1]):
       PSNR of the denoised noisy test images, against the noisy images and PCA-32 denoising.
    3. Contractive autoencoder (same architecture): mean ||dz/dx||_F^2 on test images against the
       plain autoencoder's, at a test MSE close to the plain one. The exact penalty takes one
       backward pass per code unit (32 here); the random-projection estimate takes one per draw.
       Both are timed (seconds per epoch, from a few steps) and the model trains with the second.
    4. Sparse autoencoder (784-256-256: an over-complete ReLU code, L1 0.6 on it): the fraction of
       test codes with |z| < 0.01, at a test MSE close to the plain one. (With a 32-unit code, L1
       switches whole units off for every image and never reached 80 % within the MSE limit.)
    5. Linear autoencoder with 16 code units and squared error: the largest principal angle between
       its decoder's column space and PCA's top-16 subspace (Baldi & Hornik 1989: they coincide).
    6. Linear probe (softmax regression on frozen features): the plain autoencoder's 32-d codes
       against PCA-32 and the raw pixels.
    7. Anomaly detection: an autoencoder trained on every digit but one scores test images by their
       reconstruction error; AUROC with the held-out digit as the positive class, per digit.
    8. Data completion: the bottom half of each test image hidden and filled in by iterating the
       plain autoencoder's reconstruction (metrics.complete), against the mean training image;
       and by one pass of part 2's denoising autoencoder over the mean-image fill.
Every part is seeded on its own (tinygen.manual_seed(part)), so a part gives the same numbers
whichever others run with it. Parts 3, 4, 6 and 8 use the plain autoencoder of part 1, part 8
also part 2's denoising one (each trained once, by the first part that needs it, inside that
part's seconds).

Data: the full MNIST files when found (--root or $TINYGEN_DATA, as tinygen.data.load_mnist
searches), else the bundled subset (10,000 train / 2,000 test); the output says which.
TINYGEN_QUICK=1 runs a small part of the bundled subset for one epoch and two held-out digits
(well under a minute): the targets are printed but not expected to be met.

    TINYGEN_DATA=/path/to/mnist python bench/autoencoders.py [--epochs 20] [--parts pca,1,5]
"""
import argparse
import math
import os
import time

import machine  # noqa: F401  (importing it makes Ctrl-C end the bench with one line)
import mnist_inputs
import numpy as np

import tinygen as tg
from tinygen import metrics, nn
from tinygen.data import DataLoader
from tinygen.models.autoencoders import (
    Autoencoder,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    LinearAutoencoder,
    SparseAutoencoder,
    corrupt,
    mlp,
)
from tinygen.random import generator
from tinygen.train import fit

SIZES = [784, 256, 32]  # encoder; the decoder mirrors it
LR, BATCH = 1e-3, 128
NOISE_SIGMA = 0.5
CAE_LAM, CAE_PROJECTIONS = 0.1, 1
SPARSE_L1 = 0.6
SPARSE_CODE = 256  # over-complete: with 32 ReLU units, L1 switches whole units off for every image
LINEAR_K = 16
JACOBIAN_SAMPLES = 1000  # test images on which ||dz/dx||_F^2 is averaged
PARTS = ["pca", "1", "2", "3", "4", "5", "6", "7", "8"]


QUICK_SIZES = {"train": 3000, "test": 1000}  # quick mode: the first images of the bundled subset


def load(split, root, quick):
    """(images, labels, which data it is) for a split (see bench/mnist_inputs.py)."""
    images, labels, which = mnist_inputs.load(split, root, QUICK_SIZES[split] if quick else None)
    return images, labels, which


def mlp_pair(code_relu=False, code=SIZES[-1]):
    """(encoder 784-256-code, decoder code-256-784): ReLU hidden layers, linear (or ReLU) code."""
    sizes = SIZES[:-1] + [code]
    encoder = mlp(sizes)
    if code_relu:
        encoder = nn.Sequential(*encoder, nn.ReLU())
    return encoder, mlp(sizes[::-1])


def train(model, x, epochs, lr=LR):
    """Adam on shuffled mini-batches of x; returns fit's history."""
    optimizer = tg.optim.Adam(model.parameters(), lr=lr)
    return fit(model, DataLoader(x, BATCH), optimizer, epochs, progress=False)


def batched(fn, x, size=2000):
    """fn applied to x in chunks of rows, without a graph: (N, ...) -> NumPy array (N, ...)."""
    with tg.no_grad():
        return np.concatenate([fn(tg.tensor(x[i:i + size])).data for i in range(0, len(x), size)])


def reconstruct(model, x):
    model.eval()
    return batched(model, x)


def encode(model, x):
    model.eval()
    return batched(model.encode, x)


def mean_jacobian(model, x):
    """Mean over the rows of x of ||dz/dx||_F^2 (exact: one backward per code unit)."""
    model.eval()
    return float(np.mean(metrics.jacobian_frobenius_sq(model.encode, x)))


def seconds_per_epoch(model, x, steps):
    """Training seconds per epoch of x, from `steps` timed steps after one untimed step."""
    optimizer = tg.optim.Adam(model.parameters(), lr=LR)
    batches = iter(DataLoader(x, BATCH))
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        loss, _ = model.loss(next(batches))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:])) * math.ceil(len(x) / BATCH)


class Bench:
    """The data, the shared models (made when first needed) and the rows of the table."""

    def __init__(self, args, quick):
        self.args = args
        self.quick = quick
        self.x_train, self.y_train, self.which = load("train", args.root, quick)
        self.x_test, self.y_test, _ = load("test", args.root, quick)
        self.which += f" ({len(self.x_train)} train / {len(self.x_test)} test images)"
        self.rows = []  # (part, claim, measured, target, met: True / False / None, seconds)
        self._pca = None
        self._plain = None
        self._denoiser = None
        self.noisy_test = corrupt(self.x_test, "gaussian", NOISE_SIGMA, np.random.default_rng(1))

    def add(self, part, claim, measured, target="", met=None):
        self.rows.append([part, claim, measured, target, met, None])

    def pca(self):
        """(mean, the top 32 components, their variances) of the training images."""
        if self._pca is None:
            self._pca = metrics.pca(self.x_train, 32)
        return self._pca

    def plain(self):
        """The plain autoencoder of part 1 (trained on first use) and its test MSE per pixel."""
        if self._plain is None:
            # Its own seed, and the caller's random state left as it was.
            state = generator().bit_generator.state
            tg.manual_seed(1)
            model = Autoencoder(*mlp_pair(), reconstruction="bce")
            history = train(model, self.x_train, self.args.epochs)
            generator().bit_generator.state = state
            mse = metrics.mse_per_pixel(self.x_test, reconstruct(model, self.x_test))
            self._plain = (model, mse, sum(history["seconds"]) / len(history["seconds"]))
        return self._plain

    def denoiser(self):
        """The denoising autoencoder of part 2 (trained on first use)."""
        if self._denoiser is None:
            state = generator().bit_generator.state
            tg.manual_seed(2)
            model = DenoisingAutoencoder(*mlp_pair(), noise="gaussian", level=NOISE_SIGMA,
                                         reconstruction="bce")
            train(model, self.x_train, self.args.epochs)
            generator().bit_generator.state = state
            self._denoiser = model
        return self._denoiser

    # ---- the parts ------------------------------------------------------------------------------
    def part_pca(self):
        mean, comps, _ = self.pca()
        r32 = metrics.pca_reconstruct(metrics.pca_project(self.x_test, mean, comps), mean, comps)
        r2 = metrics.pca_reconstruct(metrics.pca_project(self.x_test, mean, comps[:2]), mean,
                                     comps[:2])
        self.add("PCA", "PCA-32 test MSE / pixel",
                 f"{metrics.mse_per_pixel(self.x_test, r32):.4f}", "(reference)")
        self.add("PCA", "PCA-32 test PSNR", f"{metrics.psnr(self.x_test, r32):.2f} dB",
                 "(reference)")
        self.add("PCA", "PCA-2 test MSE / pixel", f"{metrics.mse_per_pixel(self.x_test, r2):.4f}",
                 "(reference)")
        self.add("PCA", f"noisy test images (sigma {NOISE_SIGMA}) PSNR",
                 f"{metrics.psnr(self.x_test, self.noisy_test):.2f} dB", "(reference)")
        denoised = metrics.pca_reconstruct(metrics.pca_project(self.noisy_test, mean, comps),
                                           mean, comps)
        self.add("PCA", "PCA-32 denoising PSNR (fitted on clean train)",
                 f"{metrics.psnr(self.x_test, denoised):.2f} dB", "(reference)")

    def part_1(self):
        _, mse, epoch_s = self.plain()
        self.add("1", f"MLP AE 784-256-32, BCE, {self.args.epochs} ep: test MSE / pixel",
                 f"{mse:.4f}", "<= 0.011", mse <= 0.011)
        self.add("1", "  seconds per epoch", f"{epoch_s:.1f} s")

    def part_2(self):
        value = metrics.psnr(self.x_test, reconstruct(self.denoiser(), self.noisy_test))
        self.add("2", f"denoising AE, sigma {NOISE_SIGMA}: PSNR of denoised test",
                 f"{value:.2f} dB", ">= 17 dB", value >= 17)

    def part_3(self):
        plain, plain_mse, _ = self.plain()
        subset = self.x_test[:JACOBIAN_SAMPLES]
        steps = 3 if self.quick else 10
        timing = {}
        for penalty in ("exact", "projection"):
            model = ContractiveAutoencoder(*mlp_pair(), lam=CAE_LAM, penalty=penalty,
                                           n_projections=CAE_PROJECTIONS, reconstruction="bce")
            timing[penalty] = seconds_per_epoch(model, self.x_train, steps)
        model = ContractiveAutoencoder(*mlp_pair(), lam=CAE_LAM, penalty="projection",
                                       n_projections=CAE_PROJECTIONS, reconstruction="bce")
        train(model, self.x_train, self.args.epochs)
        mse = metrics.mse_per_pixel(self.x_test, reconstruct(model, self.x_test))
        j_plain = mean_jacobian(plain, subset)
        j_cae = mean_jacobian(model, subset)
        self.add("3", f"  s / epoch, exact penalty ({SIZES[-1]} backwards)",
                 f"{timing['exact']:.1f} s", f"(from {steps} steps)")
        self.add("3", f"  s / epoch, projection penalty ({CAE_PROJECTIONS} draw)",
                 f"{timing['projection']:.1f} s", "(trained with)")
        self.add("3", f"contractive AE, lam {CAE_LAM}: mean ||J||_F^2 (test)",
                 f"{j_cae:.2f}", f"plain {j_plain:.2f}")
        ratio = j_cae / j_plain
        self.add("3", "  ratio ||J||_F^2 contractive / plain", f"{ratio:.3f}", "<= 0.5",
                 ratio <= 0.5)
        self.add("3", "  ratio test MSE contractive / plain", f"{mse / plain_mse:.3f}",
                 "<= 1.25", mse <= 1.25 * plain_mse)
        # The decoder can undo any scaling of the code, so ||J||^2 also shrinks when the code
        # merely shrinks: divided by the code's total variance, it measures contraction alone.
        spread_plain = np.var(encode(plain, subset), axis=0).sum()
        spread_cae = np.var(encode(model, subset), axis=0).sum()
        self.add("3", "  ratio of ||J||_F^2 / code variance, contr. / plain",
                 f"{(j_cae / spread_cae) / (j_plain / spread_plain):.3f}", "(scale-free)")

    def part_4(self):
        _, plain_mse, _ = self.plain()
        model = SparseAutoencoder(*mlp_pair(code_relu=True, code=SPARSE_CODE), l1=SPARSE_L1,
                                  reconstruction="bce")
        train(model, self.x_train, self.args.epochs)
        mse = metrics.mse_per_pixel(self.x_test, reconstruct(model, self.x_test))
        z = encode(model, self.x_test)
        small = float(np.mean(np.abs(z) < 0.01))
        self.add("4", f"sparse AE (ReLU code {SPARSE_CODE}, L1 {SPARSE_L1}): test |z| < 0.01",
                 f"{100 * small:.1f} %", ">= 80 %", small >= 0.8)
        self.add("4", "  ratio test MSE sparse / plain", f"{mse / plain_mse:.3f}", "<= 1.5",
                 mse <= 1.5 * plain_mse)
        active = np.abs(z) >= 0.01
        self.add("4", "  code units active on some test image",
                 f"{int(active.any(axis=0).sum())} of {z.shape[1]}")
        self.add("4", "  active code units per test image (mean)",
                 f"{active.sum(axis=1).mean():.1f}")

    def part_5(self):
        model = LinearAutoencoder(784, LINEAR_K)
        epochs = self.args.linear_epochs
        train(model, self.x_train, epochs)
        mean, comps, _ = self.pca()
        angles = metrics.principal_angles(model.decoder.weight.data, comps[:LINEAR_K].T)
        mse = metrics.mse_per_pixel(self.x_test, reconstruct(model, self.x_test))
        pca_r = metrics.pca_reconstruct(
            metrics.pca_project(self.x_test, mean, comps[:LINEAR_K]), mean, comps[:LINEAR_K])
        self.add("5", f"linear AE k={LINEAR_K}, MSE, {epochs} ep: largest angle to PCA-16",
                 f"{angles[-1]:.4f} rad", "< 0.1 rad", angles[-1] < 0.1)
        self.add("5", "  test MSE / pixel, linear AE vs PCA-16",
                 f"{mse:.4f} vs {metrics.mse_per_pixel(self.x_test, pca_r):.4f}")

    def part_6(self):
        plain, _, _ = self.plain()
        mean, comps, _ = self.pca()
        features = {
            "AE-32 codes": (encode(plain, self.x_train), encode(plain, self.x_test)),
            "PCA-32": (metrics.pca_project(self.x_train, mean, comps),
                       metrics.pca_project(self.x_test, mean, comps)),
            "raw pixels": (self.x_train, self.x_test),
        }
        accuracy = {name: metrics.linear_probe(train_f, self.y_train, test_f, self.y_test)
                    for name, (train_f, test_f) in features.items()}
        ae, pca = accuracy["AE-32 codes"], accuracy["PCA-32"]
        self.add("6", "linear probe test accuracy: AE-32 codes", f"{100 * ae:.2f} %",
                 f">= PCA-32 {100 * pca:.2f} %", ae >= pca)
        self.add("6", "  PCA-32 / raw pixels", f"{100 * pca:.2f} % / "
                 f"{100 * accuracy['raw pixels']:.2f} %")

    def part_7(self):
        digits = [0, 1] if self.quick else list(range(10))
        epochs = self.args.anomaly_epochs
        values = []
        for digit in digits:
            tg.manual_seed(700 + digit)
            model = Autoencoder(*mlp_pair(), reconstruction="bce")
            train(model, self.x_train[self.y_train != digit], epochs)
            errors = np.mean((reconstruct(model, self.x_test) - self.x_test) ** 2, axis=1)
            values.append(metrics.auroc(errors, self.y_test == digit))
        self.add("7", f"anomaly AUROC, digit held out, {epochs} ep each: mean",
                 f"{np.mean(values):.3f}", "(no target)")
        for i in range(0, len(digits), 5):
            chunk = digits[i:i + 5]
            self.add("7", f"  AUROC of digits {chunk[0]}-{chunk[-1]}",
                     " ".join(f"{v:.2f}" for v in values[i:i + 5]))

    def part_8(self):
        plain, _, _ = self.plain()
        denoiser = self.denoiser()
        observed = metrics.bottom_half_mask(len(self.x_test))
        mean_image = self.x_train.mean(axis=0)
        baseline = metrics.mean_image_fill(self.x_test, observed, mean_image)
        mean_fill = metrics.masked_mse(self.x_test, baseline, ~observed)
        target = f"< mean image {mean_fill:.4f}"
        plain.eval()
        denoiser.eval()
        with tg.no_grad():
            # metrics.complete's defaults: missing pixels start at the mean of the observed ones
            filled = metrics.complete(lambda a: plain(tg.tensor(a)).data, self.x_test, observed)
            ae = metrics.masked_mse(self.x_test, filled, ~observed)
            self.add("8", "bottom half completed by the plain AE (20 steps)", f"{ae:.4f}",
                     target, ae < mean_fill)
            # A plain AE with a small error copies whatever fills the hole; a denoising AE
            # pulls its input towards the digits it has seen. One pass from the mean image.
            filled = metrics.complete(lambda a: denoiser(tg.tensor(a)).data, self.x_test,
                                      observed, steps=1, init=mean_image)
            dae = metrics.masked_mse(self.x_test, filled, ~observed)
            self.add("8", "  by the denoising AE (mean-image start, 1 step)", f"{dae:.4f}",
                     target, dae < mean_fill)


def print_table(rows):
    width = max(len(row[1]) for row in rows)
    print(f"{'part':5} {'claim':{width}}  {'measured':>19}  {'target':24} {'met?':5} {'s':>6}")
    for part, claim, measured, target, met, seconds in rows:
        met_text = "" if met is None else ("yes" if met else "NO")
        seconds_text = "" if seconds is None else f"{seconds:6.1f}"
        print(f"{part:5} {claim:{width}}  {measured:>19}  {target:24} {met_text:5} {seconds_text}")


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1 if quick else 20,
                        help="epochs of the MLP autoencoders (parts 1 to 4)")
    parser.add_argument("--linear-epochs", type=int, default=1 if quick else 40,
                        help="epochs of the linear autoencoder (part 5)")
    parser.add_argument("--anomaly-epochs", type=int, default=1 if quick else 5,
                        help="epochs of each held-out-digit autoencoder (part 7)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma list of the parts to run, from {','.join(PARTS)}")
    parser.add_argument("--root", default=None, help="a folder holding the MNIST files")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {PARTS}")

    started = time.perf_counter()
    bench = Bench(args, quick)
    print(f"data: {bench.which}" + ("; TINYGEN_QUICK=1: targets not expected to be met"
                                    if quick else ""))
    print(f"MLP autoencoders {'-'.join(map(str, SIZES + SIZES[-2::-1]))}: Adam lr {LR}, "
          f"batch {BATCH}, {args.epochs} epochs; float32, backend {tg.backend.current()}")
    for part in PARTS:
        if part not in parts:
            continue
        tg.manual_seed(0 if part == "pca" else int(part))
        first_row = len(bench.rows)
        start = time.perf_counter()
        getattr(bench, f"part_{part}")()
        seconds = time.perf_counter() - start
        bench.rows[first_row][5] = seconds
        print(f"part {part} done in {seconds:.1f} s", flush=True)
    print()
    print_table(bench.rows)
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
