"""What evaluate.py does with a saved best generator: metrics, grids, samples and figures."""

import dataclasses
import json
import os
from typing import Optional

import numpy as np

from tfgan_cifar import data as data_lib, export
from tfgan_cifar.atomic import replacing, write_text
from tfgan_cifar.config import MODELS, TrainConfig, check_settings, same_as, setting
from tfgan_cifar.errors import UserError
from tfgan_cifar.metrics import fid
from tfgan_cifar.run_dir import RunDir, published_best
from tfgan_cifar.viz import grids, internals

METRIC_OUTPUTS = ("metrics", "real_baseline", "quality", "quality_real_baseline", "intra_class",
                  "cas")  # written to metrics.json
SORT_POOL_FACTOR = 20  # unconditional rows pick from this many samples per shown image
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


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
    classifier: Optional[str] = same_as(TrainConfig, "classifier")
    intra_class: bool = setting(False, "Conditional models: intra-class FID, the mean over "
                                "classes of FID between each class's samples and its test "
                                "images (and intra-class FD_classifier with --classifier).",
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
        "fid_samples", "classifier", "fid_network", "fid_reference")}
    overrides["workdir"] = recorded.get("workdir") or "."
    base = TrainConfig.from_json(json.dumps(recorded))
    return dataclasses.replace(base, **overrides).resolved()


def _load_keras_generator(path):
    try:
        return export.load_keras_generator(path)
    except FileNotFoundError:
        raise UserError(f"{path} has no {export.KERAS_FILE}: attention maps and weight images "
                        "need the .keras copy that training exports beside the SavedModel"
                        ) from None


def _class_names(config):
    return CIFAR10_CLASSES if config.num_classes == 10 else [str(i) for i in
                                                             range(config.num_classes)]


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
    if "fid" in info:
        return f", exported at step {info['step']} with FID {fid.format_fid(info['fid'])}"
    if "fd_classifier" in info:
        return f", exported at step {info['step']} with FD_classifier {info['fd_classifier']:.2f}"
    if info.get("final"):
        return f", the final generator of step {info['step']}"
    return ""


_EXPORT_HINT = ("pass --saved_model=DIR naming a best-model directory (DIR/saved_model/, "
                "DIR/best.json, as train.py exports) or a SavedModel directory "
                "(DIR/saved_model.pb)")


def _one_line(error, limit=200):
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_record(path, where=None):
    """The best.json record of the exported model at `path` ({} when it has none); a path
    that is not a folder, or a damaged record, raises UserError naming `where` (default:
    path)."""
    where = where or path
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{where} is not a folder: {_EXPORT_HINT}")
    try:
        info = export.read_info(path)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise UserError(f"{where}: {export.INFO_FILE} cannot be read ({_one_line(error)}): "
                        "the export is damaged; pass another --saved_model") from None
    if not isinstance(info, dict):
        raise UserError(f"{where}: {export.INFO_FILE} holds no record (a JSON object): the "
                        "export is damaged; pass another --saved_model")
    return info


def load_saved_model(path, where=None):
    """`export.load_sampler(path)`; a path that holds no SavedModel (without TensorFlow: no
    generator.keras), or a damaged one (a truncated or garbage saved_model.pb, missing
    variables, no serving signature), raises UserError naming `where` (default: path)."""
    where = where or path
    if not os.path.isdir(path):
        raise UserError(f"{where} is not a folder: {_EXPORT_HINT}")
    if not export.tensorflow_available():
        if not os.path.isfile(os.path.join(path, export.KERAS_FILE)):
            raise UserError(f"{where} holds no {export.KERAS_FILE}, and without TensorFlow "
                            "its SavedModel cannot be read: install tensorflow, or pass a "
                            "directory that train.py exported (they hold both)")
    elif not any(os.path.isfile(os.path.join(folder, "saved_model.pb"))
                 for folder in (os.path.join(path, export.SAVED_MODEL), path)):
        raise UserError(f"{where} holds no SavedModel (neither saved_model/saved_model.pb "
                        f"nor saved_model.pb): {_EXPORT_HINT}")
    try:
        return export.load_sampler(path)
    except Exception as error:  # TensorFlow raises OSError, ValueError, KeyError, its own errors
        kind = "SavedModel" if export.tensorflow_available() else export.KERAS_FILE
        raise UserError(f"{where}: the {kind} cannot be loaded ({type(error).__name__}: "
                        f"{_one_line(error)}): it is damaged or not a generator exported by "
                        "train.py; pass another --saved_model") from None


