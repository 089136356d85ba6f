"""The pytorch/examples VAE recipe on MNIST in tinygen, against the same recipe in torch (same run).

The recipe (pytorch/examples vae/main.py):
    encoder 784-400 (ReLU) -> mu (20), logvar (20); z = mu + exp(logvar / 2) eps, eps ~ N(0, I)
    decoder 20-400 (ReLU) -> 784 (sigmoid)
    loss = BCE summed over pixels + KL(q(z|x) || N(0, I)) (Kingma & Welling 2014, appendix B)
    Adam lr 1e-3, batch 128, 10 epochs, shuffled every epoch; inputs are the grey levels in [0, 1]
    (not binarised, as in the example).
In tinygen this is models.mlp_vae(784, 400, 20), whose loss is the per-sample -ELBO (averaged over
the batch). The example's reported losses are its summed loss divided by the number of images:
the same quantity, in nats per image. The test loss, as in the example, runs the model in eval
mode without a graph and still samples z by the reparameterisation (one draw per image), so it is
a one-sample estimate of the test -ELBO, not the loss at z = mu.

Checks first (the timings mean nothing otherwise): from identical weights and the same eps, one
batch gives the same loss and the same gradient of every weight in tinygen and in torch, and the
losses after one Adam step in each agree too.

Then both train, one epoch of each in turn (so that both see the same load on a shared machine;
the data orders differ), and per epoch the train loss, the test loss and the seconds of the
training epoch are printed; the ratio of the median seconds per epoch tinygen / torch, and the two
targets: tinygen's test loss after 10 epochs <= 105.8 nats, tinygen's s / epoch <= 1.5 x torch's
(1.5 x 3.3 s when torch is not installed; torch is not a tinygen dependency).

Last, for the trained tinygen model, the importance-weighted bound on log p(x) (Burda et al. 2016,
models.iwae_bound, k = 5000) on 1,000 test images binarised by sampling (transforms.
binarize_dynamic, seed 0), with its seconds, and the one-sample ELBO (k = 1) of the same images.
The model was trained on grey levels, so these are its Bernoulli likelihoods of binary images.

Data: the full MNIST files when found (--root or $TINYGEN_DATA, as tinygen.data.load_mnist
searches), else the bundled subset (10,000 train / 2,000 test); the output says which.
TINYGEN_QUICK=1 trains one epoch on part of the bundled subset and bounds 20 images with k = 50
(well under a minute): the targets are printed but not expected to be met.

    TINYGEN_DATA=/path/to/mnist python bench/vae.py [--epochs 10] [--iwae-k 5000] [--iwae-n 1000]
"""
import argparse
import os
import time

import mnist_inputs
import numpy as np
from machine import machine_report

import tinygen as tg
from tinygen.data import DataLoader, binarize_dynamic
from tinygen.models.vae import iwae_bound, mlp_vae
from tinygen.random import generator
from tinygen.train import evaluate, fit

try:
    import torch
    import torch.nn.functional as torch_F
except ImportError:
    torch = None

D, HIDDEN, LATENT = 784, 400, 20
LR, BATCH = 1e-3, 128
TARGET_LOSS = 105.8  # nats per test image after 10 epochs
TARGET_RATIO = 1.5  # tinygen's s / epoch at most this times torch's
TORCH_REFERENCE_S = 3.3  # torch's s / epoch of full MNIST on a 2-core machine, when torch is absent


QUICK_SIZES = {"train": 2000, "test": 500}  # quick mode: the first images of the bundled subset


def load(split, root, quick):
    """(images, which data it is) for a split (see bench/mnist_inputs.py)."""
    images, labels, which = mnist_inputs.load(split, root, QUICK_SIZES[split] if quick else None)
    return images, which


