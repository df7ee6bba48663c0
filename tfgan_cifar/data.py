"""CIFAR-10 input: loading images into memory, and the tf.data training pipeline.

Two sources give the same `ImageSet` (uint8 images N x 32 x 32 x 3, int32 labels):
tensorflow-datasets `cifar10`, or an image folder with one subfolder per class (sorted class
names give the labels, as in CIFAR-10). The training pipeline then draws batches from memory in
an order fixed by (seed, epoch), so a resumed run sees exactly the batches it would have seen.
TensorFlow is imported only by the functions that need it.
"""

import concurrent.futures
import dataclasses
import os
import socket
import warnings

import numpy as np
from absl import logging
from PIL import Image

from tfgan_cifar.errors import UserError

IMAGE_SIZE = 32
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
PIPELINE_THREADS = 2  # parallel batch gathers of the training pipeline
PREFETCH_BATCHES = 2  # batches ready ahead of the step
NO_DATA_HINT = (
    "pass --image_dir=PATH (a folder with one subfolder per class, e.g. cifar10/train) or "
    "--data_dir=PATH (a prepared tensorflow-datasets copy)"
)


@dataclasses.dataclass
class ImageSet:
    """Images in memory: uint8 (N, 32, 32, 3), int32 labels (N,), and where they came from."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list
    source: str

    def __len__(self):
        return len(self.images)


def _read_image(path):
    """Returns (uint8 32x32x3 array or None if unreadable, description of any conversion).

    An image over PIL's pixel limit (a possible decompression bomb: a small file that would
    take gigabytes in memory) is unreadable; `load_image_folder` turns PIL's warning for
    images between the limit and twice it into an error too.
    """
    try:
        with Image.open(path) as image:
            image.load()
            note = []
            if image.mode != "RGB":
                note.append(f"mode {image.mode}")
                image = image.convert("RGB")
            if image.size != (IMAGE_SIZE, IMAGE_SIZE):
                note.append(f"size {image.size[0]}x{image.size[1]}")
                image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8), ", ".join(note)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as error:
        return None, str(error)


def _list_folder(root):
    if not os.path.isdir(root):
        raise UserError(f"--image_dir={root} is not a directory; {NO_DATA_HINT}")
    class_names = sorted(
        d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    files, labels = [], []
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        try:
            names = os.listdir(folder)
        except OSError as error:
            raise UserError(f"the class folder {folder} cannot be read ({error.strerror}): "
                            "give this user read access to it, or remove it") from None
        for file in sorted(names):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(folder, file))
                labels.append(label)
    if not files:
        raise UserError(
            f"no .jpg/.png images found in class subfolders of {root}: expected "
            f"{root}/<class>/<image>.jpg, one subfolder per class"
        )
    return files, np.asarray(labels, np.int32), class_names


def load_image_folder(root, limit=None):
    """Loads `root/<class>/*.{jpg,png}` into memory as 32x32 RGB.

    Grayscale, RGBA or other sizes are converted with a warning; unreadable files are skipped
    and named in a warning; a folder with no readable image raises UserError.

    Args:
      root: folder with one subfolder per class; sorted subfolder names give labels 0, 1, ...
      limit: if set, read only the first `limit` files of each class (for quick runs).
    """
    files, labels, class_names = _list_folder(root)
    if limit is not None:
        keep = np.concatenate([np.flatnonzero(labels == c)[:limit] for c in range(len(class_names))])
        files, labels = [files[i] for i in keep], labels[keep]
    with warnings.catch_warnings(), concurrent.futures.ThreadPoolExecutor(
            max_workers=min(16, os.cpu_count() or 1)) as pool:
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        results = list(pool.map(_read_image, files, chunksize=256))
    unreadable = [(f, note) for f, (img, note) in zip(files, results) if img is None]
    converted = [(f, note) for f, (img, note) in zip(files, results) if img is not None and note]
    if unreadable:
        names = "; ".join(f"{f} ({note})" for f, note in unreadable[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        logging.warning("skipped %d unreadable image files: %s%s", len(unreadable), names, more)
    if converted:
        examples = "; ".join(f"{os.path.basename(f)}: {note}" for f, note in converted[:3])
        logging.warning("converted %d images to 32x32 RGB (e.g. %s)", len(converted), examples)
    ok = [i for i, (img, _) in enumerate(results) if img is not None]
    if not ok:
        raise UserError(f"none of the {len(files)} image files under {root} could be read")
    images = np.stack([results[i][0] for i in ok])
    return ImageSet(images, labels[ok], class_names, source=f"folder:{os.path.abspath(root)}")


def test_folder_beside(image_dir, remedy):
    """The `test` folder beside the training folder `image_dir` (cifar10/train ->
    cifar10/test); UserError, one line ending with `remedy`, when there is none."""
    folder = os.path.join(os.path.dirname(os.path.abspath(image_dir)), "test")
    if not os.path.isdir(folder):
        raise UserError(f"no 'test' folder beside --image_dir={image_dir}: {remedy}")
    return folder


def subset_indices(total, count, seed=0):
    """Indices of `count` of `total` images, a fixed seeded draw without replacement (all of
    them when `count >= total`). Use it, not the first `count`: a folder is read class by
    class, so its first 2,000 CIFAR-10 images are all airplanes and automobiles."""
    return np.random.default_rng(seed).permutation(total)[:count]


CIFAR10_HOST = "www.cs.toronto.edu"


def _tfds_prepared(builder):
    return os.path.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def _check_reachable(host, timeout=5.0):
    """Fails fast instead of letting tensorflow-datasets retry for minutes without a network."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"cannot reach {host}: {error}") from error


