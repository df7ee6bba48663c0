"""DCGAN for 32x32 images.

Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks" (arXiv:1511.06434). Unconditional by default; with
`conditional=True` G concatenates a label embedding to z and D adds a projection term; with
`aux_classifier=True` D also predicts the class from its third convolution block. Under the
gradient penalty D normalises with layer norm (`norm="layer"`), as the WGAN-GP critic does.
"""

import keras
from keras import layers, ops

from tfgan_cifar.nn.base import Discriminator, Generator, batch_norm, leaky_relu, projection
from tfgan_cifar.nn.initializers import initializer
from tfgan_cifar.nn.layers import ClassifierHead

NORMS = ("batch", "layer")


@keras.saving.register_keras_serializable("tfgan_cifar")
class DCGANGenerator(Generator):
    """z -> Dense -> 4x4x(4w) -> transposed convolutions -> 32x32x3 tanh. `init` names the
    kernels' initialiser (default: N(0, 0.02), the DCGAN paper's)."""

    def __init__(self, z_dim=100, width=32, num_classes=10, conditional=False, sync_bn=False,
                 init="normal", **kwargs):
        super().__init__(
            dict(z_dim=z_dim, width=width, num_classes=num_classes, conditional=conditional,
                 sync_bn=sync_bn, init=init),
            **kwargs,
        )
        self.z_dim, self.width, self.conditional = z_dim, width, conditional
        self.label_embedding = layers.Embedding(num_classes, z_dim) if conditional else None
        self.dense = layers.Dense(4 * 4 * 4 * width, use_bias=False,
                                  kernel_initializer=initializer(init))
        self.norms = [batch_norm(sync_bn) for _ in range(3)]
        self.deconvs = [
            layers.Conv2DTranspose(c, 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=initializer(init))
            for c in (2 * width, width)
        ]
        self.to_rgb = layers.Conv2DTranspose(3, 4, strides=2, padding="same",
                                             kernel_initializer=initializer(init))

    def call(self, z, labels=None, training=False):
        if self.conditional:
            z = ops.concatenate([z, self.label_embedding(ops.cast(labels, "int32"))], axis=-1)
        x = ops.reshape(self.dense(z), (-1, 4, 4, 4 * self.width))
        x = ops.relu(self.norms[0](x, training=training))
        for deconv, norm in zip(self.deconvs, self.norms[1:]):
            x = ops.relu(norm(deconv(x), training=training))
        return ops.tanh(self.to_rgb(x))


@keras.saving.register_keras_serializable("tfgan_cifar")
class DCGANDiscriminator(Discriminator):
    """Strided convolutions (2w, 4w, 8w channels) with LeakyReLU and batch norm (or layer
    norm: `norm="layer"`) -> one logit. `init` names the kernels' initialiser."""

    def __init__(self, width=32, num_classes=10, conditional=False, aux_classifier=False,
                 sync_bn=False, norm="batch", init="normal", **kwargs):
        super().__init__(dict(width=width, num_classes=num_classes, conditional=conditional,
                              aux_classifier=aux_classifier, sync_bn=sync_bn, norm=norm,
                              init=init),
                         **kwargs)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.width, self.conditional = width, conditional
        self.convs = [
            layers.Conv2D(c, 4, strides=2, padding="same", kernel_initializer=initializer(init))
            for c in (2 * width, 4 * width, 8 * width)
        ]
        self.norms = [None] + [
            batch_norm(sync_bn) if norm == "batch"
            else layers.LayerNormalization(axis=(1, 2, 3), epsilon=1e-5)  # per image, as WGAN-GP
            for _ in range(2)]
        self.flatten = layers.Flatten()
        # The logit and the projection compute in float32 under any mixed policy.
        self.head = layers.Dense(1, kernel_initializer=initializer(init), dtype="float32")
        self.label_embedding = (
            layers.Embedding(num_classes, 4 * 4 * 8 * width, dtype="float32")
            if conditional else None
        )
        self.classifier = (ClassifierHead(num_classes, 8 * width, name="classifier")
                           if aux_classifier else None)

    def features(self, images, training=False):
        """Flattened output of the third convolution block."""
        x = images
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x)
            if norm is not None:
                x = norm(x, training=training)
            x = leaky_relu(x, negative_slope=0.2)
        return self.flatten(x)

    def call(self, images, labels=None, training=False, return_class_logits=False):
        h = self.features(images, training=training)
        logits = ops.squeeze(self.head(ops.cast(h, "float32")), axis=-1)
        if self.conditional:
            logits = projection(logits, h, self.label_embedding,
                                ops.cast(labels, "int32"), training)
        return self.with_class_logits(logits, h, return_class_logits)
