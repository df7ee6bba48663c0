"""Figures of a run: FID, loss and classifier curves, attention maps, weight images.

Curves read the records of `<run_dir>/metrics.jsonl` ({"kind": "train" | "eval", "step": ...}).
Figures are built on `matplotlib.figure.Figure` with the Agg canvas (no pyplot, no display, no
global backend switch) and written atomically, so a kill never leaves a half-written PNG.
"""

import json
import os
import sys
import textwrap

import numpy as np
from absl import logging
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from tfgan_cifar.atomic import replacing

MAX_FILTERS = 256  # plot_weights shows at most this many first-layer filters


def _figure(figsize):
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, dpi=100):
    """Writes `fig` as PNG to `path` via a temporary file in the same folder, then closes it.

    Returns:
      `path` as a string.
    """
    path = os.fspath(path)
    try:
        with replacing(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        if "matplotlib.pyplot" in sys.modules:  # a pyplot figure would otherwise stay registered
            sys.modules["matplotlib.pyplot"].close(fig)
    return path


def _latest(records):
    """The last record per (kind, step), ordered by step (stable for equal steps)."""
    latest = {}
    for r in records:
        if isinstance(r.get("step"), int):
            latest[(r.get("kind"), r["step"])] = r
    return sorted(latest.values(), key=lambda r: r["step"])


def read_metrics(path):
    """Reads `metrics.jsonl`: skips invalid lines (a kill mid-write), keeps the last per step.

    Args:
      path: the metrics.jsonl file.

    Returns:
      The records (dicts with at least "kind" and "step"), one per (kind, step), sorted by step;
      [] when the file does not exist.
    """
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                    raise ValueError("not a record with an integer step")
            except ValueError as error:
                logging.warning("%s:%d: skipped an unreadable line (%s): %.80r", path, number,
                                error, line)
                continue
            records.append(record)
    return _latest(records)


def _series(records, key, kind=None):
    """(steps, values) of the records holding a non-null `key` (of `kind`, if given)."""
    points = {r["step"]: r[key] for r in records
              if r.get(key) is not None and (kind is None or r.get("kind") == kind)}
    steps = sorted(points)
    return np.asarray(steps, np.int64), np.asarray([points[s] for s in steps], np.float64)


def best_eval(records, key="fid"):
    """The eval record with the lowest `key` (after de-duplication by step), or None."""
    evals = [r for r in _latest(records) if r.get("kind") == "eval" and r.get(key) is not None]
    return min(evals, key=lambda r: r[key]) if evals else None


def _fid_label(evals):
    counts = sorted({r["num_samples"] for r in evals if r.get("num_samples")})
    samples = "?" if not counts else str(counts[0]) if len(counts) == 1 else "varying"
    refs = {r.get("reference") for r in evals} - {None}
    ref = "CIFAR-10 test"
    if len(refs) == 1 and not next(iter(refs)).startswith("tfds:cifar10"):
        ref = os.path.join(*os.path.normpath(next(iter(refs)).split(":", 1)[-1]).split(os.sep)[-2:])
    return f"FID (Keras InceptionV3, {samples} samples vs {ref})"


def _fid_axes(ax, evals):
    ax.set_xlabel("training step")
    ax.set_ylabel(_fid_label(evals))
    ax.grid(alpha=0.3, which="both")
    low, high = min(r["fid"] for r in evals), max(r["fid"] for r in evals)
    if low > 0 and high / low > 8:  # early FIDs would dwarf the later ones
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 3, 5)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(low / 1.5, high * 1.1)  # room for the label under the best point
    else:
        margin = max(high - low, abs(high) * 0.05, 1e-3)
        ax.set_ylim(low - 0.3 * margin, high + 0.1 * margin)


