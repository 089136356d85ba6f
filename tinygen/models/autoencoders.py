"""Autoencoders: an encoder f maps x to a code z = f(x), a decoder g maps it back, r = g(z).

Training minimises a reconstruction loss L(x, g(f(x))). With a code smaller than x (under-complete)
the network must keep what matters about x; the regularised variants of the course build on this
class.
"""
from .. import nn
from ..nn import functional as F


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
    """z = encoder(x), r = decoder(z); loss = L(x, r) summed over pixels, averaged over the batch.

    x: (N, D) pixels in [0, 1]. The decoder outputs logits; with reconstruction="bce" the loss is
    the Bernoulli cross-entropy computed from them (stable), with "mse" the squared error of
    sigmoid(logits). decode(z) returns pixel values in [0, 1].
    """

    def __init__(self, encoder, decoder, reconstruction="bce"):
        super().__init__()
        if reconstruction not in ("bce", "mse"):
            raise ValueError(f"reconstruction must be 'bce' or 'mse', got {reconstruction!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction = reconstruction

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return F.sigmoid(self.decoder(z))

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruction_loss(self, x, logits):
        """L(x, g(f(x))) per sample, summed over pixels and averaged over the batch."""
        if self.reconstruction == "bce":
            return F.binary_cross_entropy_with_logits(logits, x, reduction="batchmean")
        return F.mse_loss(F.sigmoid(logits), x, reduction="batchmean")

    def loss(self, x):
        """(loss, metrics): the reconstruction loss; metrics["recon"] is the same number."""
        recon = self.reconstruction_loss(x, self.decoder(self.encode(x)))
        return recon, {"recon": recon}


def mlp_autoencoder(input_dim=784, hidden=(512,), code_dim=32, reconstruction="bce"):
    """An MLP autoencoder input_dim -> hidden -> code_dim -> reversed hidden -> input_dim."""
    encoder = mlp([input_dim, *hidden, code_dim])
    decoder = mlp([code_dim, *reversed(hidden), input_dim])
    return Autoencoder(encoder, decoder, reconstruction)
