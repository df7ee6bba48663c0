"""Figures of a run: FID and loss curves, attention maps, weight images (matplotlib, Agg).

Curves read the records of `metrics.jsonl` ({"kind": "train" | "eval", "step": ..., ...}).
Every figure is written atomically, so a kill never leaves a half-written PNG.
"""

import os
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig, path, dpi=100):
    """Writes `fig` as PNG to `path` through a temporary file, then closes it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=directory)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _series(records, kind, key):
    points = {}
    for r in records:
        if r.get("kind") == kind and r.get(key) is not None:
            points[r["step"]] = r[key]  # a resumed run may repeat a step: keep the last
    steps = sorted(points)
    return np.asarray(steps), np.asarray([points[s] for s in steps], np.float64)


def best_eval(records, key="fid"):
    """The eval record with the lowest `key`, or None."""
    evals = [r for r in records if r.get("kind") == "eval" and r.get(key) is not None]
    return min(evals, key=lambda r: r[key]) if evals else None


def plot_fid(records, path, title=None):
    """FID against step, best point marked; returns False (writing nothing) without evals."""
    steps, fid = _series(records, "eval", "fid")
    if not len(steps):
        return False
    best = best_eval(records)
    samples = best.get("num_samples", "?")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, fid, marker="o", markersize=3)
    ax.scatter([best["step"]], [best["fid"]], color="red", zorder=3,
               label=f"best {best['fid']:.2f} at step {best['step']}")
    ax.set_xlabel("generator step")
    ax.set_ylabel(f"FID (Keras InceptionV3, {samples} samples)")
    ax.set_title(title or "FID vs CIFAR-10 test split")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
    return True


def plot_losses(records, path):
    """G loss, D loss and D's accuracy on real and fake images, in three panels."""
    steps, g_loss = _series(records, "train", "g_loss")
    if not len(steps):
        return False
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    axes[0].plot(steps, g_loss, color="tab:blue")
    axes[0].set_ylabel("G loss")
    axes[1].plot(*_series(records, "train", "d_loss"), color="tab:orange")
    axes[1].set_ylabel("D loss")
    axes[2].plot(*_series(records, "train", "d_real_acc"), label="real")
    axes[2].plot(*_series(records, "train", "d_fake_acc"), label="fake")
    axes[2].set_ylabel("D accuracy")
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].legend()
    axes[2].set_xlabel("generator step")
    for ax in axes:
        ax.grid(alpha=0.3)
    save_figure(fig, path)
    return True


def _attention_figure(image, attention, query_points):
    """Image with query points, then per query its attention over positions as a heat map."""
    side = int(round(np.sqrt(attention.shape[-1])))
    height, width = image.shape[:2]
    picture = np.clip((np.asarray(image, np.float32) + 1) / 2, 0, 1)
    colors = plt.cm.tab10(np.arange(len(query_points)))
    scale = height / side
    fig, axes = plt.subplots(1, len(query_points) + 1, figsize=(2.2 * (len(query_points) + 1), 2.4))
    axes[0].imshow(picture)
    axes[0].set_title("queries", fontsize=9)
    for ax, (row, col), color in zip(axes[1:], query_points, colors):
        axes[0].scatter([(col + 0.5) * scale - 0.5], [(row + 0.5) * scale - 0.5], color=color,
                        s=30, edgecolors="white")
        weights = attention[row * side + col].reshape(side, side)
        ax.imshow(picture)
        ax.imshow(weights, cmap="inferno", alpha=0.6, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        ax.scatter([(col + 0.5) * scale - 0.5], [(row + 0.5) * scale - 0.5], color=color, s=30,
                   edgecolors="white")
        ax.set_title(f"query ({row},{col})", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return fig


def attention_figure_array(image, attention, query_points):
    """The attention figure rendered into a uint8 HxWx3 array (for TensorBoard)."""
    fig = _attention_figure(image, attention, query_points)
    fig.canvas.draw()
    array = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return array


def plot_attention(image, attention, query_points, path):
    """Writes the attention figure: `attention` is positions x positions of a side x side map."""
    return save_figure(_attention_figure(image, attention, query_points), path)


def plot_weights(model, path_prefix):
    """First 4-D kernel's filters as images, and histograms of every kernel; returns paths."""
    import keras

    kernels = [(v.path, keras.ops.convert_to_numpy(v)) for v in model.weights
               if len(v.shape) >= 2 and "sn_u" not in v.path]
    conv = next((k for _, k in kernels if k.ndim == 4), None)
    written = []
    if conv is not None:
        filters = np.moveaxis(conv, -1, 0)  # (out, kh, kw, in) or (in, kh, kw, out)
        if filters.shape[-1] != 3:
            filters = filters.mean(axis=-1, keepdims=True)
        count = min(len(filters), 64)
        cols = int(np.ceil(np.sqrt(count)))
        rows = int(np.ceil(count / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8), squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < count:
                f = filters[i]
                f = (f - f.min()) / (np.ptp(f) + 1e-12)
                ax.imshow(f if f.shape[-1] == 3 else f[..., 0], cmap=None if f.shape[-1] == 3
                          else "gray", interpolation="nearest")
        fig.suptitle(f"{model.name}: first-layer filters")
        written.append(save_figure(fig, f"{path_prefix}_filters.png"))
    cols = 4
    rows = int(np.ceil(len(kernels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3, rows * 2.2), squeeze=False)
    for ax, (name, values) in zip(axes.flat, kernels):
        ax.hist(values.ravel(), bins=50, color="tab:blue")
        ax.set_title(name, fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(kernels):]:
        ax.axis("off")
    fig.suptitle(f"{model.name}: weight histograms")
    written.append(save_figure(fig, f"{path_prefix}_histograms.png"))
    return written
