"""FID and KID of a generator against a CIFAR-10 split (`--fid_reference`, default test),
during training or after it, and the reference classifier's metrics (class accuracy and
coverage, FD_classifier, precision/recall) beside them.

The reference is, in order: `--fid_reference_dir`, the split's folder (`--image_dir` itself for
train, the `test` folder beside it for test), or the tensorflow-datasets split. The network is
`--fid_network`: the standard InceptionV3 of 2015-12-05 that papers use (metrics/inception_2015),
or Keras's InceptionV3 (metrics/inception), whose "FID (Keras InceptionV3)" is not comparable
with published numbers.
"""

import os
import zipfile

import numpy as np

from tfgan_cifar import data as data_lib, fid_weights
from tfgan_cifar.errors import UserError, one_line
from tfgan_cifar.metrics import fid, inception, quality, reference
from tfgan_cifar.pixels import to_float


def reference_source(config, split=None):
    """(description, loader) of the FID reference images a config asks for: those of `split`
    ("train" or "test"; default --fid_reference)."""
    split = split or config.fid_reference
    if config.fid_reference_dir:
        folder = config.fid_reference_dir
    elif config.image_dir and split == "train":
        folder = config.image_dir
    elif config.image_dir:
        folder = data_lib.test_folder_beside(
            config.image_dir, "it is the reference of FID; pass --fid_reference_dir=PATH, or "
            "--eval_every=0 to train without FID")
    else:
        return f"tfds:cifar10:{split}", lambda: data_lib.load_tfds(split, config.data_dir)
    return f"folder:{os.path.abspath(folder)}", lambda: data_lib.load_image_folder(folder)


class _ReferenceScorer:
    """Features of the reference split (`reference_source`) from `extractor`, computed on
    first use and cached on disk: what both evaluators compare generated images with."""

    def __init__(self, config, extractor):
        self.config = config
        self.extractor = extractor
        description, load = reference_source(config)
        self._load = load
        self.reference_description = description
        self._reference = None

    @property
    def reference(self):
        """Reference statistics, computed on first use and cached on disk."""
        if self._reference is None:
            self._reference = reference.reference_statistics(
                lambda: to_float(self._load().images),
                {"source": self.reference_description, "split": self.config.fid_reference},
                self.extractor,
                os.path.expanduser(self.config.fid_cache_dir),
                self.config.fid_samples,
            )
        return self._reference


class Evaluator(_ReferenceScorer):
    """Computes FID and KID of `generate(z, labels)` against cached reference statistics."""

    @classmethod
    def create(cls, config, required=False):
        """An Evaluator of --fid_network, or None (after one line saying why) when Keras's
        InceptionV3 weights cannot be had; with `required`, that raises UserError with the
        line instead. With Keras's network and without the standard network's weights, first
        says in one line how to make them.

        Raises:
            UserError: --fid_network=standard without its weights in --fid_cache_dir.
        """
        if config.fid_network == "standard":
            return cls(config, standard_extractor(config.fid_cache_dir))
        if not fid_weights.have_weights(config.fid_cache_dir):
            print(f"FID uses Keras's InceptionV3, not comparable with published FIDs: "
                  f"`{fid_weights.MAKE_COMMAND}` makes the standard network's weights, used "
                  "from then on", flush=True)
        if config.inception_weights and not os.path.isfile(config.inception_weights):
            raise UserError(f"--inception_weights={config.inception_weights} is not a file")
        try:
            extractor = inception.FeatureExtractor(config.inception_weights)
        except inception.InceptionWeightsUnavailable as error:
            if required:
                raise UserError(f"{error} (or `{fid_weights.MAKE_COMMAND}` for the standard "
                                "network, or --nofid, or --reference_classifier=PATH for the "
                                "reference classifier's metrics)") from None
            print(f"FID evaluation is off: {error}", flush=True)
            return None
        return cls(config, extractor)

    @property
    def protocol(self):
        """How its FIDs are measured, as recorded beside each: the network, the reference
        images and their split and count."""
        return {"fid_network": self.config.fid_network,
                "reference": self.reference_description,
                "reference_split": self.config.fid_reference,
                "reference_samples": int(self.reference.num_samples)}

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

        result = fid.compute_metrics(sample, num_samples, self.extractor, self.reference,
                                     prdc=True)
        return {**result, **self.protocol}


