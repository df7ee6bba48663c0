"""Image grids: generated batches in [-1, 1] -> uint8 mosaics and PNG files."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tfgan_cifar.atomic import replacing
from tfgan_cifar.pixels import to_uint8


def image_grid(images, rows, cols, padding=2, pad_value=255):
    """Tiles `rows * cols` images (N x H x W x 3, float in [-1, 1] or uint8) into one uint8 image.

    Returns an array of shape (rows * (H + padding) + padding, cols * (W + padding) + padding, 3).
    """
    images = images if np.asarray(images).dtype == np.uint8 else to_uint8(images)
    count, height, width, channels = images.shape
    if count < rows * cols:
        raise ValueError(f"need {rows * cols} images for a {rows}x{cols} grid, got {count}")
    grid = np.full(
        (rows * (height + padding) + padding, cols * (width + padding) + padding, channels),
        pad_value, np.uint8,
    )
    for index in range(rows * cols):
        r, c = divmod(index, cols)
        top, left = padding + r * (height + padding), padding + c * (width + padding)
        grid[top:top + height, left:left + width] = images[index]
    return grid


def save_png(array, path, scale=1):
    """Writes a uint8 HxWx3 array as PNG atomically, optionally upscaled (nearest) by `scale`."""
    image = Image.fromarray(np.asarray(array, np.uint8))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    with replacing(path, "wb") as f:
        image.save(f, format="PNG")
    return path


def labelled_rows(images, rows, cols, row_labels, scale=2):
    """A grid with one row per label (e.g. one class per row), the label written at its left
    in letters a third of a row high, so they stay readable wherever the picture is shrunk."""
    grid = image_grid(images, rows, cols)
    grid = np.asarray(Image.fromarray(grid).resize(
        (grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST))
    row_height = grid.shape[0] / rows
    font = ImageFont.load_default(size=max(10, round(row_height / 3)))
    labels = [str(label) for label in row_labels[:rows]]
    margin = round(row_height / 8)
    label_width = int(max((font.getlength(label) for label in labels), default=0)) + 2 * margin
    canvas = Image.new("RGB", (grid.shape[1] + label_width, grid.shape[0]), "white")
    canvas.paste(Image.fromarray(grid), (label_width, 0))
    draw = ImageDraw.Draw(canvas)
    for r, label in enumerate(labels):
        draw.text((label_width - margin, (r + 0.5) * row_height), label, fill="black", font=font,
                  anchor="rm")
    return np.asarray(canvas)
