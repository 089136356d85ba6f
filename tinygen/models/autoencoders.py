"""The autoencoder family: an encoder f maps x to a code z = f(x), a decoder g maps it back.

Training minimises a reconstruction loss L(x, g(f(x))) plus, for the regularised autoencoders, a
penalty Omega that makes the code useful rather than a copy of x:
    Autoencoder             L(x, g(f(x)))                        under- or over-complete
    LinearAutoencoder       linear f and g with squared error    learns PCA's subspace
    SparseAutoencoder       + lambda sum_i |z_i|  (or beta sum_j KL(rho || rho_hat_j))
    DenoisingAutoencoder    L(x, g(f(x~))), x~ a corrupted copy of x
    ContractiveAutoencoder  + lambda ||d z / d x||_F^2           penalising derivatives
Every model has encode(x) -> z, decode(z) -> r, forward(x) -> r and loss(x) -> (loss, metrics), the
metrics naming each term. Encoders and decoders are any Modules (mlp() and the conv builders below).
Inputs are flattened images (N, D) in [0, 1].
"""
from contextlib import nullcontext

from .. import devices, nn
from ..autograd import enable_grad, grad
from ..checks import one_of
from ..creation import randn
from ..nn import functional as F
from ..random import generator
from ..tensor import as_tensor


def mlp(sizes, activation=nn.ReLU):
    """Linear layers of the given sizes with `activation` between them (none after the last).

    mlp([784, 512, 32]) = Linear(784, 512), ReLU(), Linear(512, 32).
    """
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """z = encoder(x), r = decoder(z); loss = L(x, r), summed over pixels, averaged over the batch.

    output="sigmoid": the decoder emits logits and r = sigmoid(logits), pixels in [0, 1];
    output="linear": r is the decoder's output itself. reconstruction="bce" (the Bernoulli
    cross-entropy, from the logits, stable; needs output="sigmoid") or "mse" (squared error of r).
    """

    def __init__(self, encoder, decoder, reconstruction="bce", output="sigmoid"):
        super().__init__()
        if reconstruction not in ("bce", "mse"):
            raise ValueError(f"reconstruction must be 'bce' or 'mse', got {reconstruction!r}")
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"output must be 'sigmoid' or 'linear', got {output!r}")
        if reconstruction == "bce" and output != "sigmoid":
            raise ValueError("reconstruction='bce' needs output='sigmoid' (probabilities)")
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction = reconstruction
        self.output = output

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        out = self.decoder(z)
        return F.sigmoid(out) if self.output == "sigmoid" else out

    def forward(self, x):
        return self.decode(self.encode(x))

    def corrupt(self, x):
        """The input the encoder sees in the loss: x itself (the denoising model corrupts it, in
        evaluation too, since its loss is defined on corrupted inputs)."""
        return x

    def penalties(self, x_in, z):
        """{name: Omega term} added to the loss: none for the plain autoencoder."""
        return {}

    def reconstruction_loss(self, x, decoder_out):
        """L(x, g(f(.))) per sample: summed over pixels, averaged over the batch."""
        if self.reconstruction == "bce":
            return F.binary_cross_entropy_with_logits(decoder_out, x, reduction="batchmean")
        r = F.sigmoid(decoder_out) if self.output == "sigmoid" else decoder_out
        return F.mse_loss(r, x, reduction="batchmean")

    def loss(self, x):
        """(L + sum of penalties, {"recon": L, each penalty by name})."""
        x_in = self.corrupt(x)
        z = self.encode(x_in)
        recon = self.reconstruction_loss(x, self.decoder(z))
        penalties = self.penalties(x_in, z)
        total = recon
        for value in penalties.values():
            total = total + value
        return total, {"recon": recon, **penalties}


class LinearAutoencoder(Autoencoder):
    """z = W_e x + b_e, r = W_d z + b_d with squared error:
    its optimum spans PCA's top-k subspace."""

    def __init__(self, input_dim, code_dim):
        super().__init__(nn.Linear(input_dim, code_dim), nn.Linear(code_dim, input_dim),
                         reconstruction="mse", output="linear")


