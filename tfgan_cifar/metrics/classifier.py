"""The CIFAR-10 reference classifier: a small convolutional network trained by the package, used
to measure generated images without the InceptionV3 ImageNet weights (class accuracy, class
coverage, FD_classifier, precision/recall, CAS).

Network and recipe follow Jordan's airbench ("94% on CIFAR-10 in 3.29 seconds", 2024), which
needs about a third of the epochs of Page's ResNet-9:
- a frozen patch-whitening first layer: 2x2 patches projected on the eigenvectors of the
  training images' patch covariance, scaled to unit variance (and negated copies), then GELU;
- three groups of conv, max pool, batch norm, GELU, conv, batch norm, GELU at widths w, 4w, 4w,
  each convolution initialised as an identity on its first input channels;
- batch norm without scale whose shift learns 64x faster than the other weights;
- a global max pool (the `features` layer, 4w values) and a bias-free linear head scaled by 1/9.
Training: SGD-Nesterov on a triangular learning rate, label smoothing, 2-pixel random
translations, alternating flips (every image flipped in every other epoch), and lookahead
averaging of the weights from 30% of the steps on. Augmentation is drawn in NumPy, one batch at
a time, so it runs on either Keras backend. A trained classifier is a `.keras` file with a
`.json` record beside it: the test accuracy, the data source and the training settings.
"""

import json
import os
import time

import keras
import numpy as np

from tfgan_cifar.atomic import write_text
from tfgan_cifar.errors import UserError, one_line
from tfgan_cifar.paths import CACHE_DIR
from tfgan_cifar.pixels import to_float

FEATURES_LAYER = "features"
DEFAULT_NAME = "classifier_cifar10.keras"
HEAD_SCALE = 1 / 9  # keeps early softmax outputs soft
PATCH_SIZE = 2
MOMENTUM = 0.85
LEARNING_RATE = 1.5  # peak, for a batch of 1024 images; scaled linearly with the batch size
# Weight decay per unit of learning rate (Keras decays by weight_decay * lr at each step, outside
# the momentum buffer): airbench's 0.0153 per 11.5 of learning rate, applied through momentum.
WEIGHT_DECAY = 0.0153 / 11.5 / (1 - MOMENTUM)
WHITENING_EPS = 5e-4  # floor on the patch-covariance eigenvalues, relative to their mean
# Gaussian noise on half the training images, sigma uniform in [0, NOISE] on the [-1, 1] scale.
# Without it, whitening (which amplifies the faintest patch directions most) left the
# classifier putting 92% of test images with noise of sigma 0.1 into one class. With 0.05:
# 84-85% accuracy at sigma 0.05 and no class above 19% at sigma 0.1, at 85.0% clean accuracy
# (mean of seeds 0-2; 0.1 costs another point for little more robustness).
NOISE = 0.05
SHIFT_SPEED = 64.0  # batch-norm shifts learn this many times faster than the other weights
LOOKAHEAD = {"start": 0.3, "every": 5, "decay": 0.95, "power": 3.0}


def default_path(cache_dir=CACHE_DIR):
    """Where `python -m tfgan_cifar.classifier` saves by default and later runs look."""
    return os.path.join(os.path.expanduser(cache_dir), DEFAULT_NAME)


def record_path(path):
    """The JSON record beside a classifier file: `x.keras` -> `x.json`."""
    return os.path.splitext(path)[0] + ".json"


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


