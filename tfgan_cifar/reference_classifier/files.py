"""A trained reference classifier on disk (a `.keras` file with a `.json` record beside it:
test accuracy, data source, training settings) and in memory (`ReferenceClassifier`: logits,
probabilities and penultimate features of images in [-1, 1], in batches)."""

import json
import os

import keras
import numpy as np

from tfgan_cifar.atomic import write_text
from tfgan_cifar.errors import UserError, one_line
from tfgan_cifar.paths import CACHE_DIR
from tfgan_cifar.pixels import to_float
from tfgan_cifar.reference_classifier.network import FEATURES_LAYER

DEFAULT_NAME = "classifier_cifar10.keras"


def default_path(cache_dir=CACHE_DIR):
    """Where `python -m tfgan_cifar.classifier` saves by default and later runs look."""
    return os.path.join(os.path.expanduser(cache_dir), DEFAULT_NAME)


def record_path(path):
    """The JSON record beside a classifier file: `x.keras` -> `x.json`."""
    return os.path.splitext(path)[0] + ".json"


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


def load(path, num_classes=None, flag="--reference_classifier"):
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