def run(options):
    """Runs every requested evaluation; returns {output name: path or value}."""
    options.validate()
    path = options.saved_model or _default_model(options)
    if not export.exists(path):
        raise UserError(f"no saved model at {path}: train one first (it is exported when FID "
                        "improves, and when training finishes), or pass --run_dir=RUN_DIR or "
                        "--saved_model=PATH")
    # Keras (and so TensorFlow) only now: a missing model is reported in a second, not ten.
    from tfgan_cifar.metrics import classifier as classifier_lib, conditional
    from tfgan_cifar.metrics.evaluator import Evaluator, evaluate_real_images, reference_source

    where = f"--saved_model={path}" if options.saved_model else path
    info = read_record(path, where)
    config = _train_config(options, info)
    sample, z_dim = load_saved_model(path, where)
    out_dir = os.path.join(options.output_dir, config.model.upper())
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(options.seed)
    outputs = {"saved_model": path}
    print(f"loaded {config.model} ({'conditional' if config.conditional else 'unconditional'}) "
          f"from {path}" + _export_description(info), flush=True)

    def draw(n, labels=None):
        z = rng.standard_normal((n, z_dim)).astype(np.float32)
        if labels is None:
            labels = rng.integers(0, config.num_classes, n).astype(np.int32)
        return sample(z, labels), labels

    images, _ = draw(64)
    outputs["grid"] = grids.save_png(grids.image_grid(images, 8, 8),
                                   os.path.join(out_dir, "grid_8x8.png"), scale=2)
    classifier = load_classifier(path)
    if config.conditional or classifier is not None:
        images, row_labels = class_rows(sample, z_dim, config, rng, classifier)
        outputs["class_grid"] = grids.save_png(
            grids.labelled_rows(images, config.num_classes, 10, row_labels),
            os.path.join(out_dir, "classes_10x10.png"))
        if not config.conditional:
            print("class rows: unconditional samples sorted by the discriminator's classifier "
                  "head", flush=True)
    images, labels = draw(10)
    outputs["samples"] = [
        grids.save_png(grids.to_uint8(image), os.path.join(out_dir, f"sample_{i:02d}.png"), scale=4)
        for i, image in enumerate(images)]

    if options.samples_npz:
        outputs["samples_npz"] = write_samples_npz(options.samples_npz, options.num_samples, draw)
    if options.intra_class and not config.conditional:
        raise UserError("--intra_class needs a conditional generator (e.g. --model=sagan)")
    classifier = None
    if config.classifier:
        classifier = classifier_lib.load(config.classifier, config.num_classes)
        outputs.update(classifier_metrics(classifier, config, sample, options))
    evaluator = None
    if options.fid or options.real_baseline:
        # Without the reference classifier, FID is all there is to compute: no weights is
        # an error, not a notice.
        evaluator = Evaluator.create(config, required=classifier is None)
    if evaluator is not None:
        if options.fid:
            result = evaluator.evaluate(sample, seed=options.seed)
            print(f"{evaluator.label} {fid.format_fid(result['fid'])}, "
                  f"KID {result['kid']:.4f} ± {result['kid_std']:.4f}: "
                  f"{result['num_samples']} generated images vs "
                  f"{result['reference_samples']} images of {result['reference']}", flush=True)
            outputs["metrics"] = result
        if options.real_baseline:
            real = data_lib.load_training_data(config)
            result = evaluate_real_images(evaluator, real.images, options.fid_samples)
            print(f"real baseline: FID {fid.format_fid(result['fid'])}, "
                  f"KID {result['kid']:.4f} ± {result['kid_std']:.4f}: "
                  f"{result['num_samples']} training images vs "
                  f"{result['reference']}", flush=True)
            outputs["real_baseline"] = result
    if options.intra_class:
        outputs["intra_class"] = intra_class(config, sample, z_dim, options.seed,
                                             evaluator if options.fid else None, classifier)
    if options.cas:
        test = reference_source(config, "test")[1]()
        print(f"CAS: training the classifier on {options.cas_samples} generated images "
              f"({options.cas_epochs} epochs)", flush=True)
        outputs["cas"] = conditional.classification_accuracy_score(
            sample, z_dim, test, options.cas_samples, options.cas_epochs, seed=options.seed)
        print(f"classification accuracy score (CAS) {outputs['cas']['cas']:.4f} on "
              f"{len(test)} real test images", flush=True)
    results = {k: outputs[k] for k in METRIC_OUTPUTS if k in outputs}
    if results:
        _write_json(os.path.join(out_dir, "metrics.json"), results)
    if options.attention_maps:
        outputs["attention_maps"] = attention_maps(path, config, out_dir, draw)
    if options.weights:
        outputs["weights"] = weight_figures(path, config, out_dir)
    for name, value in outputs.items():
        if name != "saved_model" and isinstance(value, (str, list)):
            print(f"wrote {', '.join([value] if isinstance(value, str) else value)}")
    return outputs


