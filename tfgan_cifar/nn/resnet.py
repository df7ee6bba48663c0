"""The CIFAR-10 ResNets of SNGAN, SAGAN and BigGAN (`--model=sagan --arch=resnet`, the default).

Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks"
(arXiv:1802.05957), with the conditioning of Miyato & Koyama 2018, "cGANs with
Projection Discriminator" (arXiv:1802.05637): conditional batch norm in G and an SN-embedding
projection in D. Zhang et al. 2019 (SAGAN) and Brock et al. 2019 (BigGAN) measured CIFAR-10 on
the same networks. Spectral normalisation is in every convolution and dense layer of D, and of
G unless `spectral_norm=False` (SNGAN-projection's G is plain).

Channels scale with the width w: G has 4w (256 at the default w = 64), D 2w (128). At those
widths, conditional on 10 classes, G has about 4.3M trainable parameters and D about 1.06M
(its projection embedding included), self-attention left out.

Self-attention goes after the first block of G and of D whose output has a resolution in
`attention_res`: G's blocks output 8, 16 and 32 pixels, D's 16, 8, 8 and 8, so both have a
block at 8 and 16 (`ATTENTION_RESOLUTIONS`); none (SNGAN) is allowed. Attention at 16 is
StudioGAN's SAGAN-CIFAR: after G's 16x16 block and D's first block.
"""

import keras
from keras import ops

from tfgan_cifar.nn.base import batch_norm
from tfgan_cifar.nn.initializers import initializer
from tfgan_cifar.nn.sagan_base import AttentionGenerator, ProjectionDiscriminator
from tfgan_cifar.nn.layers import ConditionalBatchNorm, conv2d, dense

ATTENTION_RESOLUTIONS = (8, 16)


def _upsample(x):
    """Nearest-neighbour upsampling by 2 of an NHWC map."""
    return ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x):
    """2x2 average pooling of an NHWC map."""
    return ops.average_pool(x, 2, strides=2, padding="valid")


def _channels_only(channels):
    return (None, None, None, channels)


def _conv(channels, size, init, name, policy, spectral_norm=True):
    """A convolution of `channels` filters of `size` x `size`, initialised by `init`, SN unless
    `spectral_norm=False`."""
    return conv2d(channels, size, spectral_norm=spectral_norm,
                  kernel_initializer=initializer(init), name=name, dtype=policy)


@keras.saving.register_keras_serializable("tfgan_cifar")
class UpBlock(keras.layers.Layer):
    """G's residual block, doubling the resolution: (c)BN, ReLU, nearest x2, SN conv 3x3,
    (c)BN, ReLU, SN conv 3x3; shortcut nearest x2 then SN conv 1x1.

    Conditional (`num_classes` given) its batch norms are `ConditionalBatchNorm`, called with
    the labels; else plain batch norm (`synchronized` as `--sync_bn`). `init` names the
    convolutions' initialiser; they are plain with `spectral_norm=False`.
    """

    def __init__(self, channels, num_classes=None, synchronized=False, init="glorot",
                 spectral_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.num_classes, self.synchronized = channels, num_classes, synchronized
        self.init, self.spectral_norm = init, spectral_norm
        policy = self.dtype_policy

        def norm(name):
            if num_classes:
                return ConditionalBatchNorm(num_classes, synchronized=synchronized, name=name,
                                            dtype=policy)
            return batch_norm(synchronized, name=name, dtype=policy)

        self.norm1, self.norm2 = norm("bn1"), norm("bn2")
        self.conv1 = _conv(channels, 3, init, "conv1", policy, spectral_norm)
        self.conv2 = _conv(channels, 3, init, "conv2", policy, spectral_norm)
        self.shortcut = _conv(channels, 1, init, "shortcut", policy, spectral_norm)

    def build(self, input_shape):
        inputs, outputs = _channels_only(input_shape[-1]), _channels_only(self.channels)
        self.norm1.build(inputs)
        self.conv1.build(inputs)
        self.norm2.build(outputs)
        self.conv2.build(outputs)
        self.shortcut.build(inputs)

    def _norm(self, norm, x, labels, training):
        if self.num_classes:
            return norm(x, labels, training=training)
        return norm(x, training=training)

    def call(self, x, labels=None, training=False):
        h = _upsample(ops.relu(self._norm(self.norm1, x, labels, training)))
        h = self.conv1(h, training=training)
        h = ops.relu(self._norm(self.norm2, h, labels, training))
        h = self.conv2(h, training=training)
        return h + self.shortcut(_upsample(x), training=training)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "num_classes": self.num_classes, "synchronized": self.synchronized,
                "init": self.init, "spectral_norm": self.spectral_norm}


