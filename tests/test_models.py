"""Shapes, dtypes and ranges of every generator and discriminator."""

import numpy as np
import pytest

from tfgan_cifar.config import TrainConfig
from tfgan_cifar.nn import build_models
from tfgan_cifar.nn.layers import ConditionalBatchNorm, SelfAttention

CASES = [
    ("dcgan", False, (16,)),
    ("dcgan", True, (16,)),
    ("sagan", True, (16,)),
    ("sagan", False, (16,)),
    ("sagan", True, (32,)),
    ("sagan", True, (16, 32)),
]


@pytest.mark.parametrize("model,conditional,attention_res", CASES)
def test_shapes_dtypes_and_ranges(model, conditional, attention_res):
    config = TrainConfig(model=model, conditional=conditional, width=8,
                         attention_res=attention_res).resolved()
    generator, discriminator = build_models(config)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, config.z_dim)).astype(np.float32) * 3
    labels = np.arange(5, dtype=np.int32)
    for training in (True, False):
        images = generator(z, labels, training=training).numpy()
        assert images.shape == (5, 32, 32, 3) and images.dtype == np.float32
        assert images.min() >= -1.0 and images.max() <= 1.0 and images.std() > 0
        logits = discriminator(images, labels, training=training).numpy()
        assert logits.shape == (5,) and logits.dtype == np.float32
        assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("conditional", [False, True])
def test_labels_matter_only_for_conditional_models(conditional):
    config = TrainConfig(model="sagan", conditional=conditional, width=8).resolved()
    generator, discriminator = build_models(config)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, config.z_dim)).astype(np.float32)
    images = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    zeros, threes = np.zeros(4, np.int32), np.full(4, 3, np.int32)
    generator(z, zeros)
    for layer in generator._flatten_layers():
        if isinstance(layer, ConditionalBatchNorm):  # starts as plain BN (scale 1, offset 0)
            layer.scale.embeddings.assign(rng.uniform(0.5, 1.5, layer.scale.embeddings.shape))
    g_changed = not np.allclose(generator(z, zeros).numpy(), generator(z, threes).numpy())
    d_changed = not np.allclose(discriminator(images, zeros).numpy(),
                                discriminator(images, threes).numpy())
    assert g_changed == conditional and d_changed == conditional


def test_attention_blocks_sit_at_the_requested_resolutions():
    config = TrainConfig(model="sagan", width=8, attention_res=(16, 32)).resolved()
    generator, discriminator = build_models(config)
    z = np.zeros((2, config.z_dim), np.float32)
    _, maps = generator(z, np.zeros(2, np.int32), return_attention=True)
    assert {r: tuple(m.shape) for r, m in maps.items()} == {
        16: (2, 256, 256), 32: (2, 1024, 1024)}
    discriminator(np.zeros((2, 32, 32, 3), np.float32), np.zeros(2, np.int32))
    names = sorted(layer.name for model in (generator, discriminator)
                   for layer in model._flatten_layers() if isinstance(layer, SelfAttention))
    assert names == ["attention16", "attention16", "attention32", "attention32"]


def test_dcgan_generator_starts_at_4x4x128_by_default():
    config = TrainConfig(model="dcgan").resolved()
    generator, _ = build_models(config)
    generator.build_weights()
    assert generator.dense.kernel.shape == (100, 4 * 4 * 128)
