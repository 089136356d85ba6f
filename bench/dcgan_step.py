"""One DCGAN training step on MNIST-sized images, per tinygen backend, vs the same step in torch.

The model (float32): one of tinygen.models.dcgan's architectures (--architecture; torch's copy
is bench/dcgan_recipe_torch.py's), by default the classic MNIST DCGAN:
    G: z (100) -> Linear(100, 128*7*7) + BatchNorm1d + ReLU -> Unflatten (128, 7, 7)
       -> ConvTranspose2d(128, 64, 4, 2, 1) + BatchNorm2d + ReLU
       -> ConvTranspose2d(64, 1, 4, 2, 1) + Tanh                       -> (1, 28, 28)
    D: Conv2d(1, 64, 4, 2, 1) + LeakyReLU(0.2)
       -> Conv2d(64, 128, 4, 2, 1) + BatchNorm2d + LeakyReLU(0.2) -> Flatten -> Linear(128*7*7, 1)
(--architecture infogan adds a fully connected layer of 1,024 on each side: 13.2M parameters.)
The step (batch 64, Adam lr 2e-4, betas (0.5, 0.999), BCE with logits), as in PyTorch's DCGAN
tutorial: fake = G(z); the discriminator step on D(real) with label 1 and D(fake.detach()) with
label 0 (the two losses summed, one backward, Adam on D); then the generator step with the
non-saturating loss BCE(D(fake), 1) through the updated D (Adam on G). Both models train mode.
The real images are random numbers uniform in [-1, 1] (what a Tanh generator emits; the speed of
a step does not depend on the pixels) and z is standard normal; both are drawn once and reused.

Timed: seconds per step for every tinygen backend that runs here (numpy, numba; cuda only on a
real GPU, never numba's simulator), chosen with tinygen.backend.use, each timed as it is (the cuda
backend copies every convolution's numpy arrays to the GPU and back), and, when torch is installed
(it is not a tinygen dependency), torch's step with the identical architecture and recipe, on the
device --torch-device names: cpu (the default) or cuda. With cuda the models, the optimizer state
and the data live on the GPU from the start, every step ends with torch.cuda.synchronize() (GPU
work is queued asynchronously: without the wait a step's time could stop before its work is done),
and TF32 is switched off in cuDNN and cuBLAS (on Ampere and later it would trade float32 for about
1e-3 relative error). The device of the torch baseline is printed; --torch-device cuda without a
CUDA GPU for torch is an error (exit 2).

Before any timing, from identical weights (one random initialisation, copied by state_dict): one
step gives the same two losses on every tinygen backend (rtol 1e-5), and in torch (tinygen's
state_dict keys are PyTorch's) within 1e-4 on either device
(TF32 off keeps the GPU in float32); the losses of a second step are compared too (within 1e-3:
Adam's first step amplifies rounding), after both optimizers have moved every weight.

Each implementation has its own copy of the models and optimizers. After a warm-up of a few steps
each (numba compilation, allocator), timings alternate between the implementations in blocks of
steps in one run (the machine is noisy; see bench/engine_overhead.py for why blocks rather than
step by step) and the medians and their ratios are printed.
TINYGEN_QUICK=1 runs batch 8 with few repeats (a few seconds), all checks included.

    python bench/dcgan_step.py [--blocks 10] [--block-size 3] [--warmup 2] [--batch 64]
                               [--architecture {classic,deep,infogan}] [--torch-device {cpu,cuda}]
                               [--device {cpu,cuda}]

--device cuda also times tinygen with models, optimizer state and data on the GPU (device
tensors, CuPy arrays), once per way of running the convolutions there: "gpu:im2col" (the numpy
backend's im2col code on CuPy arrays, its products in cuBLAS) and "gpu:implicit_gemm" (the tiled
numba.cuda kernels of tinygen/kernels/cuda_conv.py); each step ends with a device synchronize.
"""
import argparse
import os
import time

import numpy as np
from machine import machine_report, prepare_torch_device, torch_device_report

import tinygen as tg
from tinygen import models, nn

try:
    import torch
    import torch.nn.functional as torch_F
except ImportError:
    torch = None

Z_DIM, LR, BETAS = 100, 2e-4, (0.5, 0.999)


# What the device line says of the torch baseline when it runs on a GPU.
HOW_TIMED_ON_GPU = ("models, optimizer state and data on the GPU, torch.cuda.synchronize() at "
                    "the end of every step")


