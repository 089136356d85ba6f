"""Generative adversarial networks (Goodfellow et al. 2014), trained by the course's algorithm.

A generator G maps noise z ~ p(z) to a sample G(z); a discriminator D maps a sample to the logit of
the probability that it is real. They play the minimax game
    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))].
Each training iteration (train_step) is the minibatch algorithm of the paper:
    for k steps:  m noise samples, m data samples; ascend log D(x) + log(1 - D(G(z))) in D
    then:         m noise samples; one step for G, either
                  "saturating":      descend log(1 - D(G(z)))   (the slide's form)
                  "non-saturating":  ascend  log D(G(z))         (the default:
                                                                  strong gradients early)
All losses are computed from logits with the stable binary cross-entropy:
    log D(x) = -BCE(D(x), 1),   log(1 - D(G(z))) = -BCE(D(G(z)), 0).

Well-known techniques that steady the game, each off by default (issue 17):
- one-sided label smoothing (Salimans et al. 2016), GAN(real_label=0.9): D's target for real
  images is 0.9 instead of 1, fakes keep 0: D's loss is BCE(D(x), 0.9) + BCE(D(G(z)), 0);
- an exponential moving average of G's weights (GAN(ema_decay=0.999)), which sample, interpolate
  and the fixed-noise grids use: ema <- decay * ema + (1 - decay) * w after every G step; its
  batch norm statistics copied from G (ema_batch_norm="copy") or measured on the averaged
  weights' own activations before sampling ("recompute");
- the two-timescale update rule (Heusel et al. 2017): gan_optimizers(gan, lr_discriminator=4e-4,
  lr_generator=1e-4), a learning rate per player;
- spectral normalisation of D's layers (Miyato et al. 2018), W / sigma(W):
  dcgan_discriminator(spectral_norm=True), which also leaves out D's batch norm;
- dropout in D and a wider G: dcgan_discriminator(dropout=0.3), dcgan_generator(width=2.0).
dcgan(...) takes them all as keyword arguments; mlp_gan(...) those that apply to an MLP (all but
the wider G; mlp_discriminator takes dropout and spectral_norm).
"""
import math

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..checks import one_of
from ..creation import ones_like, rand, randn, zeros_like
from ..ema import ExponentialMovingAverage
from ..nn import functional as F
from ..nn import init
from ..nn.module import parameter_device, parameter_dtype
from ..optim import Adam
from ..tensor import Tensor
from .autoencoders import mlp

PRIORS = ("normal", "uniform")
# ema_batch_norm="recompute": the moving average's batch norm statistics are measured on this many
# batches of this many fixed prior draws (torch.optim.swa_utils.update_bn's rule, a cumulative
# average over the batches)
STATISTICS_BATCHES, STATISTICS_BATCH_SIZE, STATISTICS_SEED = 20, 500, 12345
GENERATOR_LOSSES = ("non-saturating", "saturating")


