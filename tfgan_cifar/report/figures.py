"""The report's pictures as PNGs: sample grids and per-class rows of each run, and curves."""

import json
import os
import re
import shutil
import sys

import numpy as np

from tfgan_cifar.atomic import replacing
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.report.tables import format_fid
from tfgan_cifar.viz import curves, grids


# Curves ------------------------------------------------------------------------------------


def fid_curves(runs, images_dir):
    """The FID curves of all runs in one PNG: its path, or None when no run has an FID."""
    path = os.path.join(images_dir, "fid-curves.png")
    return path if curves.plot_fid_curves({run.name: run.records for run in runs}, path) else None


def loss_curves(run, images_dir):
    """The loss curves of a run as a PNG: its path, or None without training records."""
    path = os.path.join(images_dir, f"{run.slug}-losses.png")
    return path if curves.plot_losses(run.records, path) else None


def classifier_curves(run, images_dir):
    """The classifier-head curves of a run as a PNG: its path, or None when it logs none."""
    path = os.path.join(images_dir, f"{run.slug}-classifier.png")
    return path if curves.plot_classifier(run.records, path) else None


def quality_curves(run, images_dir):
    """The quality-metric curves of a run as a PNG: its path, or None when it logs none."""
    path = os.path.join(images_dir, f"{run.slug}-quality.png")
    return path if curves.plot_quality(run.records, path) else None


# Samples -----------------------------------------------------------------------------------


def sample_figures(run, images_dir, seed=0, per_class=10):
    """The 8x8 grid and the per-class rows of a run as PNGs in `images_dir`.

    From the best generator when it is found and works (see `best_model_figures`); else the
    grid is the newest `samples/step_*.png` of the run and there are no per-class rows.

    Returns:
      {"grid": (path or None, caption), "classes": (path or None, caption)}.
    """
    why = "no best model found"
    if run.best_dir:
        try:
            return best_model_figures(run, images_dir, seed=seed, per_class=per_class)
        except Exception as error:  # a broken or foreign export should not stop the report
            _warn(f"could not sample the best model of {run.name} at {run.best_dir}", error)
            why = "the best model could not be sampled"
    figures = {"classes": (None, f"needs the best model: {why}")}
    source, step = newest_sample_grid(run)
    if source:
        path = _copy_png(source, os.path.join(images_dir, f"{run.slug}-grid.png"))
        figures["grid"] = (path, f"training grid of step {step} ({why})")
    else:
        figures["grid"] = (None, f"{why} and no sample grid")
    return figures


def best_model_figures(run, images_dir, seed=0, per_class=10):
    """The 8x8 grid and the per-class rows from the run's best generator, as PNGs.

    Labels of the grid cycle through the classes. The per-class rows come from
    `evaluation_samples.class_rows`: one row per label for conditional models, sorted by
    D's class head (`evaluation_samples.class_head`) for unconditional ones that have it,
    none otherwise.

    Returns:
      {"grid": (path, caption), "classes": (path, caption)}.
    """
    from tfgan_cifar import evaluation_samples, export

    sample, z_dim = export.load_sampler(run.best_dir)
    config = _model_config(run)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((64, z_dim)).astype(np.float32)
    labels = (np.arange(64) % config.num_classes).astype(np.int32)
    grid = grids.image_grid(sample(z, labels), 8, 8)
    figures = {"grid": (grids.save_png(grid, os.path.join(images_dir, f"{run.slug}-grid.png"),
                                     scale=2), _describe_best(run))}
    try:
        head = evaluation_samples.class_head(run.best_dir)
        if not config.conditional and head is None:
            figures["classes"] = (None, "unconditional, without a classifier head: its "
                                  "samples have no class to sort them by")
            return figures
        images, row_labels = evaluation_samples.class_rows(
            sample, z_dim, config, np.random.default_rng(seed), head=head,
            per_class=per_class)
        picture = grids.labelled_rows(images, config.num_classes, per_class, row_labels)
    except Exception as error:  # keep the grid when only the per-class rows fail
        _warn(f"could not draw the per-class rows of {run.name}", error)
        figures["classes"] = (None, "the per-class rows could not be drawn")
        return figures
    how = ("one row per label" if config.conditional else
           "rows sorted by the classifier head")
    figures["classes"] = (
        grids.save_png(picture, os.path.join(images_dir, f"{run.slug}-classes.png")), how)
    return figures


def newest_sample_grid(run):
    """(path, step) of the newest samples/step_NNNNNN.png of a run, or (None, None)."""
    folder = os.path.join(run.path, "samples")
    if not os.path.isdir(folder):
        return None, None
    steps = []
    for name in os.listdir(folder):
        match = re.fullmatch(r"step_(\d+)\.png", name)
        if match:
            steps.append((int(match.group(1)), name))
    if not steps:
        return None, None
    step, name = max(steps)
    return os.path.join(folder, name), step


def _model_config(run):
    """The config the best model was trained with (best.json's), else the run's."""
    recorded = (run.best_info or {}).get("config")
    if isinstance(recorded, dict):
        try:
            return TrainConfig.from_json(json.dumps(recorded)).resolved()
        except (UserError, TypeError, ValueError):
            pass
    return run.config


def _describe_best(run):
    info = run.best_info or {}
    where = os.path.relpath(run.best_dir)
    where = run.best_dir if where.startswith("..") else where
    parts = [f"{'final' if info.get('final') else 'best'} generator {where}"]
    if "step" in info:
        parts.append(f"step {info['step']}")
    if info.get("fid") is not None:
        parts.append(f"FID {format_fid(info['fid'])}")
    return ", ".join(parts)


def _copy_png(source, target):
    """Copies a PNG atomically (verifying it is one) and returns the target."""
    from PIL import Image

    with Image.open(source) as image:
        image.verify()
    with open(source, "rb") as src, replacing(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def _warn(what, error):
    last = str(error).strip().splitlines()[-1:] or [type(error).__name__]
    print(f"warning: {what}: {last[0]}", file=sys.stderr, flush=True)