def build(layers, architecture="classic"):
    """(G, D) of tinygen.models.dcgan's `architecture` in tinygen (layers is tinygen.nn), or its
    copy in torch (layers is torch.nn; bench/dcgan_recipe_torch.py's, the same state_dict keys).
    Their initial weights do not matter: every copy loads one shared starting point."""
    if layers is nn:
        return (models.dcgan_generator(Z_DIM, architecture=architecture),
                models.dcgan_discriminator(architecture=architecture))
    import dcgan_recipe_torch  # torch's copy of the architectures (imports no torch itself)
    variant = "baseline" if architecture == "classic" else architecture
    return dcgan_recipe_torch.build(torch, dcgan_recipe_torch.options(variant))


def starting_point(batch, architecture="classic"):
    """The fixed batch of real images and noise, and one initialisation of G and D (PyTorch's
    default rules) as state dicts, shared by every copy: -> real, z, g_state, d_state."""
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (batch, 1, 28, 28)).astype(np.float32)
    z = rng.standard_normal((batch, Z_DIM)).astype(np.float32)
    tg.manual_seed(0)
    G, D = build(nn, architecture)
    return real, z, G.state_dict(), D.state_dict()


class TinygenGAN:
    """Models and optimizers in tinygen, started from the given state dicts; step() on a backend,
    or with device="cuda" on tensors that live on the GPU, the convolutions by conv_method."""

    def __init__(self, g_state, d_state, backend, real, z, architecture="classic", device="cpu",
                 conv_method=None):
        self.G, self.D = build(nn, architecture)
        self.G.load_state_dict(g_state)
        self.D.load_state_dict(d_state)
        self.G.to(device)  # before the optimizers: Adam keeps its state next to the weights
        self.D.to(device)
        self.opt_g = tg.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = tg.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)
        self.backend, self.device, self.conv_method = backend, device, conv_method
        self.real, self.z = tg.tensor(real, device=device), tg.tensor(z, device=device)
        self.ones = tg.ones(len(real), 1, device=device)
        self.zeros = tg.zeros(len(real), 1, device=device)

    def step(self):
        """One discriminator and one generator update; returns (loss_d, loss_g)."""
        bce = nn.functional.binary_cross_entropy_with_logits
        if self.conv_method is not None:
            tg.kernels.load("cuda").use_conv_method(self.conv_method)
        with tg.backend.use(self.backend):
            fake = self.G(self.z)
            self.opt_d.zero_grad()
            loss_d = (bce(self.D(self.real), self.ones)
                      + bce(self.D(fake.detach()), self.zeros))
            loss_d.backward()
            self.opt_d.step()
            self.opt_g.zero_grad()
            loss_g = bce(self.D(fake), self.ones)  # non-saturating: -log D(G(z))
            loss_g.backward()
            self.opt_g.step()
        if self.device != "cpu":
            tg.devices.synchronize(self.device)  # GPU work is queued: wait for the whole step
        return loss_d.item(), loss_g.item()


# tinygen on device tensors: one implementation per way of running the convolutions there
DEVICE_CONV_METHODS = ("im2col", "implicit_gemm")


class TorchGAN:
    """The same in torch on device ('cpu' or 'cuda'): tinygen's weights loaded through
    load_state_dict; models, optimizer state and data all on device."""

    def __init__(self, g_state, d_state, real, z, device, architecture="classic"):
        self.G, self.D = build(torch.nn, architecture)
        for model, state in ((self.G, g_state), (self.D, d_state)):
            # strict: the keys, shapes and dtypes are torch's
            model.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()})
            model.to(device)  # before the optimizers: Adam keeps its state next to the weights
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)
        self.device = device
        self.real, self.z = torch.from_numpy(real).to(device), torch.from_numpy(z).to(device)
        self.ones = torch.ones(len(real), 1, device=device)
        self.zeros = torch.zeros(len(real), 1, device=device)

    def step(self):
        bce = torch_F.binary_cross_entropy_with_logits
        fake = self.G(self.z)
        self.opt_d.zero_grad()
        loss_d = bce(self.D(self.real), self.ones) + bce(self.D(fake.detach()), self.zeros)
        loss_d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        loss_g = bce(self.D(fake), self.ones)
        loss_g.backward()
        self.opt_g.step()
        if self.device == "cuda":
            # Kernels run after their launch returns: wait for the whole step, Adam included.
            torch.cuda.synchronize()
        return loss_d.item(), loss_g.item()


def backends():
    """The tinygen backends to time: every available one except cuda in numba's simulator."""
    names = tg.backend.available(simulated=False)
    return ["numpy"] + [name for name in reversed(names) if name != "numpy"]


