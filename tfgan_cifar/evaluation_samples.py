"""Samples of an exported generator, for evaluate.py and the report: seeded noise and label
draws, one row of images per class (unconditional samples sorted into rows by D's class head)
and `.npz` files of samples for other FID tools."""

import numpy as np

from tfgan_cifar import export
from tfgan_cifar.atomic import replacing
from tfgan_cifar.pixels import to_uint8

SORT_POOL_FACTOR = 20  # unconditional rows pick from this many samples per shown image
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


def class_names(num_classes):
    """CIFAR-10's class names for 10 classes, else the labels as text."""
    return CIFAR10_CLASSES if num_classes == 10 else [str(i) for i in range(num_classes)]


def drawer(sample, z_dim, num_classes, rng):
    """`draw(n, labels=None) -> (images, labels)`: n images of `sample(z, labels)` from noise
    of `rng`, for the given labels or labels drawn uniformly."""
    def draw(n, labels=None):
        z = rng.standard_normal((n, z_dim)).astype(np.float32)
        if labels is None:
            labels = rng.integers(0, num_classes, n).astype(np.int32)
        return sample(z, labels), labels
    return draw


def class_head(path):
    """D's class head from the `discriminator.keras` of the export at `path`, or None.

    Returns a function: images in [-1, 1] [N, 32, 32, 3] -> class probabilities [N, C].
    """
    discriminator = export.load_keras_discriminator(path)
    if discriminator is None:
        return None
    import keras

    def probabilities(images, batch_size=500):
        chunks = []
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[start:start + batch_size], np.float32)
            # Batch statistics, as in training: D's moving ones are mostly of fake batches.
            _, logits = discriminator(batch, np.zeros(len(batch), np.int32), training=True,
                                      return_class_logits=True)
            chunks.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)))
        return np.concatenate(chunks)

    return probabilities


def class_rows(sample, z_dim, config, rng, head=None, per_class=10):
    """`per_class` generated images for each class, row by row, and the rows' labels.

    Conditional generators are asked for each label. Unconditional ones sample a pool of
    SORT_POOL_FACTOR x as many images, and `head` (images -> class probabilities, see
    `class_head`) sorts them: each row shows the most confident images among those it
    assigns to that class, topped up with the next most likely ones. Without a class head the
    rows are unsorted samples.

    Returns:
        (images float32 [num_classes * per_class, 32, 32, 3] in [-1, 1], row labels).
    """
    names, count = class_names(config.num_classes), config.num_classes * per_class
    if config.conditional:
        labels = np.repeat(np.arange(config.num_classes), per_class).astype(np.int32)
        z = rng.standard_normal((count, z_dim)).astype(np.float32)
        return np.asarray(sample(z, labels), np.float32), names
    if head is None:
        z = rng.standard_normal((count, z_dim)).astype(np.float32)
        return (np.asarray(sample(z, np.zeros(count, np.int32)), np.float32),
                ["unsorted"] * config.num_classes)
    pool_size = SORT_POOL_FACTOR * count
    pool = np.concatenate([
        np.asarray(sample(rng.standard_normal((n, z_dim)).astype(np.float32),
                          np.zeros(n, np.int32)), np.float32)
        for n in [min(500, pool_size - s) for s in range(0, pool_size, 500)]])
    probabilities = np.asarray(head(pool))
    assigned = probabilities.argmax(axis=1)
    rows = []
    for label in range(config.num_classes):
        by_confidence = np.argsort(-probabilities[:, label], kind="stable")
        mine = by_confidence[assigned[by_confidence] == label]
        others = by_confidence[assigned[by_confidence] != label]
        rows.append(np.concatenate([mine, others])[:per_class])
    return pool[np.concatenate(rows)], names


def write_samples_npz(path, count, draw, chunk=500):
    """N generated images of `draw` (see `drawer`) as uint8 `x` (N x 32 x 32 x 3) with int32
    labels `y`, written atomically; returns `path`."""
    xs, ys = [], []
    for start in range(0, count, chunk):
        images, labels = draw(min(chunk, count - start))
        xs.append(to_uint8(images))
        ys.append(np.asarray(labels, np.int32))
    with replacing(path, "wb") as f:
        np.savez(f, x=np.concatenate(xs), y=np.concatenate(ys))
    return path