def augment(images, rng, pad=2, flips=None):
    """Random translations by up to `pad` pixels (the image reflected by `pad`, then cropped
    back) and horizontal flips of uint8 images [N, 32, 32, 3]; returns float32 in [-1, 1].
    `flips` (bool [N]) says which images to flip; by default each one with probability 1/2."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flips = rng.random(n) < 0.5 if flips is None else np.asarray(flips, bool)
    out[flips] = out[flips, :, ::-1]
    return to_float(out)


def add_noise(images, rng, max_sigma):
    """Gaussian noise on a random half of float images in [-1, 1], with a standard deviation
    drawn uniformly from [0, max_sigma] for each image, clipped back to [-1, 1]."""
    n = len(images)
    sigma = rng.uniform(0, max_sigma, n) * (rng.random(n) < 0.5)
    noise = rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(images + sigma[:, None, None, None].astype(np.float32) * noise, -1.0, 1.0)


@keras.saving.register_keras_serializable(package="tfgan_cifar")
class Triangle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear from `start` x `peak` at step 0 to `peak` at `peak_at` of `total_steps`, then
    linear to `end` x `peak` at the last step."""

    def __init__(self, peak, total_steps, peak_at=0.23, start=0.2, end=0.07):
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.peak_at, self.start, self.end = float(peak_at), float(start), float(end)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        top = max(self.peak_at * self.total_steps, 1.0)
        up = self.start + (1.0 - self.start) * step / top
        down = 1.0 - (1.0 - self.end) * (step - top) / max(self.total_steps - top, 1.0)
        return self.peak * keras.ops.maximum(keras.ops.where(step < top, up, down), 0.0)

    def get_config(self):
        """The schedule's arguments."""
        return {"peak": self.peak, "total_steps": self.total_steps, "peak_at": self.peak_at,
                "start": self.start, "end": self.end}


class TrainingBatches:
    """One epoch of augmented training batches, made one batch at a time (`batches[i]` is
    (float32 images in [-1, 1], one-hot labels)). Each epoch shuffles the images and drops the
    last partial batch; images in `flipped` are mirrored in even epochs, the others in odd
    ones. A batch depends only on (seed, epoch, index), not on the order it is asked for."""

    def __init__(self, images, onehot, batch_size, seed, augmentation=True, noise=0.0):
        self.images, self.onehot, self.batch_size = images, onehot, batch_size
        self.seed, self.augmentation, self.noise = seed, augmentation, noise
        self.flipped = np.random.default_rng((seed, 0)).random(len(images)) < 0.5
        self.epoch = 0
        self._shuffle()

    def _shuffle(self):
        self.order = np.random.default_rng((self.seed, 1, self.epoch)).permutation(
            len(self.images))

    def __len__(self):
        return len(self.images) // self.batch_size

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.images[chosen]
        if not self.augmentation:
            return to_float(images), self.onehot[chosen]
        rng = np.random.default_rng((self.seed, 2, self.epoch, index))
        flips = self.flipped[chosen] ^ bool(self.epoch % 2)
        x = augment(images, rng, flips=flips)
        if self.noise:
            x = add_noise(x, rng, self.noise)
        return x, self.onehot[chosen]

    def on_epoch_end(self):
        """Moves to the next epoch: new order, new translations, the other half flipped."""
        self.epoch += 1
        self._shuffle()


class Lookahead(keras.callbacks.Callback):
    """Airbench's lookahead: from `start` of `total_steps` on, every `every` steps the weights
    (batch-norm statistics included) are averaged into a slow copy with decay
    decay**every * (step / total_steps)**power and then replaced by it; at the end of each
    epoch the weights are set to the slow copy."""

    def __init__(self, total_steps, start, every, decay, power):
        super().__init__()
        self.total_steps, self.start, self.every = total_steps, start, every
        self.decay, self.power = decay, power
        self.step, self.slow = 0, None

    def on_train_batch_end(self, batch, logs=None):
        """Counts the step and averages on every `every`-th step after `start`."""
        self.step += 1
        if self.step < self.start * self.total_steps or self.step % self.every:
            return
        weights = self.model.weights
        if self.slow is None:
            self.slow = [keras.ops.convert_to_numpy(v).copy() for v in weights]
            return
        rho = self.decay ** self.every * (self.step / self.total_steps) ** self.power
        # New arrays, never updated in place: JAX may share a NumPy array's memory on assign.
        self.slow = [rho * slow + (1.0 - rho) * keras.ops.convert_to_numpy(variable)
                     for slow, variable in zip(self.slow, weights)]
        for slow, variable in zip(self.slow, weights):
            variable.assign(slow)

    def on_epoch_end(self, epoch, logs=None):
        """Leaves the model at the slow weights."""
        if self.slow is not None:
            for slow, variable in zip(self.slow, self.model.weights):
                variable.assign(slow)