@keras.saving.register_keras_serializable("tfgan_cifar")
class DownBlock(keras.layers.Layer):
    """D's residual block.

    `optimized` (the first block, on the images): SN conv 3x3, ReLU, SN conv 3x3, avgpool 2;
    shortcut avgpool 2 then SN conv 1x1. Otherwise: ReLU, SN conv 3x3, ReLU, SN conv 3x3, then
    avgpool 2 if `downsample`; the shortcut is SN conv 1x1 (then avgpool 2) where the channels
    or the resolution change, else the identity. `init` names the convolutions' initialiser.
    """

    def __init__(self, channels, downsample=True, optimized=False, init="glorot", **kwargs):
        super().__init__(**kwargs)
        self.channels, self.downsample, self.optimized = channels, downsample, optimized
        self.init = init
        policy = self.dtype_policy
        self.conv1 = _conv(channels, 3, init, "conv1", policy)
        self.conv2 = _conv(channels, 3, init, "conv2", policy)
        self.shortcut = None

    def build(self, input_shape):
        inputs = _channels_only(input_shape[-1])
        self.conv1.build(inputs)
        self.conv2.build(_channels_only(self.channels))
        if self.optimized or self.downsample or input_shape[-1] != self.channels:
            self.shortcut = _conv(self.channels, 1, self.init, "shortcut", self.dtype_policy)
            self.shortcut.build(inputs)

    def call(self, x, training=False):
        h = x if self.optimized else ops.relu(x)
        h = self.conv2(ops.relu(self.conv1(h, training=training)), training=training)
        if self.downsample:
            h = _downsample(h)
        if self.optimized:
            return h + self.shortcut(_downsample(x), training=training)
        if self.shortcut is None:
            return h + x
        skip = self.shortcut(x, training=training)
        return h + (_downsample(skip) if self.downsample else skip)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "downsample": self.downsample, "optimized": self.optimized, "init": self.init}


@keras.saving.register_keras_serializable("tfgan_cifar")
class ResNetGenerator(AttentionGenerator):
    """z -> SN dense -> 4x4x(4w) -> three `UpBlock`s (8, 16, 32 pixels; attention after those in
    `attention_res`) -> BN, ReLU, SN conv 3x3 -> tanh.

    The blocks' batch norms are conditional when `conditional`; the last one is plain, as in
    SNGAN-projection.
    """

    def __init__(self, z_dim=128, width=64, num_classes=10, conditional=True,
                 attention_res=(16,), sync_bn=False, init="orthogonal", spectral_norm=True,
                 **kwargs):
        super().__init__(supported=ATTENTION_RESOLUTIONS, z_dim=z_dim, width=width,
                         num_classes=num_classes, conditional=conditional,
                         attention_res=attention_res, sync_bn=sync_bn, init=init,
                         spectral_norm=spectral_norm, **kwargs)
        self.channels = 4 * width
        self.dense = dense(4 * 4 * self.channels, spectral_norm=spectral_norm,
                           kernel_initializer=initializer(init), name="dense")
        self.blocks = [UpBlock(self.channels, num_classes if conditional else None,
                               synchronized=sync_bn, init=init, spectral_norm=spectral_norm,
                               name=f"block{i}")
                       for i in range(3)]
        self.norm = batch_norm(sync_bn, name="bn")
        self.to_rgb = _conv(3, 3, init, "to_rgb", None, spectral_norm)

    def stem(self, z, training):
        return ops.reshape(self.dense(z, training=training), (-1, 4, 4, self.channels))

    def stage(self, index, x, labels, training):
        return self.blocks[index](x, labels, training=training)

    def to_images(self, x, labels, training):
        x = ops.relu(self.norm(x, training=training))
        return ops.tanh(self.to_rgb(x, training=training))


@keras.saving.register_keras_serializable("tfgan_cifar")
class ResNetDiscriminator(ProjectionDiscriminator):
    """An optimised `DownBlock` (32 -> 16 pixels), a `DownBlock` to 8x8, two at 8x8 (all 2w
    channels; attention after the first block whose output is at a resolution in
    `attention_res`) -> ReLU, global sum pooling -> SN linear, plus the projection
    <SN-embed(y), h> when conditional.

    The classifier head (`aux_classifier`) reads the third block's 8x8x2w output,
    average-pooled.
    """

    def __init__(self, width=64, num_classes=10, conditional=True, attention_res=(16,),
                 aux_classifier=False, init="orthogonal", **kwargs):
        channels = 2 * width
        super().__init__(supported=ATTENTION_RESOLUTIONS, num_stages=4, h_channels=channels,
                         head_stage=2, width=width, num_classes=num_classes,
                         conditional=conditional, attention_res=attention_res,
                         aux_classifier=aux_classifier, init=init, **kwargs)
        self.blocks = [DownBlock(channels, optimized=True, init=init, name="block0"),
                       DownBlock(channels, init=init, name="block1"),
                       DownBlock(channels, downsample=False, init=init, name="block2"),
                       DownBlock(channels, downsample=False, init=init, name="block3")]

    def stage(self, index, x, training):
        return self.blocks[index](x, training=training)

    def pooled(self, last_map):
        return super().pooled(ops.relu(ops.cast(last_map, "float32")))
