"""The variational autoencoder (Kingma & Welling 2014), exactly as the course draws it.

    sub-net 1, the encoder:   x -> (mu, log sigma^2), the two parameters of q(z|x) = N(mu, sigma^2)
    the sampler:              z = mu + sigma * eps,  eps ~ N(0, I)   (the reparameterisation trick:
                              the randomness is an input, so gradients flow to mu and sigma)
    sub-net 2, the decoder:   z -> the parameters of p(x|z): Bernoulli logits for binarised images,
                              or a Gaussian's mean and log-variance ("two parameters")
The loss is the negative evidence lower bound, per sample:
    -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || N(0, I))      ("recon" + "kl")
with the expectation estimated by one sample of z and the KL in closed form.

A Gaussian decoder's learned variance can shrink without end on pixels that never change (MNIST's
black border): the density there grows without bound and so does the "likelihood". Two fixes:
dequantise the data (tinygen.data.transforms.dequantize), which leaves every pixel a spread of at
least 1/256 to cover, and a floor sigma_min on the decoder's standard deviation (floored_logvar).
bits_per_dim turns a -ELBO on dequantised data into bits per pixel of the 256-level images.
"""
import math

import numpy as np

from .. import nn
from ..autograd import is_grad_enabled, no_grad
from ..checks import one_of
from ..creation import rand, randn, zeros_like
from ..nn import functional as F
from ..nn.module import parameter_device, parameter_dtype
from ..ops import concatenate
from ..tensor import Tensor
from .autoencoders import conv_decoder, conv_encoder, mlp

LIKELIHOODS = ("bernoulli", "gaussian")
MEAN_ACTIVATIONS = ("identity", "sigmoid")


def floored_logvar(raw, floor):
    """floor + softplus(raw - floor): a log-variance that never falls below `floor`, smoothly.

    Well above the floor it is raw itself (softplus(t) -> t), so the decoder keeps the variance it
    learned; below, it bends onto the floor. Its derivative sigmoid(raw - floor) lies in (0, 1):
    never 0, so a unit that went below the floor still feels the loss and can climb back (a hard
    clamp would give it no gradient at all), and never above 1. The price: at raw = floor the
    variance is twice the floor's (softplus(0) = log 2), a small bias only near the floor.
    """
    return F.softplus(raw - floor) + floor


