"""The course's models, each with loss(x) -> (loss, metrics) so that tinygen.train.fit can train it."""
from .autoencoders import (  # noqa: F401
    Autoencoder, ContractiveAutoencoder, DenoisingAutoencoder, LinearAutoencoder, SparseAutoencoder,
    conv_autoencoder, conv_decoder, conv_encoder, corrupt, mlp, mlp_autoencoder,
)
from .vae import VAE, add_attribute, attribute_vector, conv_vae, iwae_bound, mlp_vae  # noqa: F401