# ---- the example's model, in torch ---------------------------------------------------------------
if torch is not None:
    class TorchVAE(torch.nn.Module):
        """pytorch/examples vae/main.py, as written there."""

        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(784, 400)
            self.fc21 = torch.nn.Linear(400, 20)
            self.fc22 = torch.nn.Linear(400, 20)
            self.fc3 = torch.nn.Linear(20, 400)
            self.fc4 = torch.nn.Linear(400, 784)

        def encode(self, x):
            h1 = torch_F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            return mu + eps * std

        def decode(self, z):
            h3 = torch_F.relu(self.fc3(z))
            return torch.sigmoid(self.fc4(h3))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 784))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    class FixedNoiseVAE(TorchVAE):
        """TorchVAE whose reparameterisation uses a given eps (for the checks only)."""

        eps = None

        def reparameterize(self, mu, logvar):
            return mu + self.eps * torch.exp(0.5 * logvar)


def torch_loss(recon_x, x, mu, logvar):
    """The example's loss_function: BCE summed over pixels and images + KL, summed."""
    bce = torch_F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def torch_train_epoch(model, optimizer, x):
    """One shuffled epoch of x (an (N, 784) tensor); returns (mean loss per image, seconds)."""
    started = time.perf_counter()
    model.train()
    total = 0.0
    order = torch.randperm(len(x))
    for start in range(0, len(x), BATCH):
        data = x[order[start:start + BATCH]]
        optimizer.zero_grad()
        recon, mu, logvar = model(data)
        loss = torch_loss(recon, data, mu, logvar)
        loss.backward()
        total += loss.item()
        optimizer.step()
    return total / len(x), time.perf_counter() - started