class VAE(nn.Module):
    """encoder: x (N, D) -> (N, 2 latent_dim), split into mu and logvar; decoder: z (N, latent_dim)
    -> (N, D) Bernoulli logits, or (N, 2 D) Gaussian mean and log-variance.

    beta weighs the KL term (beta-VAE; 1 is the ELBO). kl_warmup: the number of training steps over
    which that weight grows linearly from 0 to beta (0: no warm-up). For the Gaussian decoder:
    sigma_min, a floor on each pixel's standard deviation, log sigma^2 >= log sigma_min^2 through
    floored_logvar (None: no floor, the decoder's log-variance as it comes); mean_activation,
    "identity" (the mean as it comes) or "sigmoid" (pixel means in (0, 1), which can come very
    close to 0 and 1 without the output having to hit one exact number).
    """

    def __init__(self, encoder, decoder, latent_dim, likelihood="bernoulli", beta=1.0,
                 kl_warmup=0, sigma_min=None, mean_activation="identity"):
        super().__init__()
        one_of(likelihood, LIKELIHOODS, "likelihood")
        if sigma_min is not None:
            if likelihood != "gaussian":
                raise ValueError(f"sigma_min is a floor on a Gaussian decoder's standard deviation;"
                                 f" the {likelihood} decoder has none")
            if not sigma_min > 0:
                raise ValueError(f"sigma_min must be a positive number, got {sigma_min!r}")
        one_of(mean_activation, MEAN_ACTIVATIONS, "mean_activation")
        if mean_activation != "identity" and likelihood != "gaussian":
            raise ValueError(f"mean_activation shapes a Gaussian decoder's mean; the {likelihood}"
                             f" decoder has none")
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.sigma_min = sigma_min
        self.mean_activation = mean_activation
        # Training steps taken, for the KL warm-up: a buffer, so a resumed run goes on from there.
        self.register_buffer("kl_warmup_steps", np.zeros((), dtype=np.int64))

    def extra_repr(self):
        """latent_dim, likelihood, and beta, warm-up, sigma_min and mean_activation where set."""
        settings = [f"latent_dim={self.latent_dim}", f"likelihood={self.likelihood!r}"]
        if self.beta != 1.0:
            settings.append(f"beta={self.beta}")
        if self.kl_warmup:
            settings.append(f"kl_warmup={self.kl_warmup}")
        if self.sigma_min is not None:
            settings.append(f"sigma_min={self.sigma_min:.3g}")
        if self.mean_activation != "identity":
            settings.append(f"mean_activation={self.mean_activation!r}")
        return ", ".join(settings)

    @property
    def steps(self):
        """The number of training steps taken so far (it drives the KL warm-up)."""
        return int(self.kl_warmup_steps.data)

    # ---- the three pieces ----------------------------------------------------------------------
    def encode(self, x):
        """x (N, D) -> (mu, logvar), each (N, latent_dim)."""
        h = self.encoder(x)
        if h.shape[-1] != 2 * self.latent_dim:
            raise ValueError(f"VAE: the encoder must output 2 x latent_dim = {2 * self.latent_dim} "
                             f"numbers per sample, got shape {h.shape}")
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def reparameterize(self, mu, logvar):
        """z = mu + sigma eps with eps ~ N(0, I) and sigma = exp(logvar / 2)."""
        eps = randn(*mu.shape, dtype=mu.dtype, device=mu.device)
        return mu + (logvar * 0.5).exp() * eps

    @property
    def logvar_floor(self):
        """log sigma_min^2, the lowest log-variance the Gaussian decoder gives (None: no floor)."""
        return None if self.sigma_min is None else 2.0 * math.log(self.sigma_min)

    def decode(self, z):
        """z -> the parameters of p(x|z): logits (N, D), or (mean, logvar) each (N, D)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return out
        d = out.shape[-1] // 2
        mean, logvar = out[:, :d], out[:, d:]
        if self.mean_activation == "sigmoid":
            mean = F.sigmoid(mean)
        if self.sigma_min is not None:
            logvar = floored_logvar(logvar, self.logvar_floor)
        return mean, logvar

    def forward(self, x):
        """The reconstruction of x through its mean code: decode(mu(x)) as pixel means, (N, D)."""
        mu, _ = self.encode(x)
        return self.mean_image(self.decode(mu))

    # ---- the loss ------------------------------------------------------------------------------
    def log_likelihood(self, x, params):
        """log p(x|z) per sample (N,), summed over pixels, for decoder parameters `params`."""
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(params, x, reduction="none").sum(axis=1)
        mean, logvar = params
        return -F.gaussian_nll(x, mean, logvar, reduction="none").sum(axis=1)

    def kl_weight(self):
        """beta, ramped up linearly over the first kl_warmup training steps."""
        if self.kl_warmup <= 0:
            return self.beta
        return self.beta * min(1.0, self.steps / self.kl_warmup)

    def loss(self, x):
        """(negative ELBO per sample, batch mean, {"recon": E[-log p(x|z)], "kl": KL}) in nats."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        recon = -self.log_likelihood(x, self.decode(z)).mean()
        kl = F.kl_normal(mu, logvar, reduction="batchmean")  # Kingma & Welling 2014, appendix B
        # In evaluation the loss is the full objective, whatever the warm-up has reached.
        weight = self.kl_weight() if self.training else self.beta
        if self.training and is_grad_enabled():
            self.kl_warmup_steps.data[...] += 1
        return recon + kl * weight, {"recon": recon, "kl": kl}

    # ---- what a trained VAE is for -------------------------------------------------------------
    def mean_image(self, params):
        """The expected image under p(x|z): sigmoid(logits), or the Gaussian's mean."""
        if self.likelihood == "bernoulli":
            return F.sigmoid(params)
        return params[0]

    def draw_image(self, params):
        """One image drawn from p(x|z) itself: Bernoulli {0, 1} pixels, or mean + sigma * noise."""
        if self.likelihood == "bernoulli":
            probabilities = F.sigmoid(params).data
            u = rand(*probabilities.shape, dtype=probabilities.dtype, device=params.device).data
            return Tensor((u < probabilities).astype(probabilities.dtype))
        mean, logvar = params
        return mean + (logvar * 0.5).exp() * randn(*mean.shape, dtype=mean.dtype,
                                                  device=mean.device)

    @no_grad()
    def sample(self, n, mean=True):
        """n images decoded from z ~ N(0, I), (n, D): their means under p(x|z), or with
        mean=False images drawn from p(x|z) (every pixel with its own independent noise)."""
        z = randn(n, self.latent_dim, dtype=parameter_dtype(self), device=parameter_device(self))
        params = self.decode(z)
        return self.mean_image(params) if mean else self.draw_image(params)

    @no_grad()
    def reconstruct(self, x):
        """The images decoded from each input's mean code mu, (N, D), with no graph recorded."""
        return self.forward(x)

    @no_grad()
    def interpolate(self, x_a, x_b, steps=8):
        """Images decoded along the straight line from mu(x_a) to mu(x_b), (steps, D)."""
        mu_a, _ = self.encode(_as_batch(x_a, self))
        mu_b, _ = self.encode(_as_batch(x_b, self))
        t = Tensor(np.linspace(0, 1, steps).reshape(-1, 1), dtype=mu_a.dtype)
        return self.mean_image(self.decode(mu_a * (1 - t) + mu_b * t))


