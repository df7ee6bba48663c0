"""Image folders and tensorflow-datasets into memory, and the resumable tf.data pipeline."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from tfgan_cifar import data
from tfgan_cifar.errors import UserError


def make_folder(root, classes=("cat", "airplane", "dog"), per_class=4, size=32, mode="RGB"):
    """Writes images whose pixel value encodes (class index, image index)."""
    for c, name in enumerate(sorted(classes)):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            value = 20 * c + i
            image = Image.new(mode, (size, size), value if mode == "L" else (value,) * 3)
            image.save(root / name / f"{i:04d}.png")
    return root


def test_folder_gives_minus_one_to_one_floats_and_sorted_class_labels(tmp_path):
    folder = make_folder(tmp_path / "train")
    loaded = data.load_image_folder(str(folder))
    assert loaded.class_names == ["airplane", "cat", "dog"]
    assert loaded.images.shape == (12, 32, 32, 3) and loaded.images.dtype == np.uint8
    np.testing.assert_array_equal(loaded.labels, np.repeat([0, 1, 2], 4))
    # Pixel value 20 * class + index survives the round trip, so labels match their images.
    np.testing.assert_array_equal(loaded.images[:, 0, 0, 0], 20 * loaded.labels + np.tile(
        np.arange(4), 3))

    batches = data.make_dataset(loaded, batch_size=5, seed=0, flip=False)
    images, labels = next(iter(batches))
    images, labels = images.numpy(), labels.numpy()
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    pixel = np.round((images[:, 0, 0, 0] + 1) * 127.5).astype(int)
    np.testing.assert_array_equal(pixel // 20, labels)
    # Not autotuned: deleting an autotuned iterator waits for tf.data's tuning thread, which
    # sleeps up to a minute (a stall at the end of each run, 11 s measured after 30 s of use).
    assert batches.options().autotune.enabled is False


def test_grayscale_and_other_sizes_are_converted_with_a_warning(tmp_path, caplog):
    make_folder(tmp_path / "gray", classes=("a",), per_class=2, size=64, mode="L")
    with caplog.at_level("WARNING"):
        loaded = data.load_image_folder(str(tmp_path / "gray"))
    assert loaded.images.shape == (2, 32, 32, 3)
    assert np.all(loaded.images[0] == loaded.images[0, 0, 0, 0])  # gray -> equal RGB channels
    assert "converted 2 images to 32x32 RGB" in caplog.text


def test_unreadable_files_are_named_and_skipped(tmp_path, caplog):
    folder = make_folder(tmp_path / "train", classes=("a",), per_class=2)
    (folder / "a" / "broken.jpg").write_bytes(b"not an image")
    with caplog.at_level("WARNING"):
        loaded = data.load_image_folder(str(folder))
    assert len(loaded) == 2
    assert "broken.jpg" in caplog.text


@pytest.mark.parametrize("setup,message", [
    (lambda root: None, "is not a directory"),
    (lambda root: os.makedirs(root / "cls"), "no .jpg/.png images found"),
    (lambda root: (os.makedirs(root / "cls"), (root / "cls" / "x.png").write_bytes(b"junk")),
     "could be read"),
])
def test_empty_or_unreadable_folder_is_one_clear_error(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(UserError, match=message) as error:
        data.load_image_folder(str(root))
    assert "\n" not in str(error.value)


def test_tfds_path_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        loaded = data.load_tfds("train", data_dir=str(tmp_path))
    assert loaded.images.shape == (12, 32, 32, 3) and loaded.images.dtype == np.uint8
    assert loaded.labels.shape == (12,) and set(loaded.labels) <= set(range(10))
    batch, labels = next(iter(data.make_dataset(loaded, 4, seed=1)))
    assert batch.shape == (4, 32, 32, 3) and labels.shape == (4,)


def test_no_network_and_no_flags_names_both_flags(monkeypatch):
    def unreachable(host, timeout=5.0):
        raise ConnectionError(f"cannot reach {host}")

    monkeypatch.setattr(data, "_check_reachable", unreachable)
    monkeypatch.setattr(data, "_tfds_prepared", lambda builder: False)
    with pytest.raises(UserError) as error:
        data.load_tfds("train")
    message = str(error.value)
    assert "--image_dir" in message and "--data_dir" in message and "\n" not in message


def test_missing_tfds_copy_names_both_flags(tmp_path):
    with pytest.raises(UserError) as error:
        data.load_tfds("train", data_dir=str(tmp_path))
    assert "--image_dir" in str(error.value) and "--data_dir" in str(error.value)


def _take(dataset, n):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]


def test_pipeline_resumes_on_the_exact_batch_and_reshuffles_each_epoch(tmp_path):
    loaded = data.load_image_folder(str(make_folder(tmp_path / "t", per_class=5)))  # 15 images
    full = _take(data.make_dataset(loaded, 4, seed=3), 10)
    resumed = _take(data.make_dataset(loaded, 4, seed=3, start_batch=6), 4)
    for (x1, y1), (x2, y2) in zip(full[6:], resumed):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # 10 batches of 4 cover 40 draws: every image appears 2 or 3 times, none more.
    counts = np.bincount(np.concatenate([
        np.round((x[:, 0, 0, 0] + 1) * 127.5).astype(int) for x, _ in full]))
    assert counts[counts > 0].min() >= 2 and counts.max() <= 3
    other_seed = _take(data.make_dataset(loaded, 4, seed=4), 1)
    assert not np.array_equal(full[0][1], other_seed[0][1]) or not np.array_equal(
        full[0][0], other_seed[0][0])


def test_flip_mirrors_some_images(tmp_path):
    root = tmp_path / "f" / "a"
    os.makedirs(root)
    gradient = np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (32, 1, 3))
    for i in range(8):
        Image.fromarray(gradient).save(root / f"{i}.png")
    loaded = data.load_image_folder(str(tmp_path / "f"))
    x, _ = next(iter(data.make_dataset(loaded, 8, seed=0, flip=True)))
    left_gt_right = (x.numpy()[:, 0, 0, 0] > x.numpy()[:, 0, -1, 0])
    assert 0 < left_gt_right.sum() < 8
    x, _ = next(iter(data.make_dataset(loaded, 8, seed=0, flip=False)))
    assert not np.any(x.numpy()[:, 0, 0, 0] > x.numpy()[:, 0, -1, 0])


def test_batch_larger_than_data_is_a_clear_error(tmp_path):
    loaded = data.load_image_folder(str(make_folder(tmp_path / "t", per_class=1)))
    with pytest.raises(UserError, match="--batch_size=8 is larger"):
        data.make_dataset(loaded, 8, seed=0)
