"""Metrics of conditional generators that are too slow for every evaluation (evaluate.py only).

- Intra-class FID (Miyato & Koyama 2018): for each class, the Fréchet distance between images
  generated for that label and the test images of that class (as many of each), averaged over
  the classes; in Inception features ("FID") or the reference classifier's ("FD_classifier").
- Classification accuracy score (CAS, Ravuri & Vinyals 2019): the reference classifier's
  network trained on generated images, labelled as drawn, and tested on the real test split.
"""

import numpy as np

from tfgan_cifar.data import ImageSet
from tfgan_cifar.metrics import fid, reference
from tfgan_cifar.pixels import to_float, to_uint8


def intra_class_fd(generate, z_dim, extractor, test_set, source, cache_dir, seed=0,
                   batch_size=500):
    """Mean over classes of the Fréchet distance between generated and real images of a class.

    Args:
        generate: `generate(z, labels)` -> images in [-1, 1].
        z_dim: noise size.
        extractor: images -> features, with a `cache_key` (Inception or a ReferenceClassifier).
        test_set: the real ImageSet of the reference split; each class is compared with all
            of its images, and as many images are generated for it.
        source: description of test_set for the cache key of the per-class statistics.
        cache_dir: where the per-class reference statistics are cached.
        seed: seed of the noise.

    Returns:
        {"mean": float, "per_class": [float per class], "samples_per_class": [int]}.
    """
    rng = np.random.default_rng(seed)
    per_class, counts = [], []
    for label in range(len(test_set.class_names)):
        real = test_set.images[test_set.labels == label]
        ref = reference.reference_statistics(
            lambda: to_float(real), {"source": source, "split": "test", "class": label},
            extractor, cache_dir, len(real))
        stats = fid.FeatureStats(max_kid_features=0)
        while stats.count < len(real):
            n = min(batch_size, len(real) - stats.count)
            z = rng.standard_normal((n, z_dim)).astype(np.float32)
            stats.update(extractor(np.asarray(generate(z, np.full(n, label, np.int32)))))
        per_class.append(fid.frechet_distance(stats.mean(), stats.covariance(), ref.mu,
                                              ref.sigma, sigma1_factor=stats.covariance_factor()))
        counts.append(int(stats.count))
    return {"mean": float(np.mean(per_class)), "per_class": per_class,
            "samples_per_class": counts}


def classification_accuracy_score(generate, z_dim, test_set, num_samples, epochs, seed=0,
                                  width=16, batch_size=None):
    """CAS: accuracy on `test_set` of a classifier trained on generated images.

    Args:
        generate: `generate(z, labels)` -> images in [-1, 1].
        z_dim: noise size.
        test_set: the real ImageSet to test on; its classes are the labels drawn.
        num_samples: generated training images, labels drawn uniformly.
        epochs, width: the classifier's training length and width (reference_classifier).
        batch_size: default min(256, num_samples // 4), at least 1.

    Returns:
        {"cas": accuracy, "cas_samples": num_samples, "cas_epochs": epochs}.
    """
    from tfgan_cifar import reference_classifier

    rng = np.random.default_rng(seed)
    num_classes = len(test_set.class_names)
    images, labels = [], []
    for start in range(0, num_samples, 500):
        n = min(500, num_samples - start)
        z = rng.standard_normal((n, z_dim)).astype(np.float32)
        drawn = rng.integers(0, num_classes, n).astype(np.int32)
        images.append(to_uint8(np.asarray(generate(z, drawn))))
        labels.append(drawn)
    generated = ImageSet(np.concatenate(images), np.concatenate(labels), test_set.class_names,
                         "generated")
    model, _ = reference_classifier.train_classifier(
        generated, epochs=epochs, width=width, seed=seed, verbose=False,
        batch_size=batch_size or max(1, min(256, num_samples // 4)))
    accuracy = reference_classifier.ReferenceClassifier(model).accuracy(test_set.images,
                                                                  test_set.labels)
    return {"cas": accuracy, "cas_samples": int(num_samples), "cas_epochs": int(epochs)}