def plot_fid(records, path, title=None):
    """FID against step with the best (lowest) point marked and annotated.

    Returns:
      True if the PNG was written, False (writing nothing) when there is no eval record with FID.
    """
    records = _latest(records)
    steps, fid = _series(records, "fid", kind="eval")
    if not len(steps):
        return False
    best = best_eval(records)
    fig = _figure((7, 4.5))
    ax = fig.add_subplot()
    ax.plot(steps, fid, marker="o", markersize=3, color="tab:blue")
    ax.scatter([best["step"]], [best["fid"]], color="red", zorder=3, s=40)
    right = len(steps) > 1 and best["step"] > (steps[0] + steps[-1]) / 2
    ax.annotate(f"best {format_fid(best['fid'])}\nat step {best['step']}",
                (best["step"], best["fid"]),
                xytext=(-10 if right else 10, -8), textcoords="offset points",
                ha="right" if right else "left", va="top", fontsize=9, color="red",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    _fid_axes(ax, [r for r in records if r.get("kind") == "eval" and r.get("fid") is not None])
    ax.set_title(title or "FID during training")
    save_figure(fig, path)
    return True


def format_fid(value, sign=False):
    """FID for people: two decimals, three significant digits below 1 (so 2.1e-05, not 0.00)."""
    plus = "+" if sign else ""
    return f"{value:{plus}.2f}" if abs(value) >= 1 or value == 0 else f"{value:{plus}.3g}"


def plot_fid_curves(runs, path, title=None):
    """FID curves of several runs ({run name: records}) in one figure; False if none has FID."""
    fig = _figure((7, 4.5))
    ax = fig.add_subplot()
    evals = []
    for name, records in runs.items():
        records = _latest(records)
        steps, fid = _series(records, "fid", kind="eval")
        if not len(steps):
            continue
        best = best_eval(records)
        line, = ax.plot(steps, fid, marker="o", markersize=2,
                        label=f"{name} (best {format_fid(best['fid'])} at {best['step']})")
        ax.scatter([best["step"]], [best["fid"]], color=line.get_color(), s=36, zorder=3)
        evals += [r for r in records if r.get("kind") == "eval" and r.get("fid") is not None]
    if not evals:
        return False
    _fid_axes(ax, evals)
    ax.set_title(title or "FID of the runs")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def _panels(records, path, panels, height):
    """One panel per (ylabel, [(key, label)]); returns False (writes nothing) without data."""
    records = _latest(records)
    if not any(len(_series(records, key)[0]) for _, keys in panels for key, _ in keys):
        return False
    fig = _figure((7, height * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (ylabel, keys) in zip(axes, panels):
        for key, label in keys:
            steps, values = _series(records, key)
            if len(steps):
                few = len(steps) <= 30  # e.g. one point per evaluation: show where they are
                ax.plot(steps, values, label=label, linewidth=1, marker="o" if few else None,
                        markersize=3)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(keys) > 1 and ax.lines:
            ax.legend(fontsize=8)
        if "accuracy" in ylabel:
            ax.set_ylim(-0.02, 1.02)
    axes[-1].set_xlabel("training step")
    save_figure(fig, path)
    return True


def plot_losses(records, path):
    """G loss, D loss and D's accuracy on real and fake images in stacked panels.

    A fourth panel shows self-attention gains ("gamma/<name>" fields) when a run logs them.

    Returns:
      True if written, False (writing nothing) when there are no training records.
    """
    train = [r for r in records if r.get("kind") == "train"]
    gammas = sorted({k for r in train for k in r if k.startswith("gamma/")})
    panels = [("G loss", [("g_loss", "G")]), ("D loss", [("d_loss", "D")]),
              ("D accuracy", [("d_real_acc", "on real"), ("d_fake_acc", "on fake")])]
    if gammas:
        panels.append(("attention gain γ", [(k, k[len("gamma/"):]) for k in gammas]))
    return _panels(train, path, panels, height=2.3)


def plot_classifier(records, path):
    """Classifier-head loss and accuracy on training images and the test split against step.

    Returns:
      True if written, False (writing nothing) when no record has cls_* fields.
    """
    return _panels(records, path, [
        ("classifier loss", [("cls_train_loss", "training images"), ("cls_test_loss", "test split")]),
        ("classifier accuracy", [("cls_train_acc", "training images"),
                                 ("cls_test_acc", "test split")]),
    ], height=2.8)


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
    fig = _figure((2.2 * (len(query_points) + 1), 2.6))
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
    owners = {}
    try:
        layers = list(model._flatten_layers(include_self=False, recursive=True))
    except (AttributeError, TypeError):  # private Keras API: fall back to variable names
        layers = []
    for layer in layers:
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
        fig = _figure((max(cols * 0.55, 4), rows * 0.55 + 0.5))
        for i, ax in enumerate(fig.subplots(rows, cols, squeeze=False).flat):
            ax.set_axis_off()
            if i < count:
                f = (filters[i] - filters[i].min()) / (np.ptp(filters[i]) + 1e-12)
                ax.imshow(f if f.shape[-1] == 3 else f[..., 0], cmap="gray", vmin=0, vmax=1,
                          interpolation="nearest")
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
        fig = _figure((cols * 3, rows * 2.2 + 0.4))
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (name, values) in zip(axes, weights):
            ax.hist(values.ravel(), bins=50, color="tab:blue")
            ax.set_title("\n".join(textwrap.wrap(f"{name} {values.shape}", 40)), fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in axes[len(weights):]:
            ax.set_axis_off()
        fig.suptitle(f"{model.name}: weight histograms", fontsize=10)
        written.append(save_figure(fig, f"{path_prefix}_histograms.png"))
    return written