class SparseAutoencoder(Autoencoder):
    """Adds Omega(z) = l1 sum_i |z_i| per sample, and/or, with kl_target=(rho, beta), the sparsity
    target beta sum_j KL(rho || rho_hat_j), rho_hat_j the batch's mean activation of unit j
    (codes in (0, 1), e.g. a sigmoid code layer). With neither given, l1 = 1e-3."""

    def __init__(self, encoder, decoder, l1=None, kl_target=None, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        if l1 is None and kl_target is None:
            l1 = 1e-3  # neither asked for: the L1 penalty of the course, with a small lambda
        if l1 is not None and l1 < 0:
            raise ValueError(f"l1 must be non-negative, got {l1}")
        if kl_target is not None:
            rho, beta = kl_target
            if not 0 < rho < 1 or beta < 0:
                raise ValueError(f"kl_target (rho, beta) needs 0 < rho < 1 and beta >= 0, got "
                                 f"{kl_target}")
        self.l1 = l1
        self.kl_target = kl_target

    def penalties(self, x_in, z):
        terms = {}
        if self.l1:
            terms["l1"] = z.abs().sum(axis=1).mean() * self.l1  # lambda sum_i |z_i|, batch mean
        if self.kl_target is not None:
            rho, beta = self.kl_target
            rho_hat = z.mean(axis=0).clip(1e-6, 1 - 1e-6)
            # KL(rho || rho_hat) = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat))
            kl = rho * (rho / rho_hat).log() + (1 - rho) * ((1 - rho) / (1 - rho_hat)).log()
            terms["kl_sparsity"] = kl.sum() * beta
        return terms


class DenoisingAutoencoder(Autoencoder):
    """L(x, g(f(x~))): the encoder sees a corrupted x~, drawn afresh for every batch, and the loss
    compares the reconstruction with the clean x.

    noise: "gaussian" (x + level N(0, 1), clipped to [0, 1]), "masking" (a fraction `level` of the
    pixels set to 0) or "salt_pepper" (a fraction `level` set to 0 or 1 at random).
    """

    NOISES = ("gaussian", "masking", "salt_pepper")

    def __init__(self, encoder, decoder, noise="gaussian", level=0.5, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.noise = one_of(noise, self.NOISES, "noise")
        self.level = level

    def corrupt(self, x):
        return as_tensor(corrupt(x.data, self.noise, self.level))


def corrupt(x, noise, level, rng=None):
    """A corrupted copy of the array x (values in [0, 1]); DenoisingAutoencoder lists the kinds."""
    rng = generator() if rng is None else rng
    if level < 0 or (noise != "gaussian" and level > 1):
        raise ValueError(f"corrupt: {noise} noise needs a level in "
                         f"{'[0, inf)' if noise == 'gaussian' else '[0, 1]'}, got {level}")
    where = devices.device_of(x)  # the noise is drawn on the host and copied to x's device
    if noise == "gaussian":
        noisy = x + level * devices.to_device(rng.standard_normal(x.shape), where)
        return noisy.clip(0, 1).astype(x.dtype)
    hit = devices.to_device(rng.random(x.shape) < level, where)
    if noise == "masking":
        return (x * ~hit).astype(x.dtype)
    if noise == "salt_pepper":
        salt = devices.to_device(rng.random(x.shape) < 0.5, where)
        out = x.copy()
        out[hit] = salt[hit]
        return out
    raise ValueError(f"unknown noise {noise!r}")


class ContractiveAutoencoder(Autoencoder):
    """Adds Omega(x, z) = lam sum_i ||grad_x z_i||^2 = lam ||J||_F^2 (J = dz/dx), batch mean.

    penalty="exact": through higher-order autograd, one backward per code unit (any encoder).
    "closed_form": for a one-layer sigmoid encoder z = sigmoid(W x + b),
        ||J||_F^2 = sum_i (z_i (1 - z_i))^2 sum_j W_ij^2.
    "projection": the unbiased estimate E_v ||J^T v||^2 with v ~ N(0, I), n_projections draws (one
    backward each, whatever the code size).
    """

    PENALTIES = ("exact", "closed_form", "projection")

    def __init__(self, encoder, decoder, lam=0.1, penalty="exact", n_projections=1, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        one_of(penalty, self.PENALTIES, "penalty")
        if penalty == "closed_form":
            _sigmoid_layer_weight(encoder)  # fails early with a clear message
        self.lam = lam
        self.penalty = penalty
        self.n_projections = n_projections

    def jacobian_penalty(self, x):
        """||dz/dx||_F^2 per sample, (N,), by the chosen method (differentiable)."""
        with self._grad_for_penalty():
            x, z = self._encode_for_penalty(x)
            return self._penalty(x, z)

    def _grad_for_penalty(self):
        """Autograd penalties need dz/dx even when evaluating under no_grad."""
        return nullcontext() if self.penalty == "closed_form" else enable_grad()

    def _encode_for_penalty(self, x):
        """(x, z = encode(x)); for an autograd penalty x becomes a leaf that requires grad, so
        one forward pass serves both the reconstruction and dz/dx."""
        if self.penalty != "closed_form":
            x = x.detach().requires_grad_(True)
        return x, self.encode(x)

    def _penalty(self, x, z):
        """||dz/dx||_F^2 per sample from z = encode(x) computed by _encode_for_penalty."""
        if self.penalty == "closed_form":
            weight = _sigmoid_layer_weight(self.encoder)
            slope = z * (1 - z)  # sigmoid'(a) = z (1 - z)
            return (slope * slope) @ (weight * weight).sum(axis=1)
        total = None
        if self.penalty == "exact":
            for i in range(z.shape[1]):
                (g,) = grad(z[:, i].sum(), x, create_graph=True)  # row n: grad_x z_i of sample n
                term = (g * g).sum(axis=1)
                total = term if total is None else total + term
            return total
        for _ in range(self.n_projections):
            v = randn(*z.shape, dtype=z.dtype, device=z.device)
            (g,) = grad(z, x, grad_outputs=v, create_graph=True)  # J^T v per sample
            term = (g * g).sum(axis=1)
            total = term if total is None else total + term
        return total * (1.0 / self.n_projections)

    def loss(self, x):
        with self._grad_for_penalty():
            x_in, z = self._encode_for_penalty(x)
            contraction = self._penalty(x_in, z).mean() * self.lam
        recon = self.reconstruction_loss(x, self.decoder(z))
        return recon + contraction, {"recon": recon, "contraction": contraction}


def _sigmoid_layer_weight(encoder):
    """W of an encoder that is exactly Sequential(Linear, Sigmoid), else a clear error."""
    layers = list(encoder) if isinstance(encoder, nn.Sequential) else [encoder]
    if len(layers) != 2 or not isinstance(layers[0], nn.Linear) or not isinstance(layers[1],
                                                                                    nn.Sigmoid):
        raise ValueError(
            "penalty='closed_form' needs a one-layer sigmoid encoder, Sequential(Linear, Sigmoid); "
            "use penalty='exact' or 'projection' for other encoders"
        )
    return layers[0].weight


def mlp_autoencoder(input_dim=784, hidden=(512,), code_dim=32, reconstruction="bce"):
    """An MLP autoencoder input_dim -> hidden -> code_dim -> reversed hidden -> input_dim."""
    encoder = mlp([input_dim, *hidden, code_dim])
    decoder = mlp([code_dim, *reversed(hidden), input_dim])
    return Autoencoder(encoder, decoder, reconstruction)


def conv_encoder(code_dim=32, channels=(32, 64)):
    """(N, 784) -> Unflatten (1, 28, 28) -> two Conv2d(k4, s2, p1) + ReLU (28 -> 14 -> 7)
    -> code."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, c1, 4, 2, 1), nn.ReLU(),  # (N, c1, 14, 14)
        nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),  # (N, c2, 7, 7)
        nn.Flatten(), nn.Linear(c2 * 7 * 7, code_dim),
    )


def conv_decoder(code_dim=32, channels=(64, 32)):
    """code -> (c1, 7, 7) -> two ConvTranspose2d(k4, s2, p1) (7 -> 14 -> 28) -> (N, 784) logits."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Linear(code_dim, c1 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (c1, 7, 7)),
        nn.ConvTranspose2d(c1, c2, 4, 2, 1), nn.ReLU(),  # (N, c2, 14, 14)
        nn.ConvTranspose2d(c2, 1, 4, 2, 1),  # (N, 1, 28, 28)
        nn.Flatten(),
    )


def conv_autoencoder(code_dim=32, reconstruction="bce"):
    """The convolutional autoencoder: conv_encoder and conv_decoder (runs on every conv backend)."""
    return Autoencoder(conv_encoder(code_dim), conv_decoder(code_dim), reconstruction)
