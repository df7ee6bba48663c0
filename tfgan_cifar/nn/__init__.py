"""Model registry: build a (generator, discriminator) pair by name.

`--model=dcgan` has one network (`nn/dcgan.py`); `--model=sagan` has two, picked by `--arch`:
`resnet` (`nn/resnet.py`) and `cnn` (`nn/sagan_cnn.py`), both on the frame of `nn/sagan_base.py`.
"""

import collections

from tfgan_cifar import config as config_lib
from tfgan_cifar.nn import resnet, sagan_cnn
from tfgan_cifar.nn.dcgan import DCGANDiscriminator, DCGANGenerator

MODELS = config_lib.MODELS.names()

Architecture = collections.namedtuple("Architecture",
                                      ["generator", "discriminator", "attention_res"])
# SAGAN's networks by --arch, with the attention resolutions each takes.
ARCHITECTURES = {
    "resnet": Architecture(resnet.ResNetGenerator, resnet.ResNetDiscriminator,
                           resnet.ATTENTION_RESOLUTIONS),
    "cnn": Architecture(sagan_cnn.SAGANGenerator, sagan_cnn.SAGANDiscriminator,
                        sagan_cnn.ATTENTION_RESOLUTIONS),
}
# What --attention_res parses: the resolutions of any architecture (validate checks --arch's).
ATTENTION_RESOLUTIONS = tuple(sorted({r for a in ARCHITECTURES.values() for r in a.attention_res}))


def build_models(config):
    """Returns an unbuilt (generator, discriminator) pair for a resolved `TrainConfig`."""
    common = dict(width=config.width, num_classes=config.num_classes,
                  conditional=config.conditional, init=config.init)
    head = dict(aux_classifier=config.class_head)
    sync = dict(sync_bn=config.sync_bn)
    if config.model == "dcgan":
        return (DCGANGenerator(z_dim=config.z_dim, name="generator", **common, **sync),
                DCGANDiscriminator(name="discriminator", norm=config.critic_norm, **common,
                                   **head, **sync))
    if config.model == "sagan":  # its D has no batch norm
        arch = ARCHITECTURES[config.arch]
        attention = dict(attention_res=config.attention_res)
        return (arch.generator(z_dim=config.z_dim, name="generator",
                               spectral_norm=config.g_spectral_norm, **common, **attention,
                               **sync),
                arch.discriminator(name="discriminator", **common, **attention, **head))
    raise ValueError(f"unknown model {config.model!r}; choose one of {MODELS}")