class GAN(nn.Module):
    """generator: z (N, latent_dim) -> samples; discriminator: samples -> logits (N, 1).

    prior: "normal" N(0, I) or "uniform" U(-1, 1)^latent_dim. k: discriminator steps per generator
    step. The loader's batches hold k * m samples: each discriminator step takes m of them.
    real_label: D's target for real samples (1; 0.9 is one-sided label smoothing).
    ema_decay: None, or keep `generator_ema`, an ExponentialMovingAverage of G's weights with that
    decay (ema_warmup: ramp the decay up), updated after every G step; sample, interpolate and
    sample_grid_saver then use it. It is a sub-module, so it is saved in state_dict and
    checkpoints. It copies G when the GAN is made: initialise G first (or let the first update,
    which copies G again, take care of it). ema_batch_norm: how the average gets its batch norm
    statistics, "copy" (G's running statistics, after every update) or "recompute" (those of its
    own activations on STATISTICS_BATCHES batches of STATISTICS_BATCH_SIZE fixed prior draws,
    measured when it next samples: the weights changed since, or the GAN was loaded).
    """

    def __init__(self, generator, discriminator, latent_dim, prior="normal", k=1,
                 generator_loss="non-saturating", *, real_label=1.0, ema_decay=None,
                 ema_warmup=False, ema_batch_norm="copy"):
        super().__init__()
        one_of(prior, PRIORS, "prior")
        one_of(generator_loss, GENERATOR_LOSSES, "generator_loss")
        if k < 1:
            raise ValueError(f"k (discriminator steps per generator step) must be >= 1, got {k}")
        if not 0 < real_label <= 1:
            raise ValueError(f"real_label must be in (0, 1], got {real_label}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.prior = prior
        self.k = k
        self.generator_loss_kind = generator_loss
        self.real_label = real_label
        self.generator_ema = (None if ema_decay is None
                              else ExponentialMovingAverage(generator, ema_decay, ema_warmup,
                                                            ema_batch_norm))

    @property
    def sampling_generator(self):
        """The generator that sample, interpolate and the grids use: G's moving average if the GAN
        keeps one (its batch norm statistics recomputed first where they are stale), else G."""
        if self.generator_ema is None:
            return self.generator
        if self.generator_ema.statistics_stale():
            self.generator_ema.recompute_batch_norm(self._statistics_batches())
        return self.generator_ema.module

    def _statistics_batches(self):
        """The prior draws the moving average's batch norm statistics are measured on: the same
        ones every time (a generator of their own, seeded), so that recomputing them after a
        load gives the same statistics, and the global random stream is left untouched."""
        rng = np.random.default_rng(STATISTICS_SEED)
        for _ in range(STATISTICS_BATCHES):
            yield self._prior_draws(rng, STATISTICS_BATCH_SIZE)

    def sample_prior(self, n):
        """z ~ p(z): (n, latent_dim)."""
        dtype, device = parameter_dtype(self.generator), parameter_device(self.generator)
        if self.prior == "normal":
            return randn(n, self.latent_dim, dtype=dtype, device=device)
        return rand(n, self.latent_dim, dtype=dtype, device=device) * 2 - 1

    def forward(self, z):
        return self.generator(z)

    @no_grad()
    def sample(self, n):
        """n generated samples G(z), z ~ p(z) (G's moving average if the GAN keeps one)."""
        return self.sampling_generator(self.sample_prior(n))

    @no_grad()
    def interpolate(self, z_a, z_b, steps=8):
        """G along the straight line from z_a to z_b (each (latent_dim,)): (steps, ...)."""
        z_a = _host_vector(z_a)
        z_b = _host_vector(z_b)
        t = np.linspace(0, 1, steps).reshape(-1, 1)
        z = Tensor(z_a * (1 - t) + z_b * t, dtype=parameter_dtype(self.generator),
                   device=parameter_device(self.generator))
        return self.sampling_generator(z)

    def fixed_noise(self, n=64, seed=0):
        """n prior draws from their own generator (seeded): the same z every call, and the global
        random stream (which drives training) is left untouched."""
        return self._prior_draws(np.random.default_rng(seed), n)

    def _prior_draws(self, rng, n):
        """n draws of the prior from the NumPy generator rng, as a tensor of G's dtype."""
        if self.prior == "normal":
            z = rng.standard_normal((n, self.latent_dim))
        else:
            z = rng.uniform(-1, 1, (n, self.latent_dim))
        return Tensor(z, dtype=parameter_dtype(self.generator),
                      device=parameter_device(self.generator))

    def load_state_dict(self, state_dict, strict=True):
        if self.generator_ema is not None:  # new weights: their statistics are to be measured
            self.generator_ema.forget_statistics()
        return super().load_state_dict(state_dict, strict)

    def sample_watcher(self, on_samples, n=64, seed=0):
        """An on_epoch_end for train.fit that hands G(z), for one fixed z, to
        on_samples(epoch, images) after every epoch (images: a host array), to watch training one
        picture at a time: tinygen.plot.epoch_grids(folder) saves each as a PNG.

        The generator (G's moving average if the GAN keeps one) runs in eval mode (BatchNorm's
        running statistics, which it does not change) and goes back to the mode it was in. The
        GAN never draws: the caller, a higher layer, says what becomes of the images.
        """
        z = self.fixed_noise(n, seed)

        def watch(epoch, history=None):
            generator = self.sampling_generator
            was_training = generator.training
            generator.eval()
            try:
                with no_grad():
                    images = generator(z).cpu().numpy()
            finally:
                generator.train(was_training)
            on_samples(epoch, images)

        return watch

    # ---- the two players' losses ---------------------------------------------------------------
    def discriminator_loss(self, x_real, fake):
        """-(log D(x) + log(1 - D(G(z)))), batch means: what D descends.
        Returns (loss, D(x), D(G(z))) (the last two as logits).

        With real_label r < 1 (one-sided label smoothing) the real term is BCE(D(x), r) =
        -(r log D(x) + (1 - r) log(1 - D(x))): D is no longer pushed to be ever surer of the
        real images; the fakes' target stays 0 (smoothing it would reward G's mistakes).
        """
        real_logits = self.discriminator(x_real)
        fake_logits = self.discriminator(fake)
        real_targets = ones_like(real_logits) * self.real_label
        loss = (F.binary_cross_entropy_with_logits(real_logits, real_targets)
                + F.binary_cross_entropy_with_logits(fake_logits, zeros_like(fake_logits)))
        return loss, real_logits, fake_logits

    def generator_loss(self, fake_logits):
        """What G descends, from D's logits on G(z)."""
        if self.generator_loss_kind == "saturating":
            # log(1 - D(G(z))) = -BCE(D(G(z)), 0): descend it
            return -F.binary_cross_entropy_with_logits(fake_logits, zeros_like(fake_logits))
        # -log D(G(z)) = BCE(D(G(z)), 1): descending it ascends log D(G(z))
        return F.binary_cross_entropy_with_logits(fake_logits, ones_like(fake_logits))

    # ---- one iteration of the algorithm --------------------------------------------------------
    def train_step(self, batch, optimizers):
        """k discriminator steps, then one generator step. optimizers: {"generator": ...,
        "discriminator": ...}. Returns the metrics fit logs."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        m = len(x) // self.k
        if m < 1:
            raise ValueError(f"GAN.train_step: a batch of {len(x)} cannot feed k = {self.k} "
                             "discriminator steps (use batches of k * m samples)")
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        for step in range(self.k):
            x_step = x[step * m:(step + 1) * m]
            with no_grad():
                fake = self.generator(self.sample_prior(m))  # D's step must not reach G
            opt_d.zero_grad()
            loss_d, real_logits, fake_logits = self.discriminator_loss(x_step, fake)
            loss_d.backward()
            opt_d.step()
        # The generator step: gradients flow through D to G, but D's weights are frozen (and
        # get no gradient at all, which also saves their computation).
        d_params = list(self.discriminator.parameters())
        flags = [p.requires_grad for p in d_params]  # put back as they were, frozen ones too
        self.discriminator.requires_grad_(False)
        try:
            opt_g.zero_grad()
            loss_g = self.generator_loss(self.discriminator(self.generator(self.sample_prior(m))))
            loss_g.backward()
            opt_g.step()
        finally:
            for p, flag in zip(d_params, flags):
                p.requires_grad = flag
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator)
        return {
            "loss_d": loss_d,
            "loss_g": loss_g,
            "d_real": F.sigmoid(real_logits).mean(),  # D(x), the last D step's
            "d_fake": F.sigmoid(fake_logits).mean(),  # D(G(z)) before the G step
            "g_grad_norm": _grad_norm(self.generator),
        }


def _grad_norm(module):
    """sqrt(sum of squared gradients) over a module's parameters, summed in float64 (einsum casts
    a block at a time, without a float64 copy of the whole gradient)."""
    total = 0.0
    for p in module.parameters():
        if p.grad is not None:
            g = p.grad.data.reshape(-1)
            total = total + np.einsum("i,i->", g, g, dtype=np.float64)  # on g's device
    return math.sqrt(float(total))  # one read from the device per step


def gan_optimizers(gan, lr=2e-4, betas=(0.5, 0.999), lr_discriminator=None, lr_generator=None):
    """{"generator": Adam, "discriminator": Adam} with DCGAN's settings by default.

    lr_discriminator and lr_generator (None: lr) give each player its own learning rate, the
    two-timescale update rule of Heusel et al. 2017 (e.g. D 4e-4, G 1e-4).
    """
    lr_d = lr if lr_discriminator is None else lr_discriminator
    lr_g = lr if lr_generator is None else lr_generator
    return {"generator": Adam(gan.generator.parameters(), lr=lr_g, betas=betas),
            "discriminator": Adam(gan.discriminator.parameters(), lr=lr_d, betas=betas)}


# ---- builders ----------------------------------------------------------------------------------
def mlp_generator(latent_dim, hidden, out_dim, out_activation="tanh"):
    """z -> hidden layers (ReLU) -> out_dim, then tanh (images in [-1, 1]), sigmoid, or none."""
    net = mlp([latent_dim, *hidden, out_dim])
    if out_activation == "tanh":
        net.append(nn.Tanh())
    elif out_activation == "sigmoid":
        net.append(nn.Sigmoid())
    elif out_activation is not None:
        raise ValueError(
            f"out_activation must be 'tanh', 'sigmoid' or None, got {out_activation!r}"
        )
    return net


def mlp_discriminator(in_dim, hidden, negative_slope=0.2, dropout=0.0, spectral_norm=False):
    """x -> hidden layers (LeakyReLU) -> one logit.

    dropout > 0: a Dropout(dropout) after each LeakyReLU. spectral_norm: every Linear layer
    spectrally normalised (nn.spectral_norm), as in dcgan_discriminator.
    """
    sizes = [in_dim, *hidden, 1]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        layers.append(nn.spectral_norm(linear) if spectral_norm else linear)
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(negative_slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def mlp_gan(latent_dim=100, *, real_label=1.0, ema_decay=None, ema_warmup=False,
            ema_batch_norm="copy", spectral_norm=False, discriminator_dropout=0.0):
    """The course's MLP GAN (lesson 11, `tinygen train gan`): G latent-256-512-784 (ReLU, Tanh),
    D 784-512-256-1 (LeakyReLU 0.2), z ~ N(0, I), k = 1, non-saturating G loss, PyTorch's
    default initialisation. The keyword arguments are dcgan's techniques that apply to it."""
    generator = mlp_generator(latent_dim, (256, 512), 784)
    discriminator = mlp_discriminator(784, (512, 256), dropout=discriminator_dropout,
                                      spectral_norm=spectral_norm)
    return GAN(generator, discriminator, latent_dim, real_label=real_label, ema_decay=ema_decay,
               ema_warmup=ema_warmup, ema_batch_norm=ema_batch_norm)


