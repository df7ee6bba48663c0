"""evaluate.py's command: its settings, finding the model, and the order of its outputs
(grids, samples, metrics, figures). Sampling is `sampling`, reading the export `export`, the
metrics `metrics/` and `evaluations`."""

import dataclasses
import json
import os
from typing import Optional

import numpy as np

from tfgan_cifar import data as data_lib, evaluation_samples, export, paper_protocol
from tfgan_cifar.atomic import write_text
from tfgan_cifar.config import MODELS, TrainConfig, check_settings, same_as, setting
from tfgan_cifar.errors import UserError
from tfgan_cifar.metric_schema import BY_KEY, best_model_metric, fid_label, fid_line, formatted
from tfgan_cifar.pixels import to_uint8
from tfgan_cifar.run_dir import RunDir, published_best
from tfgan_cifar.viz import grids

METRIC_OUTPUTS = ("metrics", "real_baseline", "quality", "quality_real_baseline", "intra_class",
                  "cas")  # written to metrics.json


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """What to load, what to compute and where to write it: the settings of evaluate.py."""

    model: str = setting("sagan", "Which model's generator to load: <save_dir>/<model>/best, "
                         "else the best or final export of --run_dir (and the output folder's "
                         "name).", "run", choices=MODELS)
    seed: int = same_as(TrainConfig, "seed")
    saved_model: Optional[str] = setting(None, "Load this best-model directory or SavedModel "
                                         "instead.", "paths")
    save_dir: str = same_as(TrainConfig, "save_dir")
    run_dir: Optional[str] = setting(None, "The run directory (a train.py --workdir) whose "
                                     "export/best, else export/final, is loaded when "
                                     "<save_dir>/<model>/best does not exist. Default: "
                                     "logs/<model>.", "paths")
    output_dir: str = setting(".", "Outputs go to <output_dir>/DCGAN or <output_dir>/SAGAN.",
                              "paths")
    image_dir: Optional[str] = same_as(TrainConfig, "image_dir")
    data_dir: Optional[str] = same_as(TrainConfig, "data_dir")
    protocol: Optional[str] = setting(
        None, "paper: FID as published CIFAR-10 results measure it: the standard network, "
        "50,000 samples (unless --fid_samples is given) against the training images, on the "
        "run's best and final generators (the EMA one where training kept it); writes "
        "<output_dir>/paper_protocol.json.", "evaluation", choices=("paper",))
    fid: bool = setting(True, "Compute FID and KID against the CIFAR-10 split of "
                        "--fid_reference.", "evaluation")
    real_baseline: bool = setting(False, "Also score --fid_samples real training images against "
                                  "the reference split: the floor at that sample count.",
                                  "evaluation")
    fid_samples: int = same_as(TrainConfig, "fid_samples")
    fid_network: Optional[str] = same_as(TrainConfig, "fid_network")
    fid_reference: str = same_as(TrainConfig, "fid_reference")
    fid_reference_dir: Optional[str] = same_as(TrainConfig, "fid_reference_dir")
    inception_weights: Optional[str] = same_as(TrainConfig, "inception_weights")
    fid_cache_dir: str = same_as(TrainConfig, "fid_cache_dir")
    # The reference classifier's metrics, intra-class FID and CAS (tfgan_cifar.metrics).
    reference_classifier: Optional[str] = same_as(TrainConfig, "reference_classifier")
    intra_class: bool = setting(False, "Conditional models: intra-class FID, the mean over "
                                "classes of FID between each class's samples and its test "
                                "images (and intra-class FD_classifier with "
                                "--reference_classifier).",
                                "evaluation")
    cas: bool = setting(False, "Classification accuracy score: train the reference classifier's "
                        "network on --cas_samples generated images (labels as drawn) and report "
                        "its accuracy on the real test split (slow).", "evaluation")
    cas_samples: int = setting(10000, "Generated training images of --cas.", "evaluation",
                               minimum=2, requires="cas")
    cas_epochs: int = setting(10, "Training epochs of --cas.", "evaluation", minimum=1,
                              requires="cas")
    samples_npz: Optional[str] = setting(None, "Write --num_samples generated images to this "
                                         ".npz (uint8 x: N x 32 x 32 x 3, int32 labels y) for "
                                         "other FID tools.", "outputs")
    num_samples: int = setting(10000, "Images in --samples_npz.", "outputs", minimum=1)
    attention_maps: bool = setting(False, "SAGAN: draw the attention of a few query pixels over "
                                   "a generated image.", "outputs")
    weights: bool = setting(False, "Draw first-layer filters of G and D and histograms of every "
                            "layer's weights.", "outputs")

    def validate(self):
        """Raises UserError with one line naming the flag when a value cannot work."""
        check_settings(self)


def _train_config(options, info):
    """The run's config with this invocation's data and evaluation settings."""
    recorded = dict(info.get("config") or {})
    recorded.setdefault("model", options.model)
    overrides = {name: getattr(options, name) for name in (
        "image_dir", "data_dir", "fid_reference_dir", "inception_weights", "fid_cache_dir",
        "fid_samples", "reference_classifier", "fid_network", "fid_reference")}
    overrides["workdir"] = recorded.get("workdir") or "."
    base = TrainConfig.from_json(json.dumps(recorded))
    return dataclasses.replace(base, **overrides).resolved()


