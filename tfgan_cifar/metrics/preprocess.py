"""The images FID networks see, prepared as the reference implementations prepare them:
uint8 pixels (generated images rounded first), TensorFlow 1's bilinear resize
(`tf.image.resize_bilinear(align_corners=False)`, which had no half-pixel centres and clamps at
the border), and the standard network's input scale `x / 128 - 1`.
"""

import keras
import numpy as np


def to_uint8(images):
    """Images as uint8 pixels, as the reference FID code stores generated images.

    Args:
        images: uint8 array (returned as is), or floats in [-1, 1], mapped by
            `(x + 1) * 127.5`, rounded to the nearest integer and clipped to [0, 255] (so
            `x / 127.5 - 1` of uint8 pixels comes back unchanged).

    Returns:
        uint8 array of the same shape.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def legacy_resize_matrix(in_size, out_size):
    """The (out_size, in_size) float32 matrix of TF1's legacy bilinear resize along one axis.

    Output pixel j samples the input at `j * in_size / out_size` (no half-pixel centres),
    between input pixels floor(s) and min(floor(s) + 1, in_size - 1) (the border clamp).
    """
    source = np.arange(out_size, dtype=np.float64) * (in_size / out_size)
    lower = np.floor(source).astype(np.int64)
    upper = np.minimum(lower + 1, in_size - 1)
    weight = source - lower
    matrix = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, lower), 1.0 - weight)
    np.add.at(matrix, (rows, upper), weight)
    return matrix.astype(np.float32)


def legacy_resize(images, size):
    """TF1's legacy bilinear resize of NHWC images to (size, size), with keras.ops.

    Exact as two small matrix products, one per axis (bilinear interpolation is separable).

    Args:
        images: (N, H, W, C) float tensor or array.
        size: the output height and width.

    Returns:
        (N, size, size, C) tensor of images' dtype.
    """
    height, width = images.shape[1], images.shape[2]
    dtype = keras.backend.standardize_dtype(images.dtype)
    rows = keras.ops.convert_to_tensor(legacy_resize_matrix(height, size), dtype)
    columns = keras.ops.convert_to_tensor(legacy_resize_matrix(width, size), dtype)
    images = keras.ops.einsum("oh,nhwc->nowc", rows, images)
    return keras.ops.einsum("pw,nowc->nopc", columns, images)


def standard_scale(pixels):
    """The standard network's input range: [0, 255] -> [-1, 0.9921875] by `x / 128 - 1`."""
    return pixels / 128.0 - 1.0