def standard_extractor(cache_dir):
    """The standard network's feature extractor, from the weights file in `cache_dir`.

    Raises:
        UserError: the weights file is missing or unreadable; says how to make it.
    """
    from tfgan_cifar.metrics import inception_2015

    path = fid_weights.weights_path(cache_dir)
    if not os.path.isfile(path):
        raise UserError(f"--fid_network=standard needs its weights in {path}: make them with "
                        f"`{fid_weights.MAKE_COMMAND} --fid_cache_dir={cache_dir}` (or pass "
                        "--fid_network=keras)")
    try:
        return inception_2015.StandardFeatureExtractor(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UserError(f"{path} is not the standard network's weights ({one_line(error)}): "
                        f"delete it and run `{fid_weights.MAKE_COMMAND}`") from None


def evaluate_real_images(evaluator, images, num_samples):
    """FID/KID of real images (uint8) against the reference: the floor at that sample count."""
    images = images[data_lib.subset_indices(len(images), num_samples)]
    position = {"next": 0}

    def sample(n):
        start = position["next"]
        position["next"] = start + n
        return to_float(images[start:start + n])

    result = fid.compute_metrics(sample, len(images), evaluator.extractor, evaluator.reference,
                                 prdc=True)
    return {**result, **evaluator.protocol}


def draw_samples(generate, num_samples, z_dim, num_classes, seed, batch_size=500):
    """Yields (images in [-1, 1], labels drawn uniformly) batches of `generate(z, labels)`,
    `num_samples` in all, from the same noise and labels as `Evaluator.evaluate` with `seed`."""
    rng = np.random.default_rng(seed)
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z = rng.standard_normal((n, z_dim)).astype(np.float32)
        labels = rng.integers(0, num_classes, n).astype(np.int32)
        yield np.asarray(generate(z, labels)), labels


def real_batches(images, labels, batch_size=500):
    """Yields (uint8 images as floats in [-1, 1], labels) batches: real images scored like
    generated ones (`ClassifierEvaluator.score`)."""
    for start in range(0, len(images), batch_size):
        yield to_float(images[start:start + batch_size]), labels[start:start + batch_size]


class ClassifierEvaluator(_ReferenceScorer):
    """The reference classifier's metrics of generated (or any) images: class accuracy (for
    conditional models), class coverage, FD_classifier against the cached statistics of the
    reference split, and precision/recall/density/coverage in its penultimate features."""

    def __init__(self, config, classifier):
        """`classifier`: a reference_classifier.ReferenceClassifier (its features are the
        extractor)."""
        super().__init__(config, classifier)
        self.classifier = classifier

    def score(self, batches, conditional):
        """Metrics of (images in [-1, 1], labels) batches.

        Returns:
            {"fd_classifier", "class_kl", "class_distribution" (share per predicted class),
            "classifier_samples"}, the PRDC keys with suffix `_clf` (when both sets have more
            than k images) and, when `conditional`, "class_acc" and "class_acc_per_class"
            (the share classified as the label each image was drawn for).
        """
        stats, predicted, drawn = fid.FeatureStats(), [], []
        for images, labels in batches:
            logits, features = self.classifier.logits_and_features(images)
            stats.update(features)
            predicted.append(logits.argmax(axis=1))
            drawn.append(np.asarray(labels))
        predicted, drawn = np.concatenate(predicted), np.concatenate(drawn)
        num_classes = self.classifier.num_classes
        distribution = quality.class_distribution(predicted, num_classes)
        ref = self.reference
        result = {
            "fd_classifier": fid.distance_to_reference(stats, ref),
            "class_kl": quality.kl_from_uniform(distribution),
            "class_distribution": [float(p) for p in distribution],
            "classifier_samples": int(stats.count),
        }
        if conditional:
            result["class_acc"], result["class_acc_per_class"] = quality.class_accuracy(
                predicted, drawn, num_classes)
        result.update(quality.prdc_when_possible(ref.kid_features, stats.kid_features(),
                                                 suffix="_clf"))
        return result

    def evaluate(self, generate, seed=0, num_samples=None):
        """Metrics of `num_samples` (default --fid_samples) images from `generate(z, labels)`,
        labels drawn uniformly (the same images as `Evaluator.evaluate` with `seed`)."""
        config = self.config
        batches = draw_samples(generate, num_samples or config.fid_samples, config.z_dim,
                               config.num_classes, seed)
        return self.score(batches, config.conditional)


def classifier_metrics(class_logits, images, labels):
    """Loss and accuracy of a classifier head on labelled uint8 images.

    Args:
        class_logits: function float images in [-1, 1] -> logits [N, num_classes].
        images, labels: uint8 [N, 32, 32, 3] and int [N].

    Returns:
        (mean cross-entropy, accuracy) as floats.
    """
    logits = np.asarray(class_logits(to_float(images)), np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    labels = np.asarray(labels, np.int64)
    loss = -log_probs[np.arange(len(labels)), labels].mean()
    return float(loss), float((logits.argmax(axis=1) == labels).mean())