def torch_test(model, x):
    """The example's test loss: summed over the test set / its size, z sampled, no graph."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(x), BATCH):
            data = x[start:start + BATCH]
            recon, mu, logvar = model(data)
            total += torch_loss(recon, data, mu, logvar).item()
    return total / len(x)


# ---- the checks ----------------------------------------------------------------------------------
def torch_twin(model):
    """A FixedNoiseVAE holding tinygen model's weights (its encoder's last layer split in two)."""
    state = {key: torch.from_numpy(value) for key, value in model.state_dict().items()}
    twin = FixedNoiseVAE()
    twin.load_state_dict({
        "fc1.weight": state["encoder.0.weight"], "fc1.bias": state["encoder.0.bias"],
        "fc21.weight": state["encoder.2.weight"][:LATENT],
        "fc21.bias": state["encoder.2.bias"][:LATENT],
        "fc22.weight": state["encoder.2.weight"][LATENT:],
        "fc22.bias": state["encoder.2.bias"][LATENT:],
        "fc3.weight": state["decoder.0.weight"], "fc3.bias": state["decoder.0.bias"],
        "fc4.weight": state["decoder.2.weight"], "fc4.bias": state["decoder.2.bias"],
    })
    return twin


def twin_grads(twin):
    """The torch twin's gradients under tinygen's parameter names (fc21 and fc22 stacked)."""
    g = {name: p.grad.numpy() for name, p in twin.named_parameters()}
    return {
        "encoder.0.weight": g["fc1.weight"], "encoder.0.bias": g["fc1.bias"],
        "encoder.2.weight": np.concatenate([g["fc21.weight"], g["fc22.weight"]]),
        "encoder.2.bias": np.concatenate([g["fc21.bias"], g["fc22.bias"]]),
        "decoder.0.weight": g["fc3.weight"], "decoder.0.bias": g["fc3.bias"],
        "decoder.2.weight": g["fc4.weight"], "decoder.2.bias": g["fc4.bias"],
    }


def next_eps(n):
    """The eps that the next model.loss on n images will draw, leaving the generator as it was."""
    state = generator().bit_generator.state
    eps = generator().standard_normal((n, LATENT)).astype(np.float32)  # as tinygen.randn draws
    generator().bit_generator.state = state
    return eps


def check_against_torch(x):
    """Same loss and gradients as the example's, from the same weights and eps, over two steps.

    Returns a line saying what was compared and the largest differences.
    """
    tg.manual_seed(123)
    model = mlp_vae(D, HIDDEN, LATENT)
    optimizer = tg.optim.Adam(model.parameters(), lr=LR)
    twin = torch_twin(model)
    twin_optimizer = torch.optim.Adam(twin.parameters(), lr=LR)
    batch = tg.tensor(x)
    data = torch.from_numpy(x)
    loss_diffs, grad_diff = [], 0.0
    for step in (1, 2):
        twin.eps = torch.from_numpy(next_eps(len(x)))
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        twin_optimizer.zero_grad()
        recon, mu, logvar = twin(data)
        twin_loss = torch_loss(recon, data, mu, logvar) / len(x)  # the example sums over images
        twin_loss.backward()
        np.testing.assert_allclose(loss.item(), twin_loss.item(), rtol=1e-5,
                                   err_msg=f"step {step}: loss per image, tinygen vs torch")
        loss_diffs.append(abs(loss.item() - twin_loss.item()))
        if step == 1:
            reference = twin_grads(twin)  # of the sum / len(x), as tinygen's of the mean
            for name, p in model.named_parameters():
                expected = reference[name]
                scale = float(np.abs(expected).max())
                diff = float(np.abs(p.grad.data - expected).max())
                assert diff <= 1e-4 * scale, (
                    f"step 1: gradient of {name}: max |diff| {diff:.2e} > 1e-4 x {scale:.2e}")
                grad_diff = max(grad_diff, diff / scale)
        optimizer.step()
        twin_optimizer.step()
    return (f"checks: tinygen vs the example's torch model, same weights and eps, batch {len(x)}: "
            f"loss per image step 1 {loss_diffs[0]:.1e}, step 2 (after Adam) {loss_diffs[1]:.1e} "
            f"max |diff|; gradients of step 1 max |diff| / max |grad| {grad_diff:.1e}")


# ---- the run -------------------------------------------------------------------------------------
def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1 if quick else 10)
    parser.add_argument("--iwae-k", type=int, default=50 if quick else 5000,
                        help="importance samples per image of the IWAE bound")
    parser.add_argument("--iwae-n", type=int, default=20 if quick else 1000,
                        help="binarised test images the IWAE bound is computed on")
    parser.add_argument("--root", default=None, help="a folder holding the MNIST files")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]

    x_train, which = load("train", args.root, quick)
    x_test, _ = load("test", args.root, quick)
    print(f"data: {which} ({len(x_train)} train / {len(x_test)} test images, grey levels in "
          "[0, 1])" + ("; TINYGEN_QUICK=1: targets not expected to be met" if quick else ""))
    print(f"VAE {D}-{HIDDEN}-({LATENT}, {LATENT}) / {LATENT}-{HIDDEN}-{D}, Bernoulli decoder: "
          f"Adam lr {LR}, batch {BATCH}, {args.epochs} epochs; float32, tinygen backend "
          f"{tg.backend.current()}")
    if torch is not None:
        print(check_against_torch(x_train[:BATCH]))
    else:
        print("checks: torch not installed, no comparison of losses and gradients")

    tg.manual_seed(0)
    model = mlp_vae(D, HIDDEN, LATENT)
    optimizer = tg.optim.Adam(model.parameters(), lr=LR)
    train_loader = DataLoader(x_train, BATCH)  # a new order every epoch
    test_loader = DataLoader(x_test, BATCH, shuffle=False)
    if torch is not None:
        torch.manual_seed(0)
        twin = TorchVAE()
        twin_optimizer = torch.optim.Adam(twin.parameters(), lr=LR)
        torch_train, torch_test_x = torch.from_numpy(x_train), torch.from_numpy(x_test)

    print("test loss: -ELBO per test image (nats), z sampled as in the example; s: the training "
          "epoch's seconds")
    header = f"{'epoch':>5}  {'tinygen train':>13} {'test':>8} {'s':>6}"
    if torch is not None:
        header += f"   {'torch train':>11} {'test':>8} {'s':>6}   {'ratio s':>7}"
    print(header, flush=True)
    rows = []  # (tinygen test loss, tinygen s, torch test loss, torch s)
    for epoch in range(1, args.epochs + 1):
        history = fit(model, train_loader, optimizer, 1, progress=False)  # one epoch
        seconds = history["seconds"][0]
        test_loss = evaluate(model, test_loader)["loss"]
        line = f"{epoch:5d}  {history['loss'][0]:13.4f} {test_loss:8.4f} {seconds:6.2f}"
        row = [test_loss, seconds, None, None]
        if torch is not None:
            twin_loss, twin_seconds = torch_train_epoch(twin, twin_optimizer, torch_train)
            twin_test = torch_test(twin, torch_test_x)
            line += (f"   {twin_loss:11.4f} {twin_test:8.4f} {twin_seconds:6.2f}   "
                     f"{seconds / twin_seconds:7.2f}")
            row[2:] = [twin_test, twin_seconds]
        rows.append(row)
        print(line, flush=True)

    tg_s = float(np.median([row[1] for row in rows]))
    if torch is not None:
        baseline_s = float(np.median([row[3] for row in rows]))
        baseline = "torch's, measured here"
    else:
        # The reference is for 60,000 images; a smaller epoch takes proportionally less.
        baseline_s = TORCH_REFERENCE_S * len(x_train) / 60000
        baseline = (f"torch not installed: the reference {TORCH_REFERENCE_S} s per 60,000 "
                    f"images, scaled to {len(x_train)}")
    ratio = tg_s / baseline_s
    final = rows[-1][0]
    print(f"median s / epoch: tinygen {tg_s:.2f}, baseline {baseline_s:.2f} ({baseline})")
    print(f"ratio tinygen / torch s per epoch = {ratio:.3f}"
          + ("" if torch is not None else " (against the reference)"))
    if torch is not None:
        print(f"final test loss: tinygen {final:.4f}, torch {rows[-1][2]:.4f}")
    # The test loss draws z, so it is noisy: how much, from a few more draws for the same model.
    draws = [evaluate(model, test_loader)["loss"] for _ in range(4)]
    print(f"tinygen's final test loss with {len(draws)} other draws of z: "
          + ", ".join(f"{d:.4f}" for d in draws) + f" (sd {np.std(draws, ddof=1):.4f})")
    met = "met" if final <= TARGET_LOSS else "NOT met"
    print(f"target: tinygen test loss after {args.epochs} epochs {final:.4f} <= {TARGET_LOSS} "
          f"(after 10 epochs): {met}")
    met = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"target: tinygen s / epoch {tg_s:.2f} <= {TARGET_RATIO} x {baseline_s:.2f} = "
          f"{TARGET_RATIO * baseline_s:.2f}: {met}")

    # The IWAE bound of the trained model on binarised test images, and the ELBO of the same.
    x_binary = binarize_dynamic(x_test[:args.iwae_n], np.random.default_rng(0))
    model.eval()
    tg.manual_seed(1)
    started = time.perf_counter()
    iwae = iwae_bound(model, x_binary, args.iwae_k)
    iwae_s = time.perf_counter() - started
    started = time.perf_counter()
    elbo = iwae_bound(model, x_binary, 1)
    elbo_s = time.perf_counter() - started
    n = len(x_binary)
    print(f"log-likelihood of {n} test images binarised by sampling (seed 0), tinygen model, nats "
          "per image (mean +- standard error over the images):")
    print(f"  IWAE bound, k = {args.iwae_k}: {iwae.mean():.3f} +- {iwae.std() / np.sqrt(n):.3f}"
          f"   ({iwae_s:.1f} s, {1000 * iwae_s / n:.1f} ms per image)")
    print(f"  ELBO, k = 1 (one z per image): {elbo.mean():.3f} +- {elbo.std() / np.sqrt(n):.3f}"
          f"   ({elbo_s:.1f} s)")
    gap = iwae - elbo
    print(f"  IWAE - ELBO: {gap.mean():.3f} nats per image (>= 0 in expectation; "
          f"{100 * np.mean(gap >= 0):.1f} % of images >= 0)")

    for line in machine_report([tg.backend.current()], load_start, torch):
        print(line)


if __name__ == "__main__":
    main()
