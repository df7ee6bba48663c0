"""Experience replay for the discriminator: a ring buffer of past generated images.

Each D step, the first `count` images of the fresh fake batch are swapped for images drawn
uniformly from the buffer's filled rows (none while it is empty), then the whole fresh batch
is written into the buffer, overwriting its oldest rows. Labels travel with the images, so a
conditional D sees each replayed image with the label it was generated for.

The buffer is part of the training state (a `ReplayBuffer`), read and written with `keras.ops`,
so one implementation serves every backend. Under a TensorFlow strategy every replica writes
the fakes of the whole global batch (`BackendOps.gather`), so their buffers stay identical and
hold what one device's would.
"""

from typing import Any, NamedTuple

from keras import ops


class ReplayBuffer(NamedTuple):
    """The replay buffer of the training state (a pytree of arrays)."""

    images: Any  # [size, 32, 32, 3] float32: past fakes
    labels: Any  # [size] int32: the labels they were generated for
    position: Any  # int32 scalar: the row the next batch is written from
    filled: Any  # int32 scalar: how many rows hold images


def empty(size):
    """A buffer of `size` rows holding nothing yet."""
    return ReplayBuffer(images=ops.zeros((size, 32, 32, 3)), labels=ops.zeros((size,), "int32"),
                        position=ops.zeros((), "int32"), filled=ops.zeros((), "int32"))


def replay_count(fraction, batch):
    """How many images of a fake batch of `batch` images come from the buffer. Under
    --distribute, `batch` is a replica's slice: each replica replays that fraction of its own."""
    return int(round(fraction * batch))


def mix(fresh, fresh_labels, buffer, buffer_labels, filled, position, count):
    """The fake batch D sees: rows < `count` from the buffer once it holds anything.

    Args:
        fresh, fresh_labels: the generated batch [B, H, W, C] and its labels [B].
        buffer, buffer_labels: the buffer [S, H, W, C] and labels [S].
        filled: how many buffer rows hold images (scalar).
        position: uniform draws [B] in [0, 1); row i reads buffer row floor(position[i] *
            filled), uniform over the filled rows.
        count: number of rows to replace.

    Returns:
        (images, labels, replayed): replayed is a float mask [B], 1 where a row came from the
        buffer.
    """
    batch = fresh.shape[0]
    filled_rows = ops.maximum(ops.cast(filled, "int32"), 1)
    rows = ops.minimum(ops.cast(ops.floor(ops.cast(position, "float32")
                                          * ops.cast(filled_rows, "float32")), "int32"),
                       filled_rows - 1)
    replayed = ops.logical_and(ops.arange(batch) < count, ops.cast(filled, "int32") > 0)
    images = ops.where(replayed[:, None, None, None], ops.take(buffer, rows, axis=0), fresh)
    labels = ops.where(replayed, ops.take(buffer_labels, rows, axis=0),
                       ops.cast(fresh_labels, buffer_labels.dtype))
    return images, labels, ops.cast(replayed, "float32")


def write_rows(position, batch, size):
    """Buffer rows a batch is written to, starting at `position`, wrapping around: [batch]."""
    return ops.mod(ops.cast(position, "int32") + ops.arange(batch, dtype="int32"), size)


def advance(position, filled, batch, size):
    """(next write position, rows filled) after writing one batch."""
    position = ops.mod(ops.cast(position, "int32") + batch, size)
    return position, ops.minimum(ops.cast(filled, "int32") + batch, size)


def write(buffer, fresh, fresh_labels, size):
    """The `ReplayBuffer` after writing a generated batch (no gradient) over its oldest rows."""
    rows = write_rows(buffer.position, fresh.shape[0], size)[:, None]
    position, filled = advance(buffer.position, buffer.filled, fresh.shape[0], size)
    return ReplayBuffer(
        images=ops.scatter_update(buffer.images, rows, ops.stop_gradient(fresh)),
        labels=ops.scatter_update(buffer.labels, rows, ops.cast(fresh_labels, buffer.labels.dtype)),
        position=position, filled=filled)
