"""Layers written for the GANs: spectral normalisation, self-attention, conditional BN and
the discriminator's auxiliary classification head.

Spectral normalisation follows Miyato et al. 2018, "Spectral Normalization for Generative
Adversarial Networks": the kernel W is the trainable variable, a non-trainable vector u holds
the power-iteration state (updated only in training, no gradient through it), and the forward
pass uses W / sigma(W) with gradients flowing through sigma. Keras's own
`keras.layers.SpectralNormalization` instead overwrites the kernel in place, so it is not used.

Self-attention follows Zhang et al. 2019, "Self-Attention Generative Adversarial Networks", in
the form of their code and of BigGAN's and StudioGAN's (pooled keys and values, an output
convolution).

Everything here uses `keras.ops` only, so it runs on every Keras backend. Under a
mixed-precision policy the spectral norm (power iteration and sigma) and the attention softmax
are computed in float32; the convolutions and matmuls run in the layer's compute dtype.
"""

import keras
from keras import ops

from tfgan_cifar.nn.base import leaky_relu, nested_layers, synchronizable
from tfgan_cifar.nn.initializers import initializer

_SERIALIZABLE = "tfgan_cifar"


def _l2_normalize(x, epsilon=1e-12):
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x)), epsilon))


def power_iteration(matrix, u, iterations):
    """(u, v) after `iterations` power iterations on `matrix` [in, out] from u [1, out]: the
    right and left singular vectors of its largest singular value, v W u^T."""
    u = _l2_normalize(u)
    v = _l2_normalize(ops.matmul(u, ops.transpose(matrix)))
    for _ in range(iterations):
        u = _l2_normalize(ops.matmul(v, matrix))
        v = _l2_normalize(ops.matmul(u, ops.transpose(matrix)))
    return u, v


def with_own_spectral_vectors(model, trainable, non_trainable, iterations):
    """`non_trainable` (values of `model.non_trainable_variables`) with the vector u of every
    spectral-norm layer advanced by `iterations` power iterations on that layer's kernel in
    `trainable` (values of `model.trainable_variables`); pure.

    Weights that were not trained in `model` (an EMA of G's) otherwise keep the u of the
    weights that were, and sigma would be theirs.
    """
    kernels = {id(v): i for i, v in enumerate(model.trainable_variables)}
    vectors = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    non_trainable = list(non_trainable)
    for layer in nested_layers(model):
        if isinstance(layer, _SpectralNorm):
            kernel = trainable[kernels[id(layer.kernel)]]
            matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
            index = vectors[id(layer.u)]
            # A loop op, not `iterations` copies of the step in the compiled graph.
            non_trainable[index] = ops.fori_loop(
                0, iterations, lambda _, u, m=matrix: power_iteration(m, u, 1)[0],
                _l2_normalize(non_trainable[index]))
    return non_trainable


class _SpectralNorm(keras.layers.Layer):
    """Base class: holds the power-iteration vector u and normalises `self.kernel`.

    The kernel is viewed as the matrix `reshape(kernel, [-1, kernel.shape[-1]])`; its largest
    singular value is sigma(W).
    """

    def __init__(self, power_iterations=1, **kwargs):
        super().__init__(**kwargs)
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}")
        self.power_iterations = power_iterations

    def _build_spectral_state(self):
        self.u = self.add_weight(
            name="sn_u",
            shape=(1, self.kernel.shape[-1]),
            initializer=keras.initializers.RandomNormal(),
            trainable=False,
            autocast=False,
        )

    def kernel_matrix(self):
        """The kernel as the 2-D matrix whose spectral norm is taken."""
        return ops.reshape(self.kernel, (-1, self.kernel.shape[-1]))

    def normalized_kernel(self, training=False):
        """Returns W / sigma(W) in the compute dtype; in training also advances and stores u.

        The kernel is created with `autocast=False`, so W, u and sigma are float32 here.
        """
        w = self.kernel_matrix()
        u, v = power_iteration(w, self.u, self.power_iterations if training else 0)
        if training:
            self.u.assign(u)
        u = ops.stop_gradient(u)
        v = ops.stop_gradient(v)
        sigma = ops.sum(ops.matmul(v, w) * u)
        return ops.cast(self.kernel / sigma, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class SNDense(_SpectralNorm):
    """Dense layer with a spectrally normalised kernel."""

    def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
            autocast=False,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
            if self.use_bias
            else None
        )
        self._build_spectral_state()

    def call(self, inputs, training=False):
        outputs = ops.matmul(inputs, self.normalized_kernel(training))
        return outputs + self.bias if self.use_bias else outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


