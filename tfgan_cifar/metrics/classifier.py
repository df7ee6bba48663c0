"""The CIFAR-10 reference classifier: a small ResNet trained by the package, used to measure
generated images without the InceptionV3 ImageNet weights (class accuracy, class coverage,
FD_classifier, precision/recall, CAS).

The network is the ResNet-9 of Page's "How to train your ResNet" (DAWNBench 2018) at a
configurable width: prep conv, three stages of conv-BN-ReLU-maxpool (the first and last with a
two-conv residual block), global max pooling (the `features` layer, 8 x width values) and a
scaled linear head. It trains with SGD-Nesterov, a one-cycle learning rate, label smoothing,
and random crops (4 pixels, reflected) and flips drawn in NumPy, so it runs on either Keras
backend. A trained classifier is a `.keras` file with a `.json` record beside it: the test
accuracy, the data source and the training settings.
"""

import json
import os
import time

import keras
import numpy as np

from tfgan_cifar.atomic import write_text
from tfgan_cifar.errors import UserError

FEATURES_LAYER = "features"
DEFAULT_NAME = "classifier_cifar10.keras"
HEAD_SCALE = 0.125  # ResNet-9's logit scaling: keeps early softmax outputs soft


def default_path(cache_dir=os.path.join("~", ".cache", "tfgan_cifar")):
    """Where `python -m tfgan_cifar.classifier` saves by default and later runs look."""
    return os.path.join(os.path.expanduser(cache_dir), DEFAULT_NAME)


def record_path(path):
    """The JSON record beside a classifier file: `x.keras` -> `x.json`."""
    return os.path.splitext(path)[0] + ".json"


def _conv_bn(x, filters, name, pool=False):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    if pool:
        x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return x


def build_classifier(num_classes, width=16):
    """The ResNet-9 classifier: images in [-1, 1] [N, 32, 32, 3] -> logits [N, num_classes].

    The layer named `features` (global max pooling, 8 * width values) is the penultimate
    feature space of FD_classifier and precision/recall. Layers take the current Keras dtype
    policy (mixed_bfloat16 while `train_classifier` builds it); the head is float32.
    """
    inputs = keras.Input((32, 32, 3), name="images")
    x = _conv_bn(inputs, width, "prep")
    x = _conv_bn(x, 2 * width, "stage1", pool=True)
    x = keras.layers.Add(name="stage1_add")([x, _conv_bn(_conv_bn(x, 2 * width, "res1a"),
                                                        2 * width, "res1b")])
    x = _conv_bn(x, 4 * width, "stage2", pool=True)
    x = _conv_bn(x, 8 * width, "stage3", pool=True)
    x = keras.layers.Add(name="stage3_add")([x, _conv_bn(_conv_bn(x, 8 * width, "res3a"),
                                                        8 * width, "res3b")])
    features = keras.layers.GlobalMaxPooling2D(name=FEATURES_LAYER, dtype="float32")(x)
    logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(features)
    logits = keras.layers.Rescaling(HEAD_SCALE, name="scaled_logits", dtype="float32")(logits)
    return keras.Model(inputs, logits, name="reference_classifier")


def augment(images, rng, pad=4):
    """Random crops (the image reflected by `pad` pixels, then cropped back) and horizontal
    flips of uint8 images [N, 32, 32, 3]; returns float32 in [-1, 1]."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    return out.astype(np.float32) / 127.5 - 1.0


@keras.saving.register_keras_serializable(package="tfgan_cifar")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over the first `warmup` share of `total_steps`, then
    linear decay to 0."""

    def __init__(self, peak, total_steps, warmup=0.2):
        self.peak, self.total_steps, self.warmup = float(peak), int(total_steps), float(warmup)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rise = max(self.warmup * self.total_steps, 1.0)
        up = step / rise
        down = (self.total_steps - step) / max(self.total_steps - rise, 1.0)
        return self.peak * keras.ops.maximum(keras.ops.minimum(up, down), 0.0)

    def get_config(self):
        """The schedule's arguments."""
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup": self.warmup}


def train_classifier(train, epochs=10, batch_size=256, width=16, learning_rate=0.2,
                     weight_decay=5e-4, label_smoothing=0.2, seed=0, mixed_precision=False,
                     augmentation=True, verbose=True, on_epoch=None):
    """Trains the reference classifier on a labelled ImageSet (see tfgan_cifar.data).

    Args:
        train: ImageSet (uint8 images, int labels, class_names).
        epochs, batch_size, width: the run's length, batch and network width.
        learning_rate: the one-cycle peak of SGD-Nesterov (momentum 0.9).
        weight_decay, label_smoothing: regularisation.
        seed: seeds the weights, the order and the augmentation.
        mixed_precision: build under `mixed_bfloat16` (faster on GPUs; on a CPU without
            bfloat16 instructions TF 2.21's bfloat16 convolution gradients are ~10x slower
            than float32); the previous global policy is restored afterwards.
        augmentation: random crops and flips (off: images as they are).
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
    steps_per_epoch = max(len(train) // batch_size, 1)
    schedule = OneCycle(learning_rate, epochs * steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                       weight_decay=weight_decay),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=label_smoothing),
        metrics=["accuracy"], jit_compile=False)
    rng = np.random.default_rng(seed)
    onehot = np.eye(num_classes, dtype=np.float32)[np.asarray(train.labels, np.int64)]
    started = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(train))[:steps_per_epoch * batch_size]
        images = train.images[order]
        x = augment(images, rng) if augmentation else images.astype(np.float32) / 127.5 - 1.0
        logs = model.fit(x, onehot[order], batch_size=batch_size, epochs=1, shuffle=False,
                         verbose=0).history
        logs = {k: float(v[-1]) for k, v in logs.items()}
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.3f}, training accuracy "
                  f"{logs['accuracy']:.3f} ({time.perf_counter() - started:.0f}s)", flush=True)
        if on_epoch is not None:
            on_epoch(epoch, logs)
    settings = {"epochs": epochs, "batch_size": batch_size, "width": width,
                "learning_rate": learning_rate, "weight_decay": weight_decay,
                "label_smoothing": label_smoothing, "seed": seed,
                "mixed_precision": bool(mixed_precision), "augmentation": bool(augmentation),
                "seconds": round(time.perf_counter() - started, 1)}
    return model, settings


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
        predicted = self.predict(np.asarray(images, np.float32) / 127.5 - 1.0)
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
        text = " ".join(str(error).split())[:160] or type(error).__name__
        raise UserError(f"{where} is not a reference classifier ({type(error).__name__}: "
                        f"{text}): {hint}") from None
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
