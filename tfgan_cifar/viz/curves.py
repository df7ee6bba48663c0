"""Training curves of a run: FID/KID, losses and the classifier head, from the "train" and
"eval" records of `metrics.jsonl`.
"""

import os

import numpy as np
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from tfgan_cifar.metric_schema import BY_KEY, fid_label, figure_panels, format_fid
from tfgan_cifar.run_dir import best_eval, latest_records
from tfgan_cifar.viz.figure_files import new_figure, save_figure


def _series(records, key, kind=None):
    """(steps, values) of the records holding a non-null `key` (of `kind`, if given)."""
    points = {r["step"]: r[key] for r in records
              if r.get(key) is not None and (kind is None or r.get("kind") == kind)}
    steps = sorted(points)
    return np.asarray(steps, np.int64), np.asarray([points[s] for s in steps], np.float64)


def _fid_label(evals):
    counts = sorted({r["num_samples"] for r in evals if r.get("num_samples")})
    samples = "?" if not counts else str(counts[0]) if len(counts) == 1 else "varying"
    refs = {r.get("reference") for r in evals} - {None}
    ref = "CIFAR-10 test"
    if len(refs) == 1 and not next(iter(refs)).startswith("tfds:cifar10"):
        ref = os.path.join(*os.path.normpath(next(iter(refs)).split(":", 1)[-1]).split(os.sep)[-2:])
    networks = {r.get("fid_network") for r in evals}
    label = fid_label(networks.pop()) if len(networks) == 1 else "FID (varying networks)"
    return f"{label}, {samples} samples vs {ref}"


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
    records = latest_records(records)
    steps, fid = _series(records, "fid", kind="eval")
    if not len(steps):
        return False
    best = best_eval(records)
    fig = new_figure((7, 4.5))
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


def plot_fid_curves(runs, path, title=None):
    """FID curves of several runs ({run name: records}) in one figure; False if none has FID."""
    fig = new_figure((7, 4.5))
    ax = fig.add_subplot()
    evals = []
    for name, records in runs.items():
        records = latest_records(records)
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
    records = latest_records(records)
    if not any(len(_series(records, key)[0]) for _, keys in panels for key, _ in keys):
        return False
    fig = new_figure((7, height * len(panels)))
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
    panels = figure_panels("losses")
    if gammas:
        panels.append((BY_KEY["gamma/"].panel, [(k, k[len("gamma/"):]) for k in gammas]))
    return _panels(train, path, panels, height=2.3)


def plot_classifier(records, path):
    """Classifier-head loss and accuracy on training images and the test split against step.

    Returns:
      True if written, False (writing nothing) when no record has cls_* fields.
    """
    return _panels(records, path, figure_panels("classifier"), height=2.8)


def plot_quality(records, path):
    """The quality metrics beside FID against step: FD_classifier, class accuracy and KL from
    uniform of the predicted classes, and precision/recall/density/coverage in Inception
    and/or the reference classifier's features; one panel per group that has data.

    Returns:
      True if written, False (writing nothing) when no eval record has any of them.
    """
    evals = [r for r in records if r.get("kind") == "eval"]
    panels = [(label, keys) for label, keys in figure_panels("quality")
              if any(r.get(key) is not None for r in evals for key, _ in keys)]
    if not panels:
        return False
    return _panels(evals, path, panels, height=2.3)