# The DCGAN's architectures (`dcgan(architecture=...)`), each a generator for 28 x 28 digits and a
# discriminator that reads them:
#   "classic"  the notes' DCGAN rules to the letter: one Linear to reach a 7 x 7 grid, then two
#              (transposed) convolutions on each side, no fully connected hidden layer (0.92M
#              parameters: 0.78M in G, 0.14M in D);
#   "deep"     the same rules with more capacity: 256 channels at 7 x 7 and a third, stride-1
#              convolution on each side (2.16M: 1.72M in G, 0.44M in D);
#   "infogan"  the MNIST network of InfoGAN (Chen et al. 2016, table 1) and TF-GAN's example: a
#              fully connected hidden layer of 1,024 on each side, against the rule (13.24M:
#              6.68M in G, 6.56M in D, 12.8M of them in the two 1024 x 6272 matrices).
# (tests/test_gan.py counts them by hand.)
ARCHITECTURES = ("classic", "deep", "infogan")


def dcgan_generator(latent_dim=100, width=1.0, architecture="classic"):
    """z (N, latent_dim) -> images (N, 1, 28, 28) in [-1, 1] by fractional-strided convolutions.

    "classic": z -> Linear(latent, 128*7*7) + BN + ReLU -> (128, 7, 7) -> ConvT(128, 64, 4, 2, 1)
    + BN + ReLU (14 x 14) -> ConvT(64, 1, 4, 2, 1) + Tanh (28 x 28).
    "deep": z -> Linear(latent, 256*7*7) + BN + ReLU -> (256, 7, 7) -> ConvT(256, 128, 3, 1, 1)
    + BN + ReLU (7 x 7) -> ConvT(128, 64, 4, 2, 1) + BN + ReLU -> ConvT(64, 1, 4, 2, 1) + Tanh.
    "infogan": z -> Linear(latent, 1024) + BN + ReLU -> Linear(1024, 128*7*7) + BN + ReLU, then
    classic's two transposed convolutions.
    width scales every channel count and the hidden layer (2.0: twice as many).
    """
    _check_architecture(architecture)
    top = _channels(256 if architecture == "deep" else 128, width)  # channels at 7 x 7
    narrow = _channels(64, width)
    if architecture == "infogan":
        hidden = _channels(1024, width)
        layers = [nn.Linear(latent_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                  nn.Linear(hidden, top * 7 * 7)]
    else:
        layers = [nn.Linear(latent_dim, top * 7 * 7)]
    layers += [nn.BatchNorm1d(top * 7 * 7), nn.ReLU(), nn.Unflatten(1, (top, 7, 7))]
    if architecture == "deep":  # stride 1: more capacity at 7 x 7, the size stays
        layers += [nn.ConvTranspose2d(top, top // 2, 3, 1, 1), nn.BatchNorm2d(top // 2), nn.ReLU()]
        top //= 2
    layers += [nn.ConvTranspose2d(top, narrow, 4, 2, 1), nn.BatchNorm2d(narrow), nn.ReLU(),  # 14
               nn.ConvTranspose2d(narrow, 1, 4, 2, 1), nn.Tanh()]  # (N, 1, 28, 28)
    return nn.Sequential(*layers)


def _host_vector(z):
    """A latent vector given as a Tensor (on any device), an array or a list -> (1, D) on the
    host (an explicit copy: interpolate builds its line of z there)."""
    z = z.cpu().numpy() if isinstance(z, Tensor) else np.asarray(z)
    return z.reshape(1, -1)


def _check_architecture(architecture):
    one_of(architecture, ARCHITECTURES, "architecture")


def _channels(base, width):
    """round(base * width) channels, at least one."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(1, round(base * width))


def dcgan_discriminator(dropout=0.0, spectral_norm=False, architecture="classic"):
    """(N, 1, 28, 28) -> one logit (N, 1).

    "classic": Conv(1, 64, 4, 2, 1) + LeakyReLU(0.2) (14 x 14) -> Conv(64, 128, 4, 2, 1) + BN +
    LeakyReLU(0.2) (7 x 7) -> Flatten -> Linear(128*7*7, 1).
    "deep": classic's two convolutions, then Conv(128, 256, 3, 1, 1) + BN + LeakyReLU(0.2) at
    7 x 7 -> Flatten -> Linear(256*7*7, 1).
    "infogan": classic's two convolutions -> Flatten -> Linear(128*7*7, 1024) + BN +
    LeakyReLU(0.2) -> Linear(1024, 1).

    dropout > 0: a Dropout(dropout) after each LeakyReLU. spectral_norm: every conv and linear
    layer spectrally normalised (nn.spectral_norm), and no batch norm, as in Miyato et al.'s
    discriminators: batch norm divides by a batch's standard deviation, which can scale D's
    activations up without bound and undo the Lipschitz bound the normalisation gives.
    """
    _check_architecture(architecture)

    def weighted(layer):
        return nn.spectral_norm(layer) if spectral_norm else layer

    def activation():
        """LeakyReLU(0.2) [+ Dropout]."""
        return [nn.LeakyReLU(0.2)] + ([nn.Dropout(dropout)] if dropout > 0 else [])

    def normalised_activation(features, batch_norm):
        """[BN +] activation(): batch norm unless D is spectrally normalised."""
        return ([batch_norm(features)] if not spectral_norm else []) + activation()

    layers = [weighted(nn.Conv2d(1, 64, 4, 2, 1)), *activation(),  # (N, 64, 14, 14)
              weighted(nn.Conv2d(64, 128, 4, 2, 1)),  # (N, 128, 7, 7)
              *normalised_activation(128, nn.BatchNorm2d)]
    features = 128 * 7 * 7
    if architecture == "deep":
        layers += [weighted(nn.Conv2d(128, 256, 3, 1, 1)),
                   *normalised_activation(256, nn.BatchNorm2d)]
        features = 256 * 7 * 7
    layers.append(nn.Flatten())
    if architecture == "infogan":
        layers += [weighted(nn.Linear(features, 1024)),
                   *normalised_activation(1024, nn.BatchNorm1d)]
        features = 1024
    layers.append(weighted(nn.Linear(features, 1)))
    return nn.Sequential(*layers)


def dcgan_init(module):
    """DCGAN's initialisation, as model.apply(dcgan_init): conv and linear weights ~ N(0, 0.02)
    (Radford et al. 2016); batch norm scales ~ N(1, 0.02) and shifts 0 (PyTorch's DCGAN example,
    pytorch/examples dcgan/main.py weights_init); conv and linear biases 0 (tinygen's choice)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        # a spectrally normalised layer learns weight_orig; weight is computed from it
        init.normal_(getattr(module, "weight_orig", module.weight), 0.0, 0.02)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
        init.normal_(module.weight, 1.0, 0.02)
        init.zeros_(module.bias)


def dcgan(latent_dim=100, k=1, generator_loss="non-saturating", *, architecture="classic",
          real_label=1.0, ema_decay=None, ema_warmup=False, ema_batch_norm="copy",
          spectral_norm=False, discriminator_dropout=0.0, generator_width=1.0):
    """The course's MNIST DCGAN (lesson 13), initialised by dcgan_init.

    architecture: "classic" (the notes' rules, lesson 13's first network), "deep" or "infogan"
    (what `tinygen train dcgan` trains): see ARCHITECTURES above dcgan_generator.

    The keyword arguments switch on the techniques of the module docstring (all off by default):
    real_label and ema_decay / ema_warmup / ema_batch_norm (GAN), spectral_norm and
    discriminator_dropout (dcgan_discriminator), generator_width (dcgan_generator's width).
    """
    generator = dcgan_generator(latent_dim, width=generator_width, architecture=architecture)
    discriminator = dcgan_discriminator(discriminator_dropout, spectral_norm, architecture)
    # initialised before the GAN is made, so that G's moving average starts from these weights
    generator.apply(dcgan_init)
    discriminator.apply(dcgan_init)
    return GAN(generator, discriminator, latent_dim, "normal", k, generator_loss,
               real_label=real_label, ema_decay=ema_decay, ema_warmup=ema_warmup,
               ema_batch_norm=ema_batch_norm)
