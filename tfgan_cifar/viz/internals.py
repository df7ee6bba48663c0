"""What is inside the networks: SAGAN's attention maps and the weights of G and D.
"""

import textwrap

import numpy as np
from matplotlib import colormaps, ticker

from tfgan_cifar.viz.figure_files import new_figure, save_figure

MAX_FILTERS = 256  # plot_weights shows at most this many first-layer filters


def _grid_shape(positions, aspect):
    """(rows, cols) of a map with `positions` cells and the height/width ratio `aspect`."""
    rows = int(round(np.sqrt(positions * aspect)))
    if rows < 1 or positions % rows:
        raise ValueError(f"cannot lay {positions} attention positions out as a grid")
    return rows, positions // rows


def _attention_figure(image, attention, query_points):
    picture = np.asarray(image, np.float32)
    picture = np.clip((picture.squeeze(-1) if picture.shape[-1] == 1 else picture) + 1, 0, 2) / 2
    attention = np.asarray(attention, np.float32)
    if attention.ndim != 2:
        raise ValueError(f"attention must be (queries, keys), got shape {attention.shape}")
    height, width = picture.shape[:2]
    query_shape = _grid_shape(attention.shape[0], height / width)
    key_shape = _grid_shape(attention.shape[1], height / width)

    def to_pixels(row, col):  # centre of a query cell in image coordinates
        return ((col + 0.5) * width / query_shape[1] - 0.5,
                (row + 0.5) * height / query_shape[0] - 0.5)

    colors = colormaps["tab10"](np.arange(len(query_points)) % 10)
    fig = new_figure((2.2 * (len(query_points) + 1), 2.6))
    axes = fig.subplots(1, len(query_points) + 1, squeeze=False)[0]
    cmap = None if picture.ndim == 3 else "gray"
    axes[0].imshow(picture, cmap=cmap, interpolation="nearest")
    axes[0].set_title(f"queries ({query_shape[0]}x{query_shape[1]} map)", fontsize=8)
    for ax, (row, col), color in zip(axes[1:], query_points, colors):
        x, y = to_pixels(row, col)
        axes[0].scatter([x], [y], color=[color], s=40, edgecolors="white", linewidths=1)
        weights = attention[row * query_shape[1] + col].reshape(key_shape)
        ax.imshow(picture, cmap=cmap, interpolation="nearest")
        ax.imshow(weights, cmap="inferno", alpha=0.65, interpolation="nearest",
                  extent=(-0.5, width - 0.5, height - 0.5, -0.5))  # upsampled to the image
        ax.scatter([x], [y], color=[color], s=40, edgecolors="white", linewidths=1)
        ax.set_title(f"query ({row},{col}), max {weights.max():.3f}", fontsize=8, color=color)
    for ax in axes:
        ax.set_axis_off()
    return fig


def attention_figure_array(image, attention, query_points):
    """The plot_attention figure rendered into a uint8 (H, W, 3) array, e.g. for TensorBoard."""
    fig = _attention_figure(image, attention, query_points)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def plot_attention(image, attention, query_points, path):
    """Image with the query points, then per query its attention weights as a heat map.

    Args:
      image: (H, W, 3) in [-1, 1].
      attention: (queries, keys) weights; rows are query positions of the attention map in
        row-major order, columns the attended positions (shown upsampled to H x W).
      query_points: (row, col) pairs in attention-map coordinates.
      path: the PNG to write.

    Returns:
      `path` as a string.
    """
    return save_figure(_attention_figure(image, attention, query_points), path)


def _owner_layers(model):
    """{id(variable): layer} for the layers nested in `model` (innermost owner wins)."""
    from tfgan_cifar.nn.base import nested_layers

    owners = {}
    for layer in nested_layers(model):
        for variable in layer.weights:
            owners[id(variable)] = layer
    return owners


def first_layer_filters(model):
    """The first 4-D kernel of `model` as filters, or None if it has none.

    Conv kernels are (kh, kw, in, out), transposed-conv kernels (kh, kw, out, in); the owning
    layer's class (or, failing that, the variable path) tells which.

    Returns:
      (variable path, kernel shape, filters): filters is (out, kh, kw, 3) when there are 3 input
      channels, else (out, kh, kw, 1), the mean over the input channels.
    """
    import keras

    variable = next((v for v in model.weights if len(v.shape) == 4), None)
    if variable is None:
        return None
    kernel = keras.ops.convert_to_numpy(variable)
    owner = _owner_layers(model).get(id(variable))
    transposed = ("Transpose" in type(owner).__name__ if owner is not None
                  else "transpose" in variable.path.lower())
    filters = np.moveaxis(kernel, 2 if transposed else 3, 0)  # (out, kh, kw, in)
    filters = filters if filters.shape[-1] == 3 else filters.mean(axis=-1, keepdims=True)
    return variable.path, tuple(kernel.shape), filters