def train_epochs(model, batches, epochs, lookahead=None, verbose=False, on_epoch=None):
    """Trains a compiled `model` for `epochs` passes over `batches` (a TrainingBatches), one
    `train_on_batch` per batch, with the `lookahead` callback (if any) after each step.

    Prints (`verbose`) and passes to `on_epoch(epoch, logs)` each epoch's mean loss and
    accuracy."""
    if lookahead is not None:
        lookahead.set_model(model)
    started = time.perf_counter()
    # train_on_batch, not fit: TF 2.21 feeds fit a PyDataset through tf.data's from_generator,
    # which made each CPU step 1.6x slower, and fit on a whole augmented epoch needs 614 MB.
    for epoch in range(epochs):
        sums = {}
        for index in range(len(batches)):
            for name, value in model.train_on_batch(*batches[index], return_dict=True).items():
                sums[name] = sums.get(name, 0.0) + float(value)  # this batch's value alone
            if lookahead is not None:
                lookahead.on_train_batch_end(index)
        if lookahead is not None:
            lookahead.on_epoch_end(epoch)
        batches.on_epoch_end()
        logs = {name: total / len(batches) for name, total in sums.items()}
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.3f}, training accuracy "
                  f"{logs['accuracy']:.3f} ({time.perf_counter() - started:.0f}s)", flush=True)
        if on_epoch is not None:
            on_epoch(epoch, logs)


def train_classifier(train, epochs=4, batch_size=512, width=32, learning_rate=LEARNING_RATE,
                     label_smoothing=0.2, seed=0, mixed_precision=False, augmentation=True,
                     noise=NOISE,
                     mirror_averaging=True, verbose=True, on_epoch=None):
    """Trains the reference classifier on a labelled ImageSet (see tfgan_cifar.data).

    Args:
        train: ImageSet (uint8 images, int labels, class_names).
        epochs, batch_size, width: the run's length, batch and network width.
        learning_rate: the triangular schedule's peak for a batch of 1024 images; the step
            uses learning_rate * batch_size / 1024 (SGD-Nesterov, momentum 0.85).
        label_smoothing: of the cross-entropy targets.
        seed: seeds the weights, the order and the augmentation.
        mixed_precision: build under `mixed_bfloat16` (faster on GPUs; on a CPU without
            bfloat16 instructions TF 2.21's bfloat16 convolution gradients are ~10x slower
            than float32); the previous global policy is restored afterwards.
        augmentation: random translations and alternating flips (off: images as they are).
        noise: with augmentation, Gaussian noise on half the images, its standard deviation
            uniform in [0, noise] (on the [-1, 1] scale): keeps the classifier's predictions
            from collapsing on noisy images.
        mirror_averaging: return `with_mirror_averaging` of the trained network.
        verbose: print one line per epoch.
        on_epoch: optional `on_epoch(epoch, logs)` called after each epoch.

    Returns:
        (keras.Model, settings dict for the record).
    """
    num_classes = len(train.class_names)
    keras.utils.set_random_seed(seed)
    previous = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_classifier(num_classes, width)
    finally:
        keras.config.set_dtype_policy(previous)
    rng = np.random.default_rng(seed)
    whitening_sample = rng.permutation(len(train))[:5000]
    model.get_layer("whitening").adapt(to_float(train.images[whitening_sample]))
    batch_size = min(batch_size, len(train))
    onehot = np.eye(num_classes, dtype=np.float32)[np.asarray(train.labels, np.int64)]
    batches = TrainingBatches(train.images, onehot, batch_size, seed, augmentation, noise)
    total_steps = epochs * len(batches)
    model.compile(
        optimizer=keras.optimizers.SGD(
            Triangle(learning_rate * batch_size / 1024, total_steps), momentum=MOMENTUM,
            nesterov=True, weight_decay=WEIGHT_DECAY),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=label_smoothing),
        metrics=["accuracy"],
        # TF: XLA was no faster on a 2-core CPU. JAX without jit runs op by op (1.3x slower
        # there, and far slower on a GPU).
        jit_compile=keras.backend.backend() == "jax")
    started = time.perf_counter()
    train_epochs(model, batches, epochs, Lookahead(total_steps, **LOOKAHEAD), verbose, on_epoch)
    settings = {"epochs": epochs, "batch_size": batch_size, "width": width,
                "learning_rate": learning_rate, "weight_decay": WEIGHT_DECAY,
                "label_smoothing": label_smoothing, "seed": seed,
                "mixed_precision": bool(mixed_precision), "augmentation": bool(augmentation),
                "noise": float(noise), "whitening_eps": WHITENING_EPS,
                "mirror_averaging": bool(mirror_averaging), "recipe": "airbench",
                "seconds": round(time.perf_counter() - started, 1)}
    return (with_mirror_averaging(model) if mirror_averaging else model), settings