def _default_model(options):
    """The model evaluate.py reads without --saved_model: the published best model of
    --model, else the best or final export of the run directory --run_dir (default
    logs/<model>); else, to be reported missing, the published best model's path."""
    best = published_best(options.save_dir, options.model)
    if export.exists(best):
        return best
    run = RunDir(options.run_dir or os.path.join("logs", options.model))
    path = run.model_to_evaluate()
    if path is None:
        return best
    kind = "final generator" if path == run.export_dir("final") else "best model"
    print(f"no best model at {best}: using the {kind} of {run.path}, {path}", flush=True)
    return path


def _export_description(info):
    score = best_model_metric(info)
    if score is not None:
        label = fid_label(info.get("fid_network")) if score == "fid" else BY_KEY[score].label
        return (f", exported at step {info['step']} with {label} "
                f"{formatted(info, score)}")
    if info.get("final"):
        return f", the final generator of step {info['step']}"
    return ""


def run(options):
    """Runs every requested evaluation; returns {output name: path or value} (with
    --protocol=paper, {generator: FID result} of paper_protocol.run)."""
    options.validate()
    if options.protocol == "paper":
        return paper_protocol.run(options, run)
    path = options.saved_model or _default_model(options)
    if not export.exists(path):
        raise UserError(f"no saved model at {path}: train one first (it is exported when FID "
                        "improves, and when training finishes), or pass --run_dir=RUN_DIR or "
                        "--saved_model=PATH")
    # Keras (and so TensorFlow) only now: a missing model is reported in a second, not ten.
    from tfgan_cifar import evaluations, reference_classifier
    from tfgan_cifar.metrics.evaluator import Evaluator, evaluate_real_images

    where = f"--saved_model={path}" if options.saved_model else path
    info = export.read_record(path, where)
    config = _train_config(options, info)
    sample, z_dim = export.load_checked_sampler(path, where)
    out_dir = os.path.join(options.output_dir, config.model.upper())
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(options.seed)
    draw = evaluation_samples.drawer(sample, z_dim, config.num_classes, rng)
    outputs = {"saved_model": path}
    print(f"loaded {config.model} ({'conditional' if config.conditional else 'unconditional'}) "
          f"from {path}" + _export_description(info), flush=True)

    images, _ = draw(64)
    outputs["grid"] = grids.save_png(grids.image_grid(images, 8, 8),
                                     os.path.join(out_dir, "grid_8x8.png"), scale=2)
    head = evaluation_samples.class_head(path)
    if config.conditional or head is not None:
        images, row_labels = evaluation_samples.class_rows(sample, z_dim, config, rng, head)
        outputs["class_grid"] = grids.save_png(
            grids.labelled_rows(images, config.num_classes, 10, row_labels),
            os.path.join(out_dir, "classes_10x10.png"))
        if not config.conditional:
            print("class rows: unconditional samples sorted by the discriminator's classifier "
                  "head", flush=True)
    images, _ = draw(10)
    outputs["samples"] = [
        grids.save_png(to_uint8(image), os.path.join(out_dir, f"sample_{i:02d}.png"), scale=4)
        for i, image in enumerate(images)]

    if options.samples_npz:
        outputs["samples_npz"] = evaluation_samples.write_samples_npz(options.samples_npz,
                                                            options.num_samples, draw)
    if options.intra_class and not config.conditional:
        raise UserError("--intra_class needs a conditional generator (e.g. --model=sagan)")
    classifier = None
    if config.reference_classifier:
        classifier = reference_classifier.load(config.reference_classifier, config.num_classes)
        outputs.update(evaluations.reference_classifier_metrics(
            classifier, config, sample, options.seed, options.real_baseline))
    evaluator = None
    if options.fid or options.real_baseline:
        # Without the reference classifier, FID is all there is to compute: no weights is
        # an error, not a notice.
        evaluator = Evaluator.create(config, required=classifier is None)
    if evaluator is not None:
        if options.fid:
            outputs["metrics"] = evaluator.evaluate(sample, seed=options.seed)
            print(fid_line(outputs["metrics"], "generated images"), flush=True)
        if options.real_baseline:
            real = data_lib.load_training_data(config)
            outputs["real_baseline"] = evaluate_real_images(evaluator, real.images,
                                                            options.fid_samples)
            print(f"real baseline: {fid_line(outputs['real_baseline'], 'training images')}",
                  flush=True)
    if options.intra_class:
        outputs["intra_class"] = evaluations.intra_class(
            config, sample, z_dim, options.seed, evaluator if options.fid else None, classifier)
    if options.cas:
        outputs["cas"] = evaluations.classification_accuracy_score(
            config, sample, z_dim, options.seed, options.cas_samples, options.cas_epochs)
    results = {k: outputs[k] for k in METRIC_OUTPUTS if k in outputs}
    if results:
        write_text(os.path.join(out_dir, "metrics.json"),
                   json.dumps(results, indent=2, sort_keys=True) + "\n")
    if options.attention_maps:
        outputs["attention_maps"] = evaluations.attention_maps(path, config, out_dir)
    if options.weights:
        outputs["weights"] = evaluations.weight_figures(path, config, out_dir)
    for name, value in outputs.items():
        if name != "saved_model" and isinstance(value, (str, list)):
            print(f"wrote {', '.join([value] if isinstance(value, str) else value)}")
    return outputs