def classifier_metrics(classifier, config, sample, options):
    """The reference classifier's metrics of `sample` ("quality") and, with
    --real_baseline, of real training images ("quality_real_baseline"), each printed."""
    from tfgan_cifar.metrics.evaluator import ClassifierEvaluator, real_batches
    from tfgan_cifar.training.hooks import quality_line

    evaluator = ClassifierEvaluator(config, classifier)
    result = evaluator.evaluate(sample, seed=options.seed)
    result["reference"] = evaluator.reference_description
    print(f"{quality_line(result)} vs {evaluator.reference_description}", flush=True)
    outputs = {"quality": result}
    if options.real_baseline:
        real = data_lib.load_training_data(config)
        pick = data_lib.subset_indices(len(real), options.fid_samples)
        baseline = evaluator.score(real_batches(real.images[pick], real.labels[pick]),
                                   conditional=True)
        print(f"real baseline: {quality_line(baseline)}", flush=True)
        outputs["quality_real_baseline"] = baseline
    return outputs


def intra_class(config, sample, z_dim, seed, evaluator, classifier):
    """Intra-class FID (with an Inception `evaluator`) and intra-class FD_classifier (with a
    reference `classifier`) of a conditional generator, each printed."""
    from tfgan_cifar.metrics import conditional
    from tfgan_cifar.metrics.evaluator import reference_source

    extractors = {}
    if evaluator is not None:
        extractors["fid"] = evaluator.extractor
    if classifier is not None:
        extractors["fd_classifier"] = classifier
    if not extractors:
        raise UserError("--intra_class needs InceptionV3 weights (--inception_weights=PATH) or "
                        "a reference classifier (--classifier=PATH)")
    source, load = reference_source(config)
    test = load()
    results = {}
    for name, extractor in extractors.items():
        result = conditional.intra_class_fd(sample, z_dim, extractor, test, source,
                                            os.path.expanduser(config.fid_cache_dir),
                                            seed=seed)
        results[name] = result
        label = evaluator.label if name == "fid" else "FD_classifier"
        print(f"intra-class {label} {result['mean']:.2f}: mean over {len(test.class_names)} "
              f"classes, {min(result['samples_per_class'])}-"
              f"{max(result['samples_per_class'])} samples each vs {source}", flush=True)
    return results


def load_classifier(path):
    """The classifier head of a best-model directory's `discriminator.keras`, or None.

    Returns a function: images in [-1, 1] [N, 32, 32, 3] -> class probabilities [N, C].
    """
    keras_file = os.path.join(path, export.DISCRIMINATOR_FILE)
    if not os.path.exists(keras_file):
        return None
    import keras

    import tfgan_cifar.nn  # noqa: F401  (registers the classes for deserialisation)

    discriminator = keras.saving.load_model(keras_file)

    def probabilities(images, batch_size=500):
        chunks = []
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[start:start + batch_size], np.float32)
            # Batch statistics, as in training: D's moving ones are mostly of fake batches.
            _, logits = discriminator(batch, np.zeros(len(batch), np.int32), training=True,
                                      return_class_logits=True)
            chunks.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)))
        return np.concatenate(chunks)

    return probabilities