class ReferenceClassifier:
    """A trained classifier as functions of images in [-1, 1]: logits, probabilities and
    penultimate features, computed in batches."""

    def __init__(self, model, info=None, path=None, batch_size=500):
        self.model = model
        self.info = dict(info or {})
        self.path = path
        self.batch_size = int(batch_size)
        self.num_classes = int(model.output_shape[-1])
        self._both = keras.Model(model.inputs,
                                 [model.output, model.get_layer(FEATURES_LAYER).output])
        if path is None:
            self.cache_key = {"classifier": "in-memory"}
        else:
            stat = os.stat(path)
            self.cache_key = {"classifier": os.path.abspath(path), "bytes": stat.st_size,
                              "mtime": int(stat.st_mtime)}

    @property
    def feature_dim(self):
        """Size of the penultimate feature vector."""
        return int(self._both.output_shape[1][-1])

    def logits_and_features(self, images):
        """(logits float64 [N, C], features float64 [N, D]) of images in [-1, 1]."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ValueError(f"expected images of shape (N, 32, 32, 3), got {images.shape}")
        logits, features = [np.zeros((0, self.num_classes))], [np.zeros((0, self.feature_dim))]
        for start in range(0, len(images), self.batch_size):
            out = self._both.predict_on_batch(images[start:start + self.batch_size])
            logits.append(np.asarray(out[0], np.float64))
            features.append(np.asarray(out[1], np.float64))
        return np.concatenate(logits), np.concatenate(features)

    def __call__(self, images):
        """Penultimate features [N, D] (the FeatureExtractor interface of reference.py)."""
        return self.logits_and_features(images)[1]

    def predict(self, images):
        """Predicted classes [N] of images in [-1, 1]."""
        return self.logits_and_features(images)[0].argmax(axis=1)

    def accuracy(self, images, labels):
        """Share of uint8 images [N, 32, 32, 3] classified as their labels."""
        predicted = self.predict(to_float(np.asarray(images)))
        return float((predicted == np.asarray(labels)).mean())


def save(model, path, info):
    """Writes the classifier to `path` (a .keras file) and its record `info` beside it (.json),
    each atomically (a temporary file renamed into place); returns `path`."""
    import uuid

    path = os.path.abspath(os.path.expanduser(str(path)))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".{uuid.uuid4().hex[:12]}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    write_text(record_path(path), json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def load(path, num_classes=None, flag="--classifier"):
    """The ReferenceClassifier saved at `path` (a .keras file from `save`, or a folder holding
    DEFAULT_NAME, such as the cache folder).

    Raises UserError, one line naming `flag`, when the file is missing, not a loadable Keras
    model with a `features` layer, or made for another number of classes than `num_classes`.
    """
    where = f"{flag}={path}"
    hint = "train one with `python -m tfgan_cifar.classifier --image_dir=PATH/train`"
    path = os.path.expanduser(str(path))
    if os.path.isdir(path):
        path = os.path.join(path, DEFAULT_NAME)
    if not os.path.isfile(path):
        raise UserError(f"{where} is not a file: {hint}")
    try:
        model = keras.saving.load_model(path, compile=False)
        model.get_layer(FEATURES_LAYER)
    except Exception as error:  # zip, h5, JSON and Keras errors of many kinds
        raise UserError(f"{where} is not a reference classifier ({type(error).__name__}: "
                        f"{one_line(error, 160)}): {hint}") from None
    info = {}
    if os.path.isfile(record_path(path)):
        try:
            with open(record_path(path)) as f:
                info = json.load(f)
        except (OSError, ValueError):
            info = {}
    classifier = ReferenceClassifier(model, info, path)
    if num_classes is not None and classifier.num_classes != num_classes:
        raise UserError(f"{where} classifies {classifier.num_classes} classes but the model has "
                        f"{num_classes} (--num_classes): train a classifier on the same data")
    return classifier