def bits_per_dim(neg_elbo, dim, levels=256):
    """A -ELBO in nats per image of continuous x = (k + u) / levels, as bits per pixel of the
    discrete images: (neg_elbo / dim + log levels) / log 2.

    The bound holds per image. k is the image's dim pixel levels and u ~ U[0, 1)^dim; the model
    gives image k the mass of its bin, a cube of volume levels^-dim in x, so
    P(k) = levels^-dim E_u[p(x)], and Jensen's inequality (-log is convex) gives
    -log P(k) <= E_u[-log p(x)] + dim log levels. With -log p(x) <= -ELBO(x):
    -log P(k) <= E_u[-ELBO(x)] + dim log levels. A -ELBO from one draw of u (and of z) per image
    gives here an unbiased estimate of that bound in bits per pixel, not the bound itself.
    """
    return (neg_elbo / dim + math.log(levels)) / math.log(2)


def _as_tensor(x, model):
    """x as a Tensor; arrays take the model's dtype (float64 models keep float64 inputs) and go to
    its device."""
    if isinstance(x, Tensor):
        return x
    return Tensor(x, dtype=parameter_dtype(model), device=parameter_device(model))


def _as_batch(x, model):
    """One image (D,) or a batch (1, D) as a (1, D) Tensor."""
    x = _as_tensor(x, model)
    return x.reshape(1, -1) if x.ndim == 1 else x


def mlp_vae(input_dim=784, hidden=400, latent_dim=20, likelihood="bernoulli", **kwargs):
    """The VAE of pytorch/examples: encoder input-hidden (ReLU) -> (mu, logvar), decoder
    latent-hidden (ReLU) -> input (x2 for a Gaussian likelihood: mean and log-variance).

    kwargs go to VAE: beta, kl_warmup, and for the Gaussian decoder sigma_min and
    mean_activation."""
    out = input_dim * (2 if likelihood == "gaussian" else 1)
    encoder = mlp([input_dim, hidden, 2 * latent_dim])
    decoder = mlp([latent_dim, hidden, out])
    return VAE(encoder, decoder, latent_dim, likelihood, **kwargs)


def conv_vae(latent_dim=20, likelihood="bernoulli", **kwargs):
    """A convolutional VAE: the conv autoencoder's encoder and decoder around a Gaussian code."""
    if likelihood != "bernoulli":
        raise ValueError("conv_vae: only the Bernoulli likelihood is built in")
    return VAE(conv_encoder(2 * latent_dim), conv_decoder(latent_dim), latent_dim, likelihood,
               **kwargs)


@no_grad()
def iwae_bound(model, x, k, batch_size=500):
    """The importance-weighted bound on log p(x) per image (Burda et al. 2016), (N,) NumPy array:

        log p(x) >= log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x),   z_j ~ q(z|x),

    computed with logsumexp, k samples per image drawn in chunks of batch_size. At k = 1 it is the
    ELBO's one-sample estimate; it grows with k towards log p(x).
    """
    if k < 1:
        raise ValueError(f"iwae_bound: k must be a positive number of samples, got {k}")
    x = _as_tensor(x, model)
    result = np.empty(len(x))
    for i in range(len(x)):
        xi = x[i:i + 1]
        mu, logvar = model.encode(xi)
        log_weights = []
        for start in range(0, k, batch_size):
            m = min(batch_size, k - start)
            mu_m = mu.broadcast_to((m, model.latent_dim))
            logvar_m = logvar.broadcast_to((m, model.latent_dim))
            z = model.reparameterize(mu_m, logvar_m)
            log_px = model.log_likelihood(xi.broadcast_to((m, xi.shape[1])), model.decode(z))
            # log N(z; mean, exp(logvar)) summed over the latent axis: prior N(0, I), posterior q
            log_pz = -F.gaussian_nll(z, zeros_like(z), 0.0, reduction="none").sum(axis=1)
            log_qz = -F.gaussian_nll(z, mu_m, logvar_m, reduction="none").sum(axis=1)
            log_weights.append((log_px + log_pz - log_qz).data)
        log_w = np.concatenate(log_weights).astype(np.float64)
        top = log_w.max()
        result[i] = top + math.log(np.exp(log_w - top).sum()) - math.log(k)
    return result


def attribute_vector(model, x_with, x_without):
    """The difference of mean codes of two groups of images (with and without an attribute)."""
    with no_grad():
        mu_with, _ = model.encode(_as_tensor(x_with, model))
        mu_without, _ = model.encode(_as_tensor(x_without, model))
    return mu_with.data.mean(axis=0) - mu_without.data.mean(axis=0)


@no_grad()
def add_attribute(model, x, vector, scales=(0.0, 0.5, 1.0, 1.5, 2.0)):
    """Each image's mean code plus s * vector for each scale s, decoded: (N * len(scales), D),
    row-major by image, so an image grid with nrow=len(scales) shows one image per row."""
    mu, _ = model.encode(_as_tensor(x, model))
    rows = [mu + Tensor(s * vector.reshape(1, -1), dtype=mu.dtype) for s in scales]
    codes = concatenate([r.reshape(len(x), 1, -1) for r in rows], axis=1)
    return model.mean_image(model.decode(codes.reshape(-1, model.latent_dim)))
