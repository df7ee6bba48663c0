"""Model registry: build a (generator, discriminator) pair by name."""

from tfgan_cifar.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from tfgan_cifar.nn.sagan import SAGANDiscriminator, SAGANGenerator

MODELS = ("dcgan", "sagan")


def build_models(config):
    """Returns an unbuilt (generator, discriminator) pair for a resolved `TrainConfig`."""
    common = dict(width=config.width, num_classes=config.num_classes,
                  conditional=config.conditional)
    head = dict(aux_classifier=config.aux_classifier)
    sync = dict(sync_bn=config.sync_bn)
    if config.model == "dcgan":
        return (DCGANGenerator(z_dim=config.z_dim, name="generator", **common, **sync),
                DCGANDiscriminator(name="discriminator", norm=config.critic_norm, **common,
                                   **head, **sync))
    if config.model == "sagan":  # its D has no batch norm
        attention = dict(attention_res=config.attention_res)
        return (SAGANGenerator(z_dim=config.z_dim, name="generator", **common, **attention,
                               **sync),
                SAGANDiscriminator(name="discriminator", **common, **attention, **head))
    raise ValueError(f"unknown model {config.model!r}; choose one of {MODELS}")