def main():
    quick = os.environ.get("TINYGEN_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2 if quick else 10)
    parser.add_argument("--block-size", type=int, default=2 if quick else 3, help="steps per block")
    parser.add_argument("--warmup", type=int, default=1 if quick else 2,
                        help="untimed steps per implementation first")
    parser.add_argument("--batch", type=int, default=8 if quick else 64)
    parser.add_argument("--architecture", choices=models.gan.ARCHITECTURES, default="classic",
                        help="which of models.dcgan's networks (default: classic, the one above)")
    parser.add_argument("--torch-device", choices=["cpu", "cuda"], default="cpu",
                        help="where the torch baseline step runs (cuda: on the GPU, cuDNN)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: also time tinygen on tensors that live on the GPU, once per "
                             f"way of running its convolutions ({', '.join(DEVICE_CONV_METHODS)})")
    args = parser.parse_args()
    prepare_torch_device(parser, args.torch_device, torch)
    if args.device == "cuda" and not tg.devices.is_available("cuda"):
        parser.error(f"--device cuda: {tg.devices.why_unavailable('cuda')}")
    load_start = os.getloadavg()[0]

    real, z, g_state, d_state = starting_point(args.batch, args.architecture)

    names = backends()
    impls = {name: TinygenGAN(g_state, d_state, name, real, z, args.architecture)
             for name in names}
    if args.device == "cuda":
        for method in DEVICE_CONV_METHODS:
            impls[f"gpu:{method}"] = TinygenGAN(g_state, d_state, "numpy", real, z,
                                                args.architecture, "cuda", method)
    if torch is not None:
        impls["torch"] = TorchGAN(g_state, d_state, real, z, args.torch_device, args.architecture)

    # Same numbers first: the timings mean nothing otherwise. Two steps from the same weights.
    losses = {name: [gan.step() for _ in range(2)] for name, gan in impls.items()}
    reference = np.array(losses["numpy"])
    assert np.all(np.isfinite(reference)), reference
    for name, got in losses.items():
        # Step 1 is the same weights through other kernels: float32 rounding only. Step 2 comes
        # after Adam, which moves a weight by about lr whatever its gradient's size, so where a
        # gradient is nearly 0 rounding can decide its direction: on the infogan network at
        # batch 8, torch's second loss_g differed by 4.6e-4 in float32 and by 2e-14 in float64.
        tolerance = 1e-4 if name == "torch" else 1e-5
        np.testing.assert_allclose(np.array(got)[0], reference[0], rtol=tolerance, atol=tolerance,
                                   err_msg=f"losses of the first step: {name} vs numpy")
        np.testing.assert_allclose(np.array(got)[1], reference[1], rtol=1e-3, atol=1e-3,
                                   err_msg=f"losses of the second step: {name} vs numpy")
    deviation = {name: float(np.max(np.abs(np.array(got) - reference)))
                 for name, got in losses.items() if name != "numpy"}

    for gan in impls.values():
        for _ in range(args.warmup):
            gan.step()
    times = {name: [] for name in impls}
    for _ in range(args.blocks):
        for name, gan in impls.items():
            for _ in range(args.block_size):
                start = time.perf_counter()
                gan.step()
                times[name].append(time.perf_counter() - start)
    median = {name: float(np.median(t)) for name, t in times.items()}
    n_parameters = sum(value.size for key, value in [*g_state.items(), *d_state.items()]
                       if key.endswith(("weight", "bias")))

    print(f"DCGAN step, the {args.architecture} network ({n_parameters:,} parameters; D on real + "
          f"fake, then G, non-saturating), MNIST 28x28, "
          f"batch {args.batch}, float32, Adam lr {LR} betas {BETAS}, BCE with logits")
    print("  real images: random uniform [-1, 1]; z: standard normal; both fixed across steps")
    print(f"  median of {args.blocks} blocks x {args.block_size} steps, after {args.warmup} "
          "warm-up steps per implementation")
    for line in machine_report(names, load_start, torch):
        print(line)
    if torch is not None:
        print(torch_device_report(args.torch_device, torch, HOW_TIMED_ON_GPU))
    print("checks: first two steps' losses (loss_d, loss_g) equal numpy's: "
          + ", ".join(f"{name} max |diff| {d:.1e}" for name, d in deviation.items())
          + f"  (step 1: loss_d {reference[0, 0]:.6f}, loss_g {reference[0, 1]:.6f})")
    print(f"  {'':10}{'s / step':>10}")
    for name in impls:
        print(f"  {name:10}{median[name]:10.4f}")
    others = [name for name in impls if name != "numpy"]
    for name in others:
        print(f"  ratio {name} / numpy = {median[name] / median['numpy']:.3f}")
    if torch is not None:
        for name in impls:
            if name != "torch":
                print(f"  ratio {name} / torch = {median[name] / median['torch']:.3f}")
    if "numba" in impls:
        for name in impls:
            if name.startswith("gpu:"):
                print(f"  speed-up of {name} over numba on this machine's CPU: "
                      f"{median['numba'] / median[name]:.1f}x")


if __name__ == "__main__":
    main()