def class_rows(sample, z_dim, config, rng, classifier=None, per_class=10):
    """`per_class` generated images for each class, row by row, and the rows' labels.

    Conditional generators are asked for each label. Unconditional ones sample a pool of
    SORT_POOL_FACTOR x as many images, and `classifier` (images -> class probabilities, see
    `load_classifier`) sorts them: each row shows the most confident images among those it
    assigns to that class, topped up with the next most likely ones. Without a classifier the
    rows are unsorted samples.

    Returns:
        (images float32 [num_classes * per_class, 32, 32, 3] in [-1, 1], row labels).
    """
    names, count = _class_names(config), config.num_classes * per_class
    if config.conditional:
        labels = np.repeat(np.arange(config.num_classes), per_class).astype(np.int32)
        z = rng.standard_normal((count, z_dim)).astype(np.float32)
        return np.asarray(sample(z, labels), np.float32), names
    if classifier is None:
        z = rng.standard_normal((count, z_dim)).astype(np.float32)
        return (np.asarray(sample(z, np.zeros(count, np.int32)), np.float32),
                ["unsorted"] * config.num_classes)
    pool_size = SORT_POOL_FACTOR * count
    pool = np.concatenate([
        np.asarray(sample(rng.standard_normal((n, z_dim)).astype(np.float32),
                          np.zeros(n, np.int32)), np.float32)
        for n in [min(500, pool_size - s) for s in range(0, pool_size, 500)]])
    probabilities = np.asarray(classifier(pool))
    assigned = probabilities.argmax(axis=1)
    rows = []
    for label in range(config.num_classes):
        by_confidence = np.argsort(-probabilities[:, label], kind="stable")
        mine = by_confidence[assigned[by_confidence] == label]
        others = by_confidence[assigned[by_confidence] != label]
        rows.append(np.concatenate([mine, others])[:per_class])
    return pool[np.concatenate(rows)], names


def _write_json(path, values):
    write_text(path, json.dumps(values, indent=2, sort_keys=True) + "\n")


def write_samples_npz(path, count, draw, chunk=500):
    """N generated images as uint8 `x` (N x 32 x 32 x 3) with int32 labels `y`."""
    xs, ys = [], []
    for start in range(0, count, chunk):
        images, labels = draw(min(chunk, count - start))
        xs.append(grids.to_uint8(images))
        ys.append(np.asarray(labels, np.int32))
    with replacing(path, "wb") as f:
        np.savez(f, x=np.concatenate(xs), y=np.concatenate(ys))
    return path


def attention_maps(path, config, out_dir, draw):
    """For SAGAN: attention over all positions for a few query pixels, per attention block."""
    if config.model != "sagan":
        raise UserError("--attention_maps needs a SAGAN generator")

    generator = _load_keras_generator(path)
    z = np.random.default_rng(config.seed).standard_normal((1, generator.z_dim)).astype("float32")
    images, maps = generator(z, np.zeros(1, np.int32), training=False, return_attention=True)
    written = []
    for resolution, attention in maps.items():
        target = os.path.join(out_dir, f"attention_{resolution}x{resolution}.png")
        internals.plot_attention(np.asarray(images)[0], np.asarray(attention)[0],
                             internals.default_query_points(resolution), target)
        written.append(target)
    return written


def weight_figures(path, config, out_dir):
    """First-layer filters and weight histograms of G (the .keras copy) and D (checkpoint)."""
    generator = _load_keras_generator(path)
    written = internals.plot_weights(generator, os.path.join(out_dir, "weights_generator"))
    discriminator = _restore_discriminator(config)
    if discriminator is not None:
        written += internals.plot_weights(discriminator, os.path.join(out_dir, "weights_discriminator"))
    return written


def _restore_discriminator(config):
    """D from the newest checkpoint of the run directory, written by either backend (a
    `tf.train.Checkpoint`, or a JAX `.npz`), or None (with a notice) when there is none."""
    from tfgan_cifar.nn import build_models

    run = RunDir(config.workdir)
    _, discriminator = build_models(config)
    discriminator.build_weights()
    npz = run.npz_checkpoints()
    if npz:
        with np.load(npz[-1][1]) as saved:  # JAX stores D's i-th value as "d/i" (jax_backend)
            for part, variables in (("d", discriminator.trainable_variables),
                                    ("d_nt", discriminator.non_trainable_variables)):
                for i, variable in enumerate(variables):
                    variable.assign(saved[f"{part}/{i}"])
        return discriminator
    import tensorflow as tf

    from tfgan_cifar.training.tf_backend import by_position

    latest = tf.train.latest_checkpoint(run.checkpoints)
    if latest is None:
        print(f"no checkpoint in {run.checkpoints}: skipping D's weight figures")
        return None
    tf.train.Checkpoint(discriminator=by_position(discriminator.variables)).restore(
        latest).expect_partial()
    return discriminator