class _SNConvBase(_SpectralNorm):
    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="same",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (
            kernel_size, kernel_size)
        self.strides = tuple(strides) if isinstance(strides, (list, tuple)) else (strides, strides)
        self.padding = padding
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _kernel_shape(self, in_channels):
        raise NotImplementedError

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=self._kernel_shape(input_shape[-1]),
            initializer=self.kernel_initializer,
            autocast=False,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
            if self.use_bias
            else None
        )
        self._build_spectral_state()

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class SNConv2D(_SNConvBase):
    """2-D convolution (NHWC) with a spectrally normalised kernel (kh, kw, in, out)."""

    def _kernel_shape(self, in_channels):
        return (*self.kernel_size, in_channels, self.filters)

    def call(self, inputs, training=False):
        outputs = ops.conv(
            inputs, self.normalized_kernel(training), strides=self.strides, padding=self.padding
        )
        return outputs + self.bias if self.use_bias else outputs


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class SNConv2DTranspose(_SNConvBase):
    """Transposed 2-D convolution (NHWC) with a spectrally normalised kernel (kh, kw, out, in)."""

    def _kernel_shape(self, in_channels):
        return (*self.kernel_size, self.filters, in_channels)

    def call(self, inputs, training=False):
        outputs = ops.conv_transpose(
            inputs, self.normalized_kernel(training), strides=self.strides, padding=self.padding
        )
        return outputs + self.bias if self.use_bias else outputs


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class SNEmbedding(_SpectralNorm):
    """Embedding with a spectrally normalised table; int labels in, float vectors out."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            autocast=False,
        )
        self._build_spectral_state()

    def call(self, labels, training=False):
        return ops.take(self.normalized_kernel(training), ops.cast(labels, "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }


def dense(units, spectral_norm=True, **kwargs):
    """An `SNDense`, or Keras's plain `Dense` with `spectral_norm=False`."""
    return (SNDense if spectral_norm else keras.layers.Dense)(units, **kwargs)


def conv2d(filters, kernel_size, spectral_norm=True, padding="same", **kwargs):
    """An `SNConv2D`, or Keras's plain `Conv2D` with `spectral_norm=False`."""
    layer = SNConv2D if spectral_norm else keras.layers.Conv2D
    return layer(filters, kernel_size, padding=padding, **kwargs)


