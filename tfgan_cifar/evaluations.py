"""What evaluate.py computes from a loaded generator beyond FID and its grids: the reference
classifier's metrics, intra-class FD, the classification accuracy score, and the figures of
the networks themselves (attention maps, weights)."""

import os

import numpy as np

from tfgan_cifar import data as data_lib, export
from tfgan_cifar.errors import UserError
from tfgan_cifar.metric_schema import BY_KEY, fid_label, quality_line
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.viz import internals


def reference_classifier_metrics(classifier, config, sample, seed, real_baseline):
    """The reference classifier's metrics of `sample` ("quality") and, with `real_baseline`,
    of --fid_samples real training images ("quality_real_baseline"), each printed."""
    from tfgan_cifar.metrics.evaluator import ClassifierEvaluator, real_batches

    evaluator = ClassifierEvaluator(config, classifier)
    result = evaluator.evaluate(sample, seed=seed)
    result["reference"] = evaluator.reference_description
    print(f"{quality_line(result)} vs {evaluator.reference_description}", flush=True)
    outputs = {"quality": result}
    if real_baseline:
        real = data_lib.load_training_data(config)
        pick = data_lib.subset_indices(len(real), config.fid_samples)
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
                        "a reference classifier (--reference_classifier=PATH)")
    source, load = reference_source(config)
    test = load()
    results = {}
    for name, extractor in extractors.items():
        result = conditional.intra_class_fd(sample, z_dim, extractor, test, source,
                                            os.path.expanduser(config.fid_cache_dir),
                                            seed=seed)
        results[name] = result
        label = fid_label(config.fid_network) if name == "fid" else BY_KEY[name].label
        print(f"intra-class {label} {result['mean']:.2f}: mean over "
              f"{len(test.class_names)} classes, {min(result['samples_per_class'])}-"
              f"{max(result['samples_per_class'])} samples each vs {source}", flush=True)
    return results


def classification_accuracy_score(config, sample, z_dim, seed, num_samples, epochs):
    """CAS of the generator (see `metrics.conditional`), printed."""
    from tfgan_cifar.metrics import conditional
    from tfgan_cifar.metrics.evaluator import reference_source

    test = reference_source(config, "test")[1]()
    print(f"CAS: training the classifier on {num_samples} generated images ({epochs} epochs)",
          flush=True)
    result = conditional.classification_accuracy_score(sample, z_dim, test, num_samples,
                                                       epochs, seed=seed)
    print(f"classification accuracy score (CAS) {result['cas']:.4f} on {len(test)} real test "
          "images", flush=True)
    return result


def _keras_generator(path):
    try:
        return export.load_keras_generator(path)
    except FileNotFoundError:
        raise UserError(f"{path} has no {export.KERAS_FILE}: attention maps and weight images "
                        "need the .keras copy that training exports beside the SavedModel"
                        ) from None


def attention_maps(path, config, out_dir):
    """For SAGAN: attention over all positions for a few query pixels, per attention block."""
    if config.model != "sagan":
        raise UserError("--attention_maps needs a SAGAN generator")
    generator = _keras_generator(path)
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
    generator = _keras_generator(path)
    written = internals.plot_weights(generator, os.path.join(out_dir, "weights_generator"))
    discriminator = restore_discriminator(config)
    if discriminator is not None:
        written += internals.plot_weights(discriminator,
                                          os.path.join(out_dir, "weights_discriminator"))
    return written


def restore_discriminator(config):
    """D from the newest checkpoint of the run directory, written by either backend (each
    backend reads its own format), or None (with a notice) when there is none."""
    from tfgan_cifar.nn import build_models

    run = RunDir(config.workdir)
    newest = [(files[-1][0], backend, files[-1][1])
              for backend, files in run.checkpoint_files().items() if files]
    if not newest:
        print(f"no checkpoint in {run.checkpoints}: skipping D's weight figures")
        return None
    _, backend, path = max(newest)
    _, discriminator = build_models(config)
    discriminator.build_weights()
    if backend == "jax":
        from tfgan_cifar.training.jax_backend import restore_discriminator as restore
    else:
        from tfgan_cifar.training.tf_backend import restore_discriminator as restore
    restore(discriminator, path)
    return discriminator
