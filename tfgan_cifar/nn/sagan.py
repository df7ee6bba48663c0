"""Conditional Self-Attention GAN for 32x32 images.

Zhang, Goodfellow, Metaxas & Odena 2019, "Self-Attention Generative Adversarial Networks"
(arXiv:1805.08318): spectral normalisation in G and D, self-attention blocks, hinge loss and
two-timescale learning rates. Conditioning follows the paper: conditional batch norm in G
(de Vries et al. 2017) and a projection discriminator (Miyato & Koyama 2018). The backbone is
the DCGAN-style SN-GAN network for CIFAR-10, with attention at the resolutions given by
`attention_res` (16, 32 or both).
"""

import keras
from keras import layers, ops

from tfgan_cifar.nn.base import Discriminator, Generator, batch_norm, projection
from tfgan_cifar.nn.layers import (ClassifierHead, ConditionalBatchNorm, SelfAttention, SNConv2D,
                                   SNConv2DTranspose, SNDense, SNEmbedding)

ATTENTION_RESOLUTIONS = (16, 32)


def _check_attention_res(attention_res):
    attention_res = tuple(sorted({int(r) for r in attention_res}))
    bad = [r for r in attention_res if r not in ATTENTION_RESOLUTIONS]
    if bad:
        raise ValueError(f"attention_res must be among {ATTENTION_RESOLUTIONS}, got {bad}")
    return attention_res


@keras.saving.register_keras_serializable("tfgan_cifar")
class SAGANGenerator(Generator):
    """z -> SNDense -> 4x4x(8w) -> [cBN, ReLU, SN transposed conv] x 3 (+ attention) -> tanh."""

    def __init__(self, z_dim=128, width=64, num_classes=10, conditional=True,
                 attention_res=(16,), sync_bn=False, **kwargs):
        attention_res = _check_attention_res(attention_res)
        super().__init__(
            dict(z_dim=z_dim, width=width, num_classes=num_classes, conditional=conditional,
                 attention_res=list(attention_res), sync_bn=sync_bn),
            **kwargs,
        )
        self.z_dim, self.width, self.conditional = z_dim, width, conditional
        self.attention_res = attention_res

        def norm(name):
            if conditional:
                return ConditionalBatchNorm(num_classes, synchronized=sync_bn, name=name)
            return batch_norm(sync_bn, name=name)

        self.dense = SNDense(4 * 4 * 8 * width, name="dense")
        self.norms = [norm(f"bn{i}") for i in range(4)]
        self.deconvs = [
            SNConv2DTranspose(c, 4, strides=2, name=f"deconv{i}")
            for i, c in enumerate((4 * width, 2 * width, width))
        ]
        self.attention = [SelfAttention(name=f"attention{r}") for r in attention_res]
        self.to_rgb = SNConv2D(3, 3, name="to_rgb")

    def _norm(self, index, x, labels, training):
        if self.conditional:
            return self.norms[index](x, labels, training=training)
        return self.norms[index](x, training=training)

    def call(self, z, labels=None, training=False, return_attention=False):
        labels = ops.cast(labels, "int32") if labels is not None else None
        maps, attention = {}, dict(zip(self.attention_res, self.attention))
        x = ops.reshape(self.dense(z, training=training), (-1, 4, 4, 8 * self.width))
        for i, deconv in enumerate(self.deconvs):
            x = deconv(ops.relu(self._norm(i, x, labels, training)), training=training)
            resolution = x.shape[1]
            if resolution in attention:
                x, maps[resolution] = attention[resolution](
                    x, training=training, return_attention=True)
        x = ops.relu(self._norm(3, x, labels, training))
        images = ops.tanh(self.to_rgb(x, training=training))
        return (images, maps) if return_attention else images


@keras.saving.register_keras_serializable("tfgan_cifar")
class SAGANDiscriminator(Discriminator):
    """SN convolutions 32->16->8->4 (w, 2w, 4w, 8w) with attention, sum pooling, projection."""

    def __init__(self, width=64, num_classes=10, conditional=True, attention_res=(16,),
                 aux_classifier=False, **kwargs):
        attention_res = _check_attention_res(attention_res)
        super().__init__(
            dict(width=width, num_classes=num_classes, conditional=conditional,
                 attention_res=list(attention_res), aux_classifier=aux_classifier),
            **kwargs,
        )
        self.width, self.conditional = width, conditional
        self.attention_res = attention_res
        self.convs = [SNConv2D(width, 3, name="conv0")] + [
            SNConv2D(c, 4, strides=2, name=f"conv{i + 1}")
            for i, c in enumerate((2 * width, 4 * width, 8 * width))
        ]
        self.attention = [SelfAttention(name=f"attention{r}") for r in attention_res]
        self.head = SNDense(1, name="head")
        self.label_embedding = (
            SNEmbedding(num_classes, 8 * width, name="projection") if conditional else None
        )
        # On the third block's 8x8x(4w) map, average-pooled.
        self.classifier = (ClassifierHead(num_classes, 8 * width, name="classifier")
                           if aux_classifier else None)

    def feature_maps(self, images, training=False):
        """Yields the feature map after each convolution block (32, 16, 8 and 4 pixels)."""
        x, attention = images, dict(zip(self.attention_res, self.attention))
        for conv in self.convs:
            x = ops.leaky_relu(conv(x, training=training), negative_slope=0.1)
            if x.shape[1] in attention:
                x = attention[x.shape[1]](x, training=training)
            yield x

    def call(self, images, labels=None, training=False, return_class_logits=False):
        maps = list(self.feature_maps(images, training=training))
        h = ops.sum(maps[-1], axis=(1, 2))
        logits = ops.squeeze(self.head(h, training=training), axis=-1)
        if self.conditional:
            logits = projection(logits, h, self.label_embedding,
                                ops.cast(labels, "int32"), training)
        return self.with_class_logits(logits, maps[2], return_class_logits)
