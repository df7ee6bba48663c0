"""SAGAN with SNGAN's standard CNNs for 32x32 images (`--model=sagan --arch=cnn`).

Zhang, Goodfellow, Metaxas & Odena 2019, "Self-Attention Generative Adversarial Networks"
(arXiv:1805.08318): spectral normalisation in G and D, self-attention blocks, hinge loss and
two-timescale learning rates. Conditioning follows the paper: conditional batch norm in G
(de Vries et al. 2017) and a projection discriminator (Miyato & Koyama 2018). The backbones are
the "standard CNN" networks for CIFAR-10 of Miyato et al. 2018, "Spectral Normalization for
Generative Adversarial Networks" (arXiv:1802.05957), with width w = 64 giving the paper's
channels. Self-attention goes after the first layer of G and of D whose output has a
resolution in `attention_res` (8, 16, 32, several, or none). The ResNet networks of
`--arch=resnet` are in `nn/resnet.py`.
"""

import keras
from keras import ops

from tfgan_cifar.nn.base import batch_norm, leaky_relu
from tfgan_cifar.nn.initializers import initializer
from tfgan_cifar.nn.sagan_base import AttentionGenerator, ProjectionDiscriminator
from tfgan_cifar.nn.layers import ConditionalBatchNorm, SNConv2D, conv2d, conv2d_transpose, dense

ATTENTION_RESOLUTIONS = (8, 16, 32)

# The discriminator's convolutions (channels in units of w, kernel size, stride), SNGAN's
# standard CNN: 32x32 -> 16x16 -> 8x8 -> 4x4.
D_LAYERS = ((1, 3, 1), (1, 4, 2), (2, 3, 1), (2, 4, 2), (4, 3, 1), (4, 4, 2), (8, 3, 1))


@keras.saving.register_keras_serializable("tfgan_cifar")
class SAGANGenerator(AttentionGenerator):
    """z -> SNDense -> 4x4x(8w) -> [cBN, ReLU, SN transposed conv 4x4/2] x 3 (4w, 2w, w
    channels at 8, 16, 32 pixels; attention after those in `attention_res`) -> cBN, ReLU,
    SN conv 3x3 -> tanh. Unconditional, plain batch norm replaces the cBN. With
    `spectral_norm=False` the dense layer and convolutions are plain."""

    def __init__(self, z_dim=128, width=64, num_classes=10, conditional=True,
                 attention_res=(16,), sync_bn=False, init="orthogonal", spectral_norm=True,
                 **kwargs):
        super().__init__(supported=ATTENTION_RESOLUTIONS, z_dim=z_dim, width=width,
                         num_classes=num_classes, conditional=conditional,
                         attention_res=attention_res, sync_bn=sync_bn, init=init,
                         spectral_norm=spectral_norm, **kwargs)

        def norm(name):
            if conditional:
                return ConditionalBatchNorm(num_classes, synchronized=sync_bn, name=name)
            return batch_norm(sync_bn, name=name)

        self.dense = dense(4 * 4 * 8 * width, spectral_norm=spectral_norm,
                           kernel_initializer=initializer(init), name="dense")
        self.norms = [norm(f"bn{i}") for i in range(4)]
        self.deconvs = [
            conv2d_transpose(c, 4, strides=2, spectral_norm=spectral_norm,
                             kernel_initializer=initializer(init), name=f"deconv{i}")
            for i, c in enumerate((4 * width, 2 * width, width))
        ]
        self.to_rgb = conv2d(3, 3, spectral_norm=spectral_norm,
                             kernel_initializer=initializer(init), name="to_rgb")

    def _norm(self, index, x, labels, training):
        if self.conditional:
            return self.norms[index](x, labels, training=training)
        return self.norms[index](x, training=training)

    def stem(self, z, training):
        return ops.reshape(self.dense(z, training=training), (-1, 4, 4, 8 * self.width))

    def stage(self, index, x, labels, training):
        return self.deconvs[index](ops.relu(self._norm(index, x, labels, training)),
                                   training=training)

    def to_images(self, x, labels, training):
        x = ops.relu(self._norm(3, x, labels, training))
        return ops.tanh(self.to_rgb(x, training=training))


@keras.saving.register_keras_serializable("tfgan_cifar")
class SAGANDiscriminator(ProjectionDiscriminator):
    """SNGAN's standard CNN: seven SN convolutions (`D_LAYERS`: 3x3 w, 4x4/2 w, 3x3 2w, 4x4/2
    2w, 3x3 4w, 4x4/2 4w, 3x3 8w), each followed by LeakyReLU 0.1; global sum pooling, SN
    linear, plus the projection <SN-embed(y), h> when conditional.

    Self-attention follows the first convolution whose output has a resolution in
    `attention_res`: 32 after the first, 16 after the second (w channels), 8 after the fourth
    (2w channels). The classifier head (`aux_classifier`) reads the 8x8x4w output of the fifth
    convolution, average-pooled.
    """

    def __init__(self, width=64, num_classes=10, conditional=True, attention_res=(16,),
                 aux_classifier=False, init="orthogonal", **kwargs):
        super().__init__(supported=ATTENTION_RESOLUTIONS, num_stages=len(D_LAYERS),
                         h_channels=8 * width, head_stage=4, width=width,
                         num_classes=num_classes, conditional=conditional,
                         attention_res=attention_res, aux_classifier=aux_classifier, init=init,
                         **kwargs)
        self.convs = [SNConv2D(c * width, k, strides=s, kernel_initializer=initializer(init),
                               name=f"conv{i}")
                      for i, (c, k, s) in enumerate(D_LAYERS)]

    def stage(self, index, x, training):
        return leaky_relu(self.convs[index](x, training=training), negative_slope=0.1)
