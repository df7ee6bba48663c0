"""What the loop does between steps besides logging: sample grids, and evaluation with the
best-model export."""

import json
import os
import time

import numpy as np

from tfgan_cifar import export
from tfgan_cifar.errors import TrainingDiverged
from tfgan_cifar.metric_schema import (best_model_metric, exported_fields, fid_line,
                                        quality_line, tensorboard_scalars)
from tfgan_cifar.metrics.evaluator import (ClassifierEvaluator, Evaluator, classifier_metrics,
                                           reference_source)
from tfgan_cifar.run_dir import published_best
from tfgan_cifar.viz import curves, grids, internals

GRID_SIDE = 8
CLASSIFIER_EVAL_IMAGES = 10000  # per split, for the classifier head's evaluation


class SampleGrids:
    """The fixed-noise 8x8 grid every --sample_every steps: samples/step_NNNNNN.png and
    TensorBoard, with SAGAN's attention maps of a few query pixels of the first image."""

    def __init__(self, config, run, summaries):
        self.config, self.run, self.summaries = config, run, summaries
        rng = np.random.default_rng(config.seed)
        count = GRID_SIDE * GRID_SIDE
        self.z = rng.standard_normal((count, config.z_dim)).astype(np.float32)
        self.labels = (np.arange(count) % config.num_classes).astype(np.int32)

    def due(self, step):
        return bool(self.config.sample_every) and step % self.config.sample_every == 0

    def write(self, trainer, step):
        """Writes the grid of `step`; returns its path."""
        grid = grids.image_grid(trainer.generate(self.z, self.labels), GRID_SIDE, GRID_SIDE)
        path = grids.save_png(grid, self.run.sample_grid(step), scale=2)
        self.summaries.image("samples/fixed_noise", step, grid)
        if self.summaries.enabled and self.config.model == "sagan":
            image, maps = trainer.generate_with_attention(self.z[:1], self.labels[:1])
            for resolution, attention in maps.items():
                self.summaries.image(f"attention/{resolution}x{resolution}", step,
                                     internals.attention_figure_array(
                                         image[0], attention[0],
                                         internals.default_query_points(resolution)))
        return path


def export_info(config, step, **values):
    """The record written beside an exported generator (best.json)."""
    return {"step": step, **values, "workdir": os.path.abspath(config.workdir),
            "config": json.loads(config.to_json())}


def load_reference_classifier(config):
    """The reference classifier of --reference_classifier when evaluations are on, else None;
    a bad file raises UserError (one line)."""
    if not (config.reference_classifier and config.eval_every):
        return None
    from tfgan_cifar import reference_classifier

    return reference_classifier.load(config.reference_classifier, config.num_classes)


def selection_metric(evaluator, classifier_evaluator):
    """The eval field that picks the best model (metric_schema.BEST_MODEL_BY): FID when the
    Inception weights exist, else FD_classifier with --reference_classifier, else None (no best
    model)."""
    available = (["fid"] if evaluator is not None else []) + (
        ["fd_classifier"] if classifier_evaluator is not None else [])
    return best_model_metric(available)