def load_tfds(split="train", data_dir=None):
    """Loads tensorflow-datasets `cifar10` into memory.

    With `data_dir` the prepared copy there is read and nothing is downloaded; without it
    tensorflow-datasets downloads and prepares CIFAR-10 on first use.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder("cifar10", data_dir=data_dir)
        if data_dir is None and not _tfds_prepared(builder):
            _check_reachable(CIFAR10_HOST)
            builder.download_and_prepare()
        batches = list(tfds.as_numpy(
            builder.as_dataset(split=split, as_supervised=True).batch(10000)))
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
    except Exception as error:  # tfds raises many kinds of download and file errors.
        where = f"from --data_dir={data_dir}" if data_dir else "by downloading it"
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise UserError(
            f"could not load CIFAR-10 {where} ({type(error).__name__}: {reason}); {NO_DATA_HINT}"
        ) from error
    names = builder.info.features["label"].names
    source = f"tfds:cifar10:{os.path.abspath(data_dir) if data_dir else 'default'}"
    return ImageSet(np.asarray(images, np.uint8), np.asarray(labels, np.int32), names, source)


def check_batch_size(data, batch_size):
    """Raises UserError unless the ImageSet `data` holds at least one batch of `batch_size`
    images (batches are cut with drop_remainder, so a smaller set never yields one)."""
    if len(data) < batch_size:
        raise UserError(
            f"--batch_size={batch_size} is larger than the data set ({len(data)} images in "
            f"{data.source}): pass --batch_size={len(data)} or less, or more images")


def load_training_data(config):
    """The training images a config asks for: --image_dir, else tensorflow-datasets."""
    if config.image_dir:
        data = load_image_folder(config.image_dir)
    else:
        data = load_tfds("train", config.data_dir)
    if len(data.class_names) > config.num_classes:
        raise UserError(
            f"the data has {len(data.class_names)} classes but --num_classes={config.num_classes}"
        )
    print(f"loaded {len(data)} training images in {len(data.class_names)} classes from "
          f"{data.source}", flush=True)
    return data


def make_dataset(data, batch_size, seed, start_batch=0, flip=True):
    """An endless tf.data pipeline of (images float32 in [-1, 1], int32 labels) batches.

    Every epoch is a fresh permutation fixed by (seed, epoch), batches are cut with
    `drop_remainder` across epoch boundaries, and random horizontal flips are fixed by
    (seed, batch index); so starting at `start_batch` gives exactly the batches a run that
    began at 0 saw from there on.
    """
    import tensorflow as tf

    check_batch_size(data, batch_size)
    n = len(data)
    images = tf.constant(data.images)
    labels = tf.constant(data.labels)
    first_epoch, offset = divmod(start_batch * batch_size, n)

    def epoch_order(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order)

    def gather(batch_index, indices):
        x = tf.cast(tf.gather(images, indices), tf.float32) / 127.5 - 1.0
        if flip:
            x = tf.image.stateless_random_flip_left_right(
                x, seed=tf.stack([tf.constant(seed + 1, tf.int64), batch_index]))
        return x, tf.gather(labels, indices)

    # No autotuning: deleting an autotuned iterator (the end of every run, or a trainer
    # garbage-collected) waits for tf.data's tuning thread to wake from its sleep, which grows
    # with the iterator's age (docs/performance.md). A fixed pipeline is fast enough: it
    # gathers batches from memory.
    options = tf.data.Options()
    options.autotune.enabled = False
    return (
        tf.data.Dataset.range(first_epoch, 2**62)
        .flat_map(epoch_order)
        .skip(offset)
        .batch(batch_size, drop_remainder=True)
        .enumerate(start=start_batch)
        .map(gather, num_parallel_calls=PIPELINE_THREADS)
        .prefetch(PREFETCH_BATCHES)
        .with_options(options)
    )