def conv2d_transpose(filters, kernel_size, spectral_norm=True, padding="same", **kwargs):
    """An `SNConv2DTranspose`, or Keras's plain `Conv2DTranspose` with `spectral_norm=False`."""
    layer = SNConv2DTranspose if spectral_norm else keras.layers.Conv2DTranspose
    return layer(filters, kernel_size, padding=padding, **kwargs)


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class SelfAttention(keras.layers.Layer):
    """SAGAN self-attention over the positions of an NHWC feature map of C channels, as in
    SAGAN's, BigGAN's and StudioGAN's code.

    f (queries), g (keys) and h (values) are 1x1 convolutions of C/8, C/8 and C/2 channels;
    g's and h's outputs are 2x2 max-pooled, so the N positions attend over N/4 keys. Query
    position i attends with weights softmax_j(f(x)_i . g(x)_j); o_i = sum_j attention[i, j]
    h(x)_j goes back to C channels through a fourth 1x1 convolution, and the output is
    gamma * out(o) + x, with the gain gamma starting at 0. The convolutions have no bias and
    are spectrally normalised unless `spectral_norm=False`; `init` names their initialiser
    (`nn.initializers.INITIALIZERS`).
    """

    def __init__(self, spectral_norm=True, init="glorot", **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm, self.init = spectral_norm, init

    def build(self, input_shape):
        channels = input_shape[-1]
        policy = self.dtype_policy  # sublayers compute like this layer, whatever the global one

        def conv(filters, name):
            return conv2d(filters, 1, spectral_norm=self.spectral_norm, use_bias=False,
                          name=name, dtype=policy, kernel_initializer=initializer(self.init))

        self.f = conv(max(1, channels // 8), "f")
        self.g = conv(max(1, channels // 8), "g")
        self.h = conv(max(1, channels // 2), "h")
        self.out = conv(channels, "out")
        for layer in (self.f, self.g, self.h):
            layer.build(input_shape)
        self.out.build((*input_shape[:-1], self.h.filters))
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

    def call(self, inputs, training=False, return_attention=False):
        batch, height, width, channels = ops.shape(inputs)

        def flat(t):
            return ops.reshape(t, (batch, -1, t.shape[-1]))

        def pooled(t):
            return ops.max_pool(t, pool_size=2, strides=2, padding="valid")

        f = flat(self.f(inputs, training=training))
        g = flat(pooled(self.g(inputs, training=training)))
        h = flat(pooled(self.h(inputs, training=training)))
        scores = ops.cast(ops.matmul(f, ops.transpose(g, (0, 2, 1))), "float32")
        attention = ops.softmax(scores, axis=-1)
        o = ops.matmul(ops.cast(attention, h.dtype), h)
        o = self.out(ops.reshape(o, (batch, height, width, h.shape[-1])), training=training)
        outputs = self.gamma * o + inputs
        return (outputs, attention) if return_attention else outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "spectral_norm": self.spectral_norm, "init": self.init}


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class ConditionalBatchNorm(keras.layers.Layer):
    """Batch normalisation whose scale and offset are looked up per class label."""

    def __init__(self, num_classes, momentum=0.9, epsilon=1e-5, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.momentum = momentum
        self.epsilon = epsilon
        self.synchronized = synchronized

    def build(self, input_shape):
        channels = input_shape[-1]
        self.norm = keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, center=False, scale=False,
            synchronized=synchronizable(self.synchronized), name="bn", dtype=self.dtype_policy
        )
        self.norm.build(input_shape)
        self.scale = keras.layers.Embedding(
            self.num_classes, channels, embeddings_initializer="ones", name="scale",
            dtype=self.dtype_policy
        )
        self.offset = keras.layers.Embedding(
            self.num_classes, channels, embeddings_initializer="zeros", name="offset",
            dtype=self.dtype_policy
        )
        self.scale.build((None,))
        self.offset.build((None,))

    def call(self, inputs, labels, training=False):
        labels = ops.cast(labels, "int32")
        scale = ops.reshape(self.scale(labels), (-1, 1, 1, inputs.shape[-1]))
        offset = ops.reshape(self.offset(labels), (-1, 1, 1, inputs.shape[-1]))
        return self.norm(inputs, training=training) * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "synchronized": self.synchronized,
        }


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class ClassifierHead(keras.layers.Layer):
    """Two fully connected layers from a feature map to class logits (multi-task D).

    A 4-D input (N, H, W, C) is average-pooled over space first; a 2-D one is used as is.
    """

    def __init__(self, num_classes, hidden, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.hidden = num_classes, hidden
        self.hidden_layer = keras.layers.Dense(hidden, name="hidden", dtype=self.dtype_policy)
        self.logits_layer = keras.layers.Dense(num_classes, name="logits",
                                               dtype=self.dtype_policy)

    def build(self, input_shape):
        features = input_shape[-1]
        self.hidden_layer.build((None, features))
        self.logits_layer.build((None, self.hidden))

    def call(self, features):
        if len(features.shape) == 4:
            features = ops.mean(features, axis=(1, 2))
        hidden = leaky_relu(self.hidden_layer(features), negative_slope=0.2)
        return self.logits_layer(hidden)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "hidden": self.hidden}
