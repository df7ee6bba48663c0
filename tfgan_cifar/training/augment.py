"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

D sees every image, real or fake, through a random augmentation T that is differentiable with
respect to the image, so G's gradient flows through it: D(x) becomes D(T(x)) in the D and G
steps alike. The operations and their ranges are those of the authors' code
(github.com/mit-han-lab/data-efficient-gans, DiffAugment_tf.py), for images in [-1, 1]:

    color        brightness + U[-0.5, 0.5), then saturation x U[0, 2) around each pixel's
                 channel mean, then contrast x U[0.5, 1.5) around the image's mean
    translation  a shift of up to 1/8 of the height and of the width (integers in [-4, 4] at
                 32x32), the uncovered border filled with zeros
    cutout       one square of half the height and width (16x16) set to zero, centred on an
                 integer offset in [0, 32] of each axis, clipped at the border

Each image has its own parameters. The random numbers are inputs, uniforms in [0, 1) (see
`draw_count`), so the same draws give the same images on every backend; the functions use
`keras.ops` only and static shapes, so they compile under `jit` and `tf.function`.
"""

from keras import ops


def draw_count(policy):
    """How many uniforms one image needs under `policy` (names from AUGMENTATIONS)."""
    return sum(AUGMENTATIONS[name][1] for name in policy)


def augment(images, policy, uniforms):
    """The augmented images T(images), differentiable with respect to `images`.

    Args:
        images: [B, H, W, C] floats in [-1, 1] (the result may leave that range, as the
            authors' does).
        policy: names from AUGMENTATIONS; they are applied in AUGMENTATIONS' order.
        uniforms: [B, draw_count(policy)] floats in [0, 1): each policy's columns in
            AUGMENTATIONS' order.
    """
    column = 0
    for name, (function, count) in AUGMENTATIONS.items():
        if name in policy:
            images = function(images, uniforms[:, column:column + count])
            column += count
    return images


def _per_image(values):
    """[B] -> [B, 1, 1, 1], to broadcast over an image batch."""
    return ops.reshape(values, (-1, 1, 1, 1))


def integers(uniforms, low, high):
    """Uniforms in [0, 1) mapped to integers in [low, high), equally likely (int32)."""
    count = high - low
    # float32 rounding can make u * count equal count for u just below 1.
    return ops.cast(ops.minimum(ops.floor(uniforms * count), count - 1), "int32") + low


def color(images, uniforms):
    """Brightness, saturation and contrast, from uniforms [B, 3]."""
    images = images + _per_image(uniforms[:, 0] - 0.5)
    mean = ops.mean(images, axis=3, keepdims=True)
    images = (images - mean) * _per_image(uniforms[:, 1] * 2.0) + mean
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) * _per_image(uniforms[:, 2] + 0.5) + mean


def translation_shifts(uniforms, size):
    """Shifts [B] in [-size // 8, size // 8] along one axis of `size` pixels."""
    shift = size // 8
    return integers(uniforms, -shift, shift + 1)


def _shift(images, shifts, axis):
    """out[i] = images[i + shift] along `axis` (1: rows, 2: columns), zero outside: a gather,
    so the gradient is the upstream gradient shifted back."""
    size = images.shape[axis]
    positions = ops.arange(size, dtype="int32")[None, :] + shifts[:, None]  # [B, size]
    inside = ops.cast(ops.logical_and(positions >= 0, positions < size), images.dtype)
    positions = ops.clip(positions, 0, size - 1)
    shape = (-1, size, 1, 1) if axis == 1 else (-1, 1, size, 1)
    gathered = ops.take_along_axis(
        images, ops.broadcast_to(ops.reshape(positions, shape), ops.shape(images)), axis=axis)
    return gathered * ops.reshape(inside, shape)


def translation(images, uniforms):
    """Translation by up to 1/8 of each side with zero fill, from uniforms [B, 2] (rows,
    columns): pixel (i, j) of the result is pixel (i + dy, j + dx) of the image."""
    height, width = images.shape[1], images.shape[2]
    images = _shift(images, translation_shifts(uniforms[:, 0], height), axis=1)
    return _shift(images, translation_shifts(uniforms[:, 1], width), axis=2)


def cutout_offsets(uniforms, size):
    """Centres [B] of the cut square along one axis of `size` pixels: integers in
    [0, size + 1 - (size // 2) % 2), as the authors draw them."""
    return integers(uniforms, 0, size + 1 - (size // 2) % 2)


def cutout(images, uniforms):
    """Zeroes one square of half the height and width per image, from uniforms [B, 2] (rows,
    columns): rows [cy - h/4, cy + h/4) and columns [cx - w/4, cx + w/4), where they exist."""
    masks = []
    for axis, column in ((1, 0), (2, 1)):
        size = images.shape[axis]
        side = size // 2
        start = cutout_offsets(uniforms[:, column], size)[:, None] - side // 2  # [B, 1]
        position = ops.arange(size, dtype="int32")[None, :]
        masks.append(ops.logical_and(position >= start, position < start + side))
    cut = ops.logical_and(masks[0][:, :, None], masks[1][:, None, :])  # [B, H, W]
    return images * ops.cast(ops.logical_not(cut), images.dtype)[..., None]


# name: (function, uniforms it takes per image), in the order they are applied.
AUGMENTATIONS = {"color": (color, 3), "translation": (translation, 2), "cutout": (cutout, 2)}
