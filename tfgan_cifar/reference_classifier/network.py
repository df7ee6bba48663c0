"""The reference classifier's network (after Jordan's airbench): a frozen patch-whitening
layer, three conv groups with shift-only batch norm, global max pooling (the `features` layer)
and a scaled linear head; `with_mirror_averaging` for test-time flips."""

import keras
import numpy as np

FEATURES_LAYER = "features"
HEAD_SCALE = 1 / 9  # keeps early softmax outputs soft
PATCH_SIZE = 2
WHITENING_EPS = 5e-4  # floor on the patch-covariance eigenvalues, relative to their mean
SHIFT_SPEED = 64.0  # batch-norm shifts learn this many times faster than the other weights


@keras.saving.register_keras_serializable(package="tfgan_cifar")
class PatchWhitening(keras.layers.Layer):
    """A frozen `patch_size` x `patch_size` valid convolution that whitens image patches, with a
    trainable bias. `adapt(images)` sets the kernel: each output is a patch's projection on one
    eigenvector of the patch covariance divided by the square root of its eigenvalue, and the
    second half of the outputs are the negatives of the first (so a ReLU-like activation keeps
    both signs)."""

    def __init__(self, patch_size=PATCH_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        size = self.patch_size
        self.kernel = self.add_weight(shape=(size, size, channels, 2 * size * size * channels),
                                      initializer="glorot_uniform", trainable=False,
                                      name="kernel")
        self.bias = self.add_weight(shape=(2 * size * size * channels,), initializer="zeros",
                                    name="bias")

    def call(self, images):
        kernel = keras.ops.cast(self.kernel, self.compute_dtype)
        return keras.ops.conv(images, kernel, padding="valid") + keras.ops.cast(
            self.bias, self.compute_dtype)

    def adapt(self, images, eps=WHITENING_EPS, chunk=1000):
        """Sets the kernel from float images [N, H, W, C] (the patch covariance is uncentred;
        `eps` is relative to the mean patch variance)."""
        size = self.patch_size
        dim = size * size * images.shape[-1]
        covariance = np.zeros((dim, dim))
        count = 0
        for start in range(0, len(images), chunk):
            windows = np.lib.stride_tricks.sliding_window_view(
                np.asarray(images[start:start + chunk], np.float64), (size, size), axis=(1, 2))
            # windows: [n, H-s+1, W-s+1, C, s, s] -> rows ordered (dy, dx, c) like the kernel
            patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, dim)
            covariance += patches.T @ patches
            count += len(patches)
        covariance /= max(count, 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        floor = eps * np.trace(covariance) / dim
        scaled = eigenvectors / np.sqrt(np.maximum(eigenvalues, 0.0) + floor)
        kernel = np.concatenate([scaled, -scaled], axis=1)
        self.kernel.assign(kernel.reshape(self.kernel.shape).astype(np.float32))

    def get_config(self):
        """The layer's arguments."""
        return {**super().get_config(), "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package="tfgan_cifar")
class ShiftBatchNorm(keras.layers.Layer):
    """Batch norm with a learned per-channel shift and no scale. The shift is stored divided by
    sqrt(`shift_speed`), so plain SGD moves it `shift_speed` times faster than the other
    weights, with the same relative weight decay."""

    def __init__(self, momentum=0.6, epsilon=1e-5, shift_speed=SHIFT_SPEED, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.shift_speed = float(shift_speed)
        self.norm = keras.layers.BatchNormalization(momentum=self.momentum,
                                                    epsilon=self.epsilon, center=False,
                                                    scale=False, dtype=self.dtype_policy,
                                                    name="norm")

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.shift = self.add_weight(shape=(int(input_shape[-1]),), initializer="zeros",
                                     name="shift")

    def call(self, x, training=None):
        factor = float(np.sqrt(self.shift_speed))
        return self.norm(x, training=training) + keras.ops.cast(self.shift * factor,
                                                                self.compute_dtype)

    def get_config(self):
        """The layer's arguments."""
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon,
                "shift_speed": self.shift_speed}


@keras.saving.register_keras_serializable(package="tfgan_cifar")
class Scale(keras.layers.Layer):
    """Multiplies its input by a constant `factor` (keras.layers.Rescaling is a preprocessing
    layer: on the JAX backend it looks for TensorFlow whenever `tensorflow` is in sys.modules)."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)

    def call(self, x):
        return x * self.factor

    def get_config(self):
        """The layer's arguments."""
        return {**super().get_config(), "factor": self.factor}


def _conv(filters, name):
    return keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                               kernel_initializer=keras.initializers.VarianceScaling(
                                   1 / 3, "fan_in", "uniform"), name=name)


def _conv_group(x, filters, name):
    x = _conv(filters, f"{name}_conv1")(x)
    x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = ShiftBatchNorm(name=f"{name}_bn1")(x)
    x = keras.layers.Activation("gelu", name=f"{name}_gelu1")(x)
    x = _conv(filters, f"{name}_conv2")(x)
    x = ShiftBatchNorm(name=f"{name}_bn2")(x)
    return keras.layers.Activation("gelu", name=f"{name}_gelu2")(x)


def _identity_init(conv):
    """Makes the first min(in, out) filters of a 3x3 convolution identities of their input
    channel (an implicit residual), as airbench does."""
    kernel = keras.ops.convert_to_numpy(conv.kernel).copy()
    size, channels = kernel.shape[0], min(kernel.shape[2], kernel.shape[3])
    kernel[..., :channels] = 0.0
    kernel[size // 2, size // 2, np.arange(channels), np.arange(channels)] = 1.0
    conv.kernel.assign(kernel)


def build_classifier(num_classes, width=32):
    """The classifier: images in [-1, 1] [N, 32, 32, 3] -> logits [N, num_classes].

    The layer named `features` (global max pooling, 4 * width values) is the penultimate
    feature space of FD_classifier and precision/recall. The whitening layer holds a random
    kernel until `PatchWhitening.adapt` (train_classifier calls it). Layers take the current
    Keras dtype policy (mixed_bfloat16 while `train_classifier` builds it); the head is float32.
    """
    inputs = keras.Input((32, 32, 3), name="images")
    x = PatchWhitening(name="whitening")(inputs)
    x = keras.layers.Activation("gelu", name="whitening_gelu")(x)
    for index, filters in enumerate((width, 4 * width, 4 * width), start=1):
        x = _conv_group(x, filters, f"group{index}")
    features = keras.layers.GlobalMaxPooling2D(name=FEATURES_LAYER, dtype="float32")(x)
    logits = keras.layers.Dense(num_classes, use_bias=False, name="logits",
                                dtype="float32")(features)
    logits = Scale(HEAD_SCALE, name="scaled_logits", dtype="float32")(logits)
    model = keras.Model(inputs, logits, name="reference_classifier")
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _identity_init(layer)
    return model


@keras.saving.register_keras_serializable(package="tfgan_cifar")
class MirrorImages(keras.layers.Layer):
    """Flips images [N, H, W, C] left to right."""

    def call(self, images):
        return keras.ops.flip(images, axis=2)


def with_mirror_averaging(model):
    """The classifier whose `features` are the mean of `model`'s on each image and on its mirror
    image, followed by `model`'s linear head (so its logits are the mean logits too): test-time
    augmentation, about +0.6% test accuracy at twice the cost of a prediction. Shares `model`'s
    weights."""
    trunk = keras.Model(model.inputs, model.get_layer(FEATURES_LAYER).output, name="trunk")
    inputs = keras.Input((32, 32, 3), name="images")
    features = keras.layers.Average(name=FEATURES_LAYER, dtype="float32")(
        [trunk(inputs), trunk(MirrorImages(name="mirror")(inputs))])
    logits = model.get_layer("scaled_logits")(model.get_layer("logits")(features))
    return keras.Model(inputs, logits, name="reference_classifier")
