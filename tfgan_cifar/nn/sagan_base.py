"""What SAGAN's two architectures share (`nn/resnet.py`, `nn/sagan_cnn.py`).

Both take the same constructor arguments and put self-attention (Zhang et al. 2019) after the
first stage of G and of D whose output has a resolution in `attention_res`. Their
discriminators end alike: global sum pooling of the last feature map, an SN linear layer and,
when conditional, the projection term <SN-embed(y), h> of Miyato & Koyama 2018, all three in
float32 whatever the dtype policy. Subclasses create their own layers and say what one stage
computes.
"""

from keras import ops

from tfgan_cifar.nn.base import Discriminator, Generator, projection
from tfgan_cifar.nn.initializers import initializer
from tfgan_cifar.nn.layers import ClassifierHead, SelfAttention, SNDense, SNEmbedding


def _attention_resolutions(requested, supported):
    """`requested` as a sorted tuple of distinct ints; ValueError for one outside `supported`
    (`TrainConfig.validate` says it in one line first)."""
    requested = tuple(sorted({int(r) for r in requested}))
    bad = [r for r in requested if r not in supported]
    if bad:
        raise ValueError(f"attention_res must be among {supported}, got {bad}")
    return requested


class AttentionGenerator(Generator):
    """z -> `stem` (4x4) -> three `stage`s (8, 16 and 32 pixels), each followed by
    self-attention when its resolution is in `attention_res` -> `to_images` ([-1, 1]).

    `call(..., return_attention=True)` also returns {resolution: attention weights [N,
    positions, positions / 4]}. `init` names the kernels' initialiser (`nn.initializers.INITIALIZERS`);
    the layers are spectrally normalised unless `spectral_norm=False`.
    """

    def __init__(self, supported, z_dim, width, num_classes, conditional, attention_res, sync_bn,
                 init, spectral_norm, **kwargs):
        attention_res = _attention_resolutions(attention_res, supported)
        super().__init__(
            dict(z_dim=z_dim, width=width, num_classes=num_classes, conditional=conditional,
                 attention_res=list(attention_res), sync_bn=sync_bn, init=init,
                 spectral_norm=spectral_norm),
            **kwargs,
        )
        self.z_dim, self.width, self.conditional, self.init = z_dim, width, conditional, init
        self.spectral_norm = spectral_norm
        self.attention_res = attention_res
        self.attention = [SelfAttention(spectral_norm=spectral_norm, init=init,
                                        name=f"attention{r}") for r in attention_res]

    def stem(self, z, training):
        """The 4x4 feature map G starts from."""
        raise NotImplementedError

    def stage(self, index, x, labels, training):
        """Stage `index` (0, 1, 2): doubles the resolution of `x`."""
        raise NotImplementedError

    def to_images(self, x, labels, training):
        """The 32x32 map of the last stage -> images in [-1, 1]."""
        raise NotImplementedError

    def call(self, z, labels=None, training=False, return_attention=False):
        labels = ops.cast(labels, "int32") if labels is not None else None
        maps, attention = {}, dict(zip(self.attention_res, self.attention))
        x = self.stem(z, training)
        for index in range(3):
            x = self.stage(index, x, labels, training)
            if x.shape[1] in attention:
                x, maps[x.shape[1]] = attention[x.shape[1]](
                    x, training=training, return_attention=True)
        images = self.to_images(x, labels, training)
        return (images, maps) if return_attention else images


class ProjectionDiscriminator(Discriminator):
    """Images -> `num_stages` `stage`s, self-attention after the first whose output has a
    resolution in `attention_res` -> `pooled` (h, `h_channels` wide) -> SN linear, plus the
    projection when conditional.

    The classifier head (`aux_classifier`, its hidden layer as wide as h) reads the output of
    stage `head_stage`, average-pooled. `init` names the kernels' initialiser.
    """

    def __init__(self, supported, num_stages, h_channels, head_stage, width, num_classes,
                 conditional, attention_res, aux_classifier, init, **kwargs):
        attention_res = _attention_resolutions(attention_res, supported)
        super().__init__(
            dict(width=width, num_classes=num_classes, conditional=conditional,
                 attention_res=list(attention_res), aux_classifier=aux_classifier, init=init),
            **kwargs,
        )
        self.width, self.conditional, self.init = width, conditional, init
        self.attention_res = attention_res
        self.num_stages, self.head_stage = num_stages, head_stage
        self.attention = [SelfAttention(init=init, name=f"attention{r}") for r in attention_res]
        # The end of D computes in float32 under any mixed policy (see `pooled`).
        self.head = SNDense(1, kernel_initializer=initializer(init), name="head", dtype="float32")
        self.label_embedding = (
            SNEmbedding(num_classes, h_channels, embeddings_initializer=initializer(init),
                        name="projection", dtype="float32")
            if conditional else None
        )
        self.classifier = (ClassifierHead(num_classes, h_channels, name="classifier")
                           if aux_classifier else None)

    def stage(self, index, x, training):
        """Stage `index` of the discriminator."""
        raise NotImplementedError

    def pooled(self, last_map):
        """h: the last feature map summed over its positions, in float32: in a half type the
        sum, the linear logit and the projection would lose the logit's small differences."""
        return ops.sum(ops.cast(last_map, "float32"), axis=(1, 2))

    def feature_maps(self, images, training=False):
        """The output of each stage (after the attention that follows it, if any)."""
        x, attention, maps = images, dict(zip(self.attention_res, self.attention)), []
        for index in range(self.num_stages):
            x = self.stage(index, x, training)
            if x.shape[1] in attention:
                x = attention.pop(x.shape[1])(x, training=training)
            maps.append(x)
        return maps

    def call(self, images, labels=None, training=False, return_class_logits=False):
        maps = self.feature_maps(images, training=training)
        h = self.pooled(maps[-1])
        logits = ops.squeeze(self.head(h, training=training), axis=-1)
        if self.conditional:
            logits = projection(logits, h, self.label_embedding,
                                ops.cast(labels, "int32"), training)
        return self.with_class_logits(logits, maps[self.head_stage], return_class_logits)
