"""FID and KID of a generator against the CIFAR-10 test split, during training or after it.

The reference is, in order: `--fid_reference_dir`, the `test` folder beside `--image_dir`, or
the tensorflow-datasets `test` split. Numbers are "FID (Keras InceptionV3)": not comparable with
the TTUR / pytorch-fid numbers of papers, which use the 2015 Inception graph.
"""

import os

import numpy as np

from tfgan_cifar import data as data_lib
from tfgan_cifar.errors import UserError
from tfgan_cifar.metrics import fid, inception, reference


def reference_source(config):
    """(description, loader) of the FID reference images a config asks for."""
    if config.fid_reference_dir:
        folder = config.fid_reference_dir
    elif config.image_dir:
        folder = os.path.join(os.path.dirname(os.path.abspath(config.image_dir)), "test")
        if not os.path.isdir(folder):
            raise UserError(
                f"no 'test' folder beside --image_dir={config.image_dir} to compute FID against: "
                "pass --fid_reference_dir=PATH, or --eval_every=0 to train without FID"
            )
    else:
        return "tfds:cifar10:test", lambda: data_lib.load_tfds("test", config.data_dir)
    return f"folder:{os.path.abspath(folder)}", lambda: data_lib.load_image_folder(folder)


def _as_float(images):
    return images.astype(np.float32) / 127.5 - 1.0


class Evaluator:
    """Computes FID and KID of `generate(z, labels)` against cached reference statistics."""

    def __init__(self, config, extractor):
        self.config = config
        self.extractor = extractor
        description, load = reference_source(config)
        self._load = load
        self.reference_description = description
        self._reference = None

    @classmethod
    def create(cls, config):
        """An Evaluator, or None (after one line saying why) when no Inception weights exist."""
        if config.inception_weights and not os.path.isfile(config.inception_weights):
            raise UserError(f"--inception_weights={config.inception_weights} is not a file")
        try:
            extractor = inception.FeatureExtractor(config.inception_weights)
        except inception.InceptionWeightsUnavailable as error:
            print(f"FID evaluation is off: {error}", flush=True)
            return None
        return cls(config, extractor)

    @property
    def reference(self):
        """Reference statistics, computed on first use and cached on disk."""
        if self._reference is None:
            loaded = {}

            def images():
                loaded["set"] = self._load()
                return _as_float(loaded["set"].images[: self.config.fid_samples])

            self._reference = reference.reference_statistics(
                images,
                {"source": self.reference_description, "split": "test"},
                self.extractor,
                os.path.expanduser(self.config.fid_cache_dir),
                self.config.fid_samples,
            )
        return self._reference

    def evaluate(self, generate, seed=0, num_samples=None):
        """FID/KID of `num_samples` (default --fid_samples) images from `generate(z, labels)`.

        Labels are drawn uniformly from the classes; images are produced and scored in
        chunks, so memory does not grow with the sample count.
        """
        config = self.config
        num_samples = num_samples or config.fid_samples
        rng = np.random.default_rng(seed)

        def sample(n):
            z = rng.standard_normal((n, config.z_dim)).astype(np.float32)
            labels = rng.integers(0, config.num_classes, n).astype(np.int32)
            return np.asarray(generate(z, labels))

        result = fid.compute_metrics(sample, num_samples, self.extractor, self.reference)
        result["reference"] = self.reference_description
        result["reference_samples"] = int(self.reference.num_samples)
        return result


def evaluate_real_images(evaluator, images, num_samples):
    """FID/KID of real images (uint8) against the reference: the floor at that sample count."""
    images = images[:num_samples]
    position = {"next": 0}

    def sample(n):
        start = position["next"]
        position["next"] = start + n
        return _as_float(images[start:start + n])

    result = fid.compute_metrics(sample, len(images), evaluator.extractor, evaluator.reference)
    result["reference"] = evaluator.reference_description
    return result


def classifier_metrics(class_logits, images, labels):
    """Loss and accuracy of a classifier head on labelled uint8 images.

    Args:
        class_logits: function float images in [-1, 1] -> logits [N, num_classes].
        images, labels: uint8 [N, 32, 32, 3] and int [N].

    Returns:
        (mean cross-entropy, accuracy) as floats.
    """
    logits = np.asarray(class_logits(_as_float(images)), np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    labels = np.asarray(labels, np.int64)
    loss = -log_probs[np.arange(len(labels)), labels].mean()
    return float(loss), float((logits.argmax(axis=1) == labels).mean())
