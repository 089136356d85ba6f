"""The course's models, each with loss(x) -> (loss, metrics) so that tinygen.train.fit can train it."""
from .autoencoders import Autoencoder, mlp, mlp_autoencoder  # noqa: F401