def filter_mosaic(filters, cols, border=1):
    """Tiles (n, kh, kw, c) filters into one image, `cols` tiles a row.

    Each filter is normalised to [0, 1] on its own; tiles are `border` pixels apart on white.

    Returns:
      (rows * (kh + border) - border, cols * (kw + border) - border, c) float array.
    """
    n, kh, kw, channels = filters.shape
    rows = int(np.ceil(n / cols))
    mosaic = np.ones((rows * (kh + border) - border, cols * (kw + border) - border, channels))
    low = filters.min(axis=(1, 2, 3), keepdims=True)
    scaled = (filters - low) / (np.ptp(filters, axis=(1, 2, 3), keepdims=True) + 1e-12)
    for i, tile in enumerate(scaled):
        top, left = (i // cols) * (kh + border), (i % cols) * (kw + border)
        mosaic[top:top + kh, left:left + kw] = tile
    return mosaic


def plot_weights(model, path_prefix):
    """First-layer filters as images and histograms of the weight tensors of a Keras model.

    Writes `<path_prefix>_filters.png` (if the model has a 4-D kernel: each output filter's
    kh x kw patch, see `first_layer_filters`, each normalised to [0, 1]) and
    `<path_prefix>_histograms.png` (every weight tensor with more than one value except the
    spectral-norm power-iteration vectors `sn_u`).

    Returns:
      The paths written.
    """
    import keras

    written = []
    first = first_layer_filters(model)
    if first is not None:
        name, shape, filters = first
        count = min(len(filters), MAX_FILTERS)
        cols = int(np.ceil(np.sqrt(count)))
        rows = int(np.ceil(count / cols))
        mosaic = filter_mosaic(filters[:count], cols)
        fig = new_figure((max(cols * 0.55, 4), rows * 0.55 + 0.5))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.imshow(mosaic if mosaic.shape[-1] == 3 else mosaic[..., 0], cmap="gray", vmin=0,
                  vmax=1, interpolation="nearest")
        shown = f"first {count} of {len(filters)}" if count < len(filters) else f"{count}"
        channels = int(np.prod(shape)) // (len(filters) * shape[0] * shape[1])
        colour = "RGB" if filters.shape[-1] == 3 else f"grey: mean of {channels} input channels"
        fig.suptitle(f"{name} {shape}:\n{shown} filters ({colour})", fontsize=9)
        written.append(save_figure(fig, f"{path_prefix}_filters.png"))
    weights = [(v.path, keras.ops.convert_to_numpy(v)) for v in model.weights
               if int(np.prod(v.shape)) > 1 and not v.path.endswith("sn_u")]
    if weights:
        cols = min(4, len(weights))
        rows = int(np.ceil(len(weights) / cols))
        fig = new_figure((cols * 3, rows * 2.2 + 0.4))
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (name, values) in zip(axes, weights):
            # One step artist per panel and few ticks: ax.hist's 50 patches and the default
            # tick labels made layout the slowest part of evaluate.py --weights.
            counts, edges = np.histogram(values.ravel(), bins=50)
            ax.stairs(counts, edges, fill=True, color="tab:blue")
            ax.set_title("\n".join(textwrap.wrap(f"{name} {values.shape}", 40)), fontsize=7)
            ax.xaxis.set_major_locator(ticker.MaxNLocator(3))
            ax.yaxis.set_major_locator(ticker.MaxNLocator(2))
            ax.tick_params(labelsize=6)
        for ax in axes[len(weights):]:
            ax.set_axis_off()
        fig.suptitle(f"{model.name}: weight histograms", fontsize=10)
        written.append(save_figure(fig, f"{path_prefix}_histograms.png"))
    return written


def default_query_points(resolution):
    """Four query pixels spread over an attention map of side `resolution`."""
    q = resolution // 4
    return [(q, q), (q, 3 * q), (3 * q, q), (3 * q, 3 * q)]
