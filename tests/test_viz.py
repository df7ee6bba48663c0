"""Image grids and labelled per-class rows."""

import numpy as np

from tfgan_cifar.viz import grids


def _images(n, size=4):
    """n images in [-1, 1], image i filled with the value -1 + 2i/(n-1)."""
    values = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    return np.broadcast_to(values[:, None, None, None], (n, size, size, 3)).copy()


def test_to_uint8_maps_the_generator_range_and_clips():
    out = grids.to_uint8(np.array([-2.0, -1.0, 0.0, 1.0, 3.0]))
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255])


def test_image_grid_places_images_row_by_row_between_padding():
    grid = grids.image_grid(_images(6), 2, 3, padding=1, pad_value=7)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3) and grid.dtype == np.uint8
    assert (grid[0] == 7).all() and (grid[:, 0] == 7).all()
    expected = grids.to_uint8(np.linspace(-1.0, 1.0, 6))
    for i, value in enumerate(expected):
        r, c = divmod(i, 3)
        tile = grid[1 + 5 * r:5 + 5 * r, 1 + 5 * c:5 + 5 * c]
        assert (tile == value).all()


def test_labelled_rows_writes_each_label_in_its_row_in_readable_letters():
    images = np.full((3 * 5, 32, 32, 3), 1.0, np.float32)  # white samples: only labels are dark
    picture = grids.labelled_rows(images, 3, 5, ["airplane", "automobile", "bird"])
    grid = grids.image_grid(images, 3, 5)
    height, width = grid.shape[0] * 2, grid.shape[1] * 2
    assert picture.shape[0] == height
    label_width = picture.shape[1] - width
    np.testing.assert_array_equal(picture[:, label_width:], np.kron(grid, np.ones((2, 2, 1))))

    dark = (picture[:, :label_width] < 128).any(axis=(1, 2))
    row_height = height / 3
    for r in range(3):
        band = dark[int(r * row_height):int((r + 1) * row_height)]
        assert band.sum() >= row_height / 5, f"label of row {r} is missing or tiny"
        assert not band[:2].any() and not band[-2:].any(), "label spills into the next row"

    short = grids.labelled_rows(images, 3, 5, ["a", "b", "c"])
    assert short.shape[1] - width < label_width  # the margin fits the longest label