class Evaluation:
    """Every --eval_every steps and at the last one: FID/KID (with precision/recall) and, with
    --reference_classifier, the reference classifier's metrics, with the plots and the
    best-model export
    (by FID, else FD_classifier); with --class_head, the classifier head's loss and
    accuracy on training and test images."""

    def __init__(self, config, run, summaries, data, classifier=None):
        """`classifier`: the loaded --reference_classifier (see `load_reference_classifier`),
        or None."""
        self.config, self.run, self.summaries, self.data = config, run, summaries, data
        self.evaluator = Evaluator.create(config) if config.eval_every else None
        self.classifier_evaluator = (ClassifierEvaluator(config, classifier)
                                     if classifier is not None else None)
        self.selected_by = selection_metric(self.evaluator, self.classifier_evaluator)
        records = run.metrics.records("eval")
        self.logged_until = max((r["step"] for r in records), default=0)
        self.best = min((r[self.selected_by] for r in records
                         if r.get(self.selected_by) is not None), default=float("inf"))
        self._classifier_sets = None

    def due(self, step):
        every = self.config.eval_every
        if not every or (self.selected_by is None and not self.config.class_head):
            return False
        return (step % every == 0 or step == self.config.steps) and step > self.logged_until

    def _classifier_images(self):
        """(train images, labels), (test images, labels): fixed subsets, loaded once."""
        if self._classifier_sets is None:
            rng = np.random.default_rng(self.config.seed)
            test = reference_source(self.config, "test")[1]()
            picked = []
            for images in (self.data, test):
                keep = rng.permutation(len(images))[:CLASSIFIER_EVAL_IMAGES]
                picked.append((images.images[keep], images.labels[keep]))
            self._classifier_sets = picked
        return self._classifier_sets

    def _classifier_result(self, trainer):
        (train_x, train_y), (test_x, test_y) = self._classifier_images()
        train_loss, train_acc = classifier_metrics(trainer.class_logits, train_x, train_y)
        test_loss, test_acc = classifier_metrics(trainer.class_logits, test_x, test_y)
        return {"cls_train_loss": train_loss, "cls_train_acc": train_acc,
                "cls_test_loss": test_loss, "cls_test_acc": test_acc}

    def run_at(self, trainer, step):
        """Evaluates the trainer's model at `step`, logs, plots and exports it if best."""
        config, run = self.config, self.run
        started = time.perf_counter()
        result, parts = {}, []
        if self.evaluator is not None:
            result = self.evaluator.evaluate(_finite_only(trainer.generate, step),
                                             seed=config.seed + step)
            parts.append(fid_line(result))
        if self.classifier_evaluator is not None:
            result.update(self.classifier_evaluator.evaluate(
                _finite_only(trainer.generate, step), seed=config.seed + step))
            parts.append(quality_line(result))
        if config.class_head:
            result.update(self._classifier_result(trainer))
            parts.append(f"classifier head: accuracy {result['cls_train_acc']:.3f} on training "
                         f"images, {result['cls_test_acc']:.3f} on the test split")
        metric = self.selected_by
        if metric is not None and result[metric] < self.best:
            self.best = result[metric]
            parts.append(f"best so far by {metric}, exported to "
                         f"{self.export_best(trainer, step, result)}")
        result["seconds"] = time.perf_counter() - started
        run.metrics.append("eval", step, result)
        self.summaries.scalars(step, tensorboard_scalars(result))
        records = run.metrics.records()
        if config.class_head:
            curves.plot_classifier(records, run.figure("classifier.png"))
        if "fid" in result:
            curves.plot_fid(records, run.figure("fid.png"))
        curves.plot_quality(records, run.figure("quality.png"))
        curves.plot_losses(records, run.figure("losses.png"))
        print(f"eval step {step}: " + "; ".join(parts) + f" ({result['seconds']:.0f}s)",
              flush=True)
        return result

    def export_best(self, trainer, step, result):
        """Exports the generator to <workdir>/export/best and publishes it to
        <save_dir>/<model>/best, the one place that copy is written; returns the latter."""
        config = self.config
        info = export_info(config, step, selected_by=self.selected_by,
                           **exported_fields(result))
        best = export.export_model(trainer.export_generator(), self.run.export_dir("best"),
                                   info, discriminator=trainer.export_discriminator())
        return export.publish(best, published_best(config.save_dir, config.model))


def _finite_only(generate, step):
    """`generate`, refusing non-finite images: all-NaN images have finite, identical Inception
    features, so their FID would look like a result and could be kept as the best."""
    def checked(z, labels):
        images = generate(z, labels)
        if not np.isfinite(images).all():
            raise TrainingDiverged(f"the generator's samples are not finite at step {step}; "
                                   "lower --lr_g/--lr_d and train in a new --workdir")
        return images
    return checked


