"""InceptionV3 features for FID and KID: Keras's InceptionV3 (ImageNet weights, no top,
average pooling) as a function of images in [-1, 1], from a download or a local weights file.
Not the network of published FIDs: that is `inception_2015` (`--fid_network=standard`).
"""

import os

import keras
import numpy as np

from tfgan_cifar.errors import UserError, one_line
from tfgan_cifar.metrics import preprocess

INPUT_SIZE = 299


FEATURES = 2048


class InceptionWeightsUnavailable(Exception):
    """The ImageNet weights could not be downloaded and no local file was given."""


class BadInceptionWeights(UserError, ValueError):
    """--inception_weights names no file, or one that is not InceptionV3 notop weights: a
    UserError, so entry points report it in one line."""


class FeatureExtractor:
    """InceptionV3 (no top, average pooling) as a function: images in [-1, 1] -> features."""

    def __init__(self, weights_path=None, batch_size=50, resize_method="bilinear"):
        """Builds the network.

        Args:
            weights_path: a local InceptionV3 notop weights file (`*.h5` for the Keras 2 /
                ImageNet release, `*.weights.h5` for Keras 3 `save_weights`), or None to use
                the ImageNet weights from the Keras cache, downloading them if needed.
            batch_size: images per forward pass.
            resize_method: `keras.ops.image.resize` interpolation used to reach 299x299.

        Raises:
            InceptionWeightsUnavailable: weights_path is None and the download failed.
            BadInceptionWeights (a UserError and a ValueError): weights_path is not a file,
                or not loadable InceptionV3 notop weights.
        """
        if weights_path is not None:
            weights_path = os.path.expanduser(str(weights_path))
            if not os.path.isfile(weights_path):
                raise BadInceptionWeights(
                    f"--inception_weights={weights_path} is not a file: pass the path of a "
                    "local InceptionV3 notop weights file, or leave the flag out to download them")
        try:
            self.model = keras.applications.InceptionV3(
                include_top=False, weights=weights_path or "imagenet", pooling="avg",
                input_shape=(INPUT_SIZE, INPUT_SIZE, 3))
        except Exception as error:  # downloads and loaders raise many kinds of errors
            if weights_path is None:
                raise InceptionWeightsUnavailable(
                    f"could not download the InceptionV3 ImageNet weights ({one_line(error)}); "
                    "FID/KID evaluation needs them: pass --inception_weights=PATH, a local "
                    "InceptionV3 notop .h5 / .weights.h5 file") from error
            raise BadInceptionWeights(
                f"--inception_weights={weights_path} is not loadable InceptionV3 notop weights "
                f"({one_line(error)}): pass the notop .h5 file of the Keras 2 release, or a "
                "*.weights.h5 file written by Keras 3 save_weights (Keras reads *.h5 as Keras 2 "
                "files, *.weights.h5 as Keras 3 files)") from error
        self.batch_size = int(batch_size)
        self.resize_method = resize_method
        if weights_path is None:
            weights = "imagenet"
        else:
            stat = os.stat(weights_path)
            weights = {"path": os.path.abspath(weights_path), "bytes": stat.st_size,
                       "mtime": int(stat.st_mtime)}
        self.cache_key = {"weights": weights, "resize": resize_method, "size": INPUT_SIZE,
                          "input": "uint8"}

    def __call__(self, images):
        """Features of a batch of images.

        Args:
            images: array (N, H, W, 3) of floats in [-1, 1], any H and W; rounded to uint8
                pixels first, as the reference FID code stores generated images.

        Returns:
            float64 array (N, 2048).
        """
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
        if images.size and (images.min() < -1.001 or images.max() > 1.001):
            raise ValueError(f"expected images in [-1, 1], got values in [{images.min():.3g}, "
                             f"{images.max():.3g}] (map [0, 255] with x / 127.5 - 1)")
        images = preprocess.to_uint8(images).astype(np.float32) / 127.5 - 1.0
        features = [np.zeros((0, FEATURES))]
        for start in range(0, len(images), self.batch_size):
            x = keras.ops.image.resize(images[start:start + self.batch_size],
                                       (INPUT_SIZE, INPUT_SIZE), interpolation=self.resize_method)
            x = keras.ops.clip(x, -1.0, 1.0)  # bicubic and lanczos overshoot
            features.append(np.asarray(self.model.predict_on_batch(x), np.float64))
        return np.concatenate(features)
