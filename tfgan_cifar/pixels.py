"""Pixel scales: uint8 images in [0, 255] and the float images in [-1, 1] that the networks,
the metrics and the classifiers take."""

import numpy as np


def to_float(images):
    """uint8 images (NumPy or JAX arrays) as float32 in [-1, 1]."""
    return images.astype(np.float32) / 127.5 - 1.0


def to_uint8(images):
    """Float images in [-1, 1] as uint8 in [0, 255] (values outside are clipped)."""
    images = np.asarray(images, np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
