"""The course's models, each with loss(x) -> (loss, metrics), which tinygen.train.fit trains."""
from .autoencoders import (  # noqa: F401
    Autoencoder,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    LinearAutoencoder,
    SparseAutoencoder,
    conv_autoencoder,
    conv_decoder,
    conv_encoder,
    corrupt,
    mlp,
    mlp_autoencoder,
)
from .gan import (  # noqa: F401
    GAN,
    dcgan,
    dcgan_discriminator,
    dcgan_generator,
    dcgan_init,
    gan_optimizers,
    mlp_discriminator,
    mlp_gan,
    mlp_generator,
)
from .vae import (  # noqa: F401
    VAE,
    add_attribute,
    attribute_vector,
    bits_per_dim,
    conv_vae,
    floored_logvar,
    iwae_bound,
    mlp_vae,
)
