"""The reference classifier: it learns, its file round-trips, and bad files give one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfgan_cifar import reference_classifier
from tfgan_cifar.data import ImageSet
from tfgan_cifar.errors import UserError
from tfgan_cifar.reference_classifier import network, recipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLOURS = np.array([[220, 40, 40], [40, 200, 60], [50, 60, 230]], np.float64)


def coloured_images(n, seed):
    """n images of three classes: noisy fields of a class colour with a random dark square."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype(np.int32)
    images = COLOURS[labels][:, None, None, :] + rng.normal(0, 40, (n, 32, 32, 3))
    for image, (y, x) in zip(images, rng.integers(0, 24, (n, 2))):
        image[y:y + 8, x:x + 8] *= 0.3
    images = np.clip(images, 0, 255).astype(np.uint8)
    return ImageSet(images, labels, ["red", "green", "blue"], f"synthetic:{seed}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model, settings = reference_classifier.train_classifier(
        coloured_images(192, seed=0), epochs=3, batch_size=16, width=4, seed=0, verbose=False)
    path = str(tmp_path_factory.mktemp("classifier") / "tiny.keras")
    reference_classifier.save(model, path, {"test_accuracy": 1.0, "settings": settings})
    return model, path


def test_classifier_learns_coloured_images(trained):
    model, _ = trained
    test = coloured_images(120, seed=1)
    classifier = reference_classifier.ReferenceClassifier(model)
    assert classifier.accuracy(test.images, test.labels) >= 0.95


def test_saved_classifier_round_trips(trained):
    model, path = trained
    loaded = reference_classifier.load(path, num_classes=3)
    images = coloured_images(10, seed=2).images.astype(np.float32) / 127.5 - 1
    logits, features = loaded.logits_and_features(images)
    np.testing.assert_allclose(logits, np.asarray(model(images, training=False)), atol=1e-5)
    assert features.shape == (10, loaded.feature_dim) == (10, 16)
    mirrored = loaded.logits_and_features(images[:, :, ::-1])  # mirror averaging, saved too
    np.testing.assert_allclose(mirrored[0], logits, atol=1e-5)
    np.testing.assert_allclose(mirrored[1], features, atol=1e-5)
    assert loaded.info["settings"]["width"] == 4
    assert loaded.cache_key["classifier"] == os.path.abspath(path)
    assert reference_classifier.load(os.path.dirname(path) + "/tiny.keras").num_classes == 3


def test_augmentation_crops_and_flips_within_the_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    out = recipe.augment(images, rng)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1
    assert not np.array_equal(out, images / 127.5 - 1)
    same = recipe.augment(images, rng, pad=0)  # no crop: each image, maybe flipped
    original = images.astype(np.float32) / 127.5 - 1
    assert all(np.array_equal(s, o) or np.array_equal(s, o[:, ::-1])
               for s, o in zip(same, original))


def test_alternating_flips_flip_exactly_the_given_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    flips = np.array([True, False, True, False, False, True])
    out = recipe.augment(images, rng, pad=0, flips=flips)
    original = images.astype(np.float32) / 127.5 - 1
    np.testing.assert_array_equal(out[flips], original[flips][:, :, ::-1])
    np.testing.assert_array_equal(out[~flips], original[~flips])


def test_training_batches_cover_each_image_once_per_epoch_and_alternate_flips():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    images[:, :, :5] = 0  # dark on the left, bright on the right: a 2-px shift keeps both
    images[:, :, -5:] = 255
    onehot = np.eye(10, dtype=np.float32)  # image i has label i
    batches = recipe.TrainingBatches(images, onehot, batch_size=4, seed=3)
    assert len(batches) == 2  # the last partial batch is dropped

    def epoch():
        backwards = [batches[i] for i in reversed(range(len(batches)))][::-1]
        pairs = [batches[i] for i in range(len(batches))]
        for (x, y), (x_again, y_again) in zip(pairs, backwards):  # order-independent
            np.testing.assert_array_equal(x, x_again)
            np.testing.assert_array_equal(y, y_again)
        x = np.concatenate([x for x, _ in pairs])
        labels = np.concatenate([y for _, y in pairs]).argmax(1)
        flipped = x[:, :, :2].mean(axis=(1, 2, 3)) > x[:, :, -2:].mean(axis=(1, 2, 3))
        return labels, flipped, x

    first, first_flips, first_x = epoch()
    batches.on_epoch_end()
    second, second_flips, second_x = epoch()
    assert len(set(first)) == len(first) == 8 and len(set(second)) == 8
    assert not np.array_equal(first, second)  # reshuffled
    assert 0 < first_flips.sum() < 8
    flipped_in_first = dict(zip(first, first_flips))
    for label, flips in zip(second, second_flips):
        if label in flipped_in_first:
            assert flips != flipped_in_first[label]  # the other half is flipped
    assert first_x.min() >= -1 and first_x.max() <= 1 and first_x.dtype == np.float32
    again = recipe.TrainingBatches(images, onehot, batch_size=4, seed=3)
    np.testing.assert_array_equal(again[0][0], first_x[:4])  # a batch is a function of the seed


def test_noise_goes_on_about_half_the_images_within_its_largest_sigma():
    images = np.zeros((400, 32, 32, 3), np.float32)
    noised = recipe.add_noise(images, np.random.default_rng(0), max_sigma=0.1)
    sigma = noised.reshape(400, -1).std(axis=1)
    assert noised.dtype == np.float32 and np.abs(noised).max() <= 1
    assert 150 < (sigma == 0).sum() < 250  # about half untouched
    assert sigma.max() < 0.105 and 0.04 < sigma[sigma > 0].mean() < 0.06  # uniform in [0, 0.1]
    ones = np.ones((8, 32, 32, 3), np.float32)
    assert recipe.add_noise(ones, np.random.default_rng(1), 5.0).max() == 1.0  # clipped


def test_patch_whitening_decorrelates_the_patches_it_was_adapted_on():
    import keras

    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(3, 3))  # strongly correlated colour channels
    images = (rng.normal(size=(40, 8, 8, 3)) @ mixing).astype(np.float32)
    layer = network.PatchWhitening(name="whitening")
    layer.build((None, 8, 8, 3))
    layer.adapt(images, eps=1e-9)
    out = np.asarray(layer(keras.ops.convert_to_tensor(images)), np.float64)
    assert out.shape == (40, 7, 7, 24)
    first = out[..., :12].reshape(-1, 12)
    np.testing.assert_allclose(first.T @ first / len(first), np.eye(12), atol=1e-4)
    np.testing.assert_allclose(out[..., 12:], -out[..., :12], atol=1e-5)


def test_patch_whitening_amplifies_faint_directions_at_most_by_its_floor():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 8, 8, 3)).astype(np.float32)
    images[..., 2] = images[..., 0] + 1e-3 * images[..., 2]  # a direction with almost no variance
    layer = network.PatchWhitening(name="whitening")
    layer.build((None, 8, 8, 3))
    layer.adapt(images)
    gains = np.linalg.svd(np.asarray(layer.kernel).reshape(12, 24)[:, :12], compute_uv=False)
    mean_variance = np.mean(images.astype(np.float64) ** 2)  # the uncentred patch variance
    floor = network.WHITENING_EPS * mean_variance
    assert gains.max() == pytest.approx(1 / np.sqrt(floor), rel=0.01)  # not 1/sqrt(1e-6)


def test_shift_batch_norm_learns_its_shift_64_times_faster():
    import keras
    import tensorflow as tf

    layer = network.ShiftBatchNorm()
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 2, 2, 3)), tf.float32)
    layer.build(x.shape)
    layer.shift.assign(np.array([1.0, 0.0, -0.5], np.float32))
    normalized = np.asarray(layer.norm(x, training=True))
    applied = np.asarray(layer(x, training=True)) - normalized  # the shift the layer adds
    np.testing.assert_allclose(applied[0, 0, 0], 8.0 * np.array([1.0, 0.0, -0.5]), atol=1e-5)
    upstream = tf.constant([1.0, 2.0, -3.0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) * upstream)
    gradient = tape.gradient(loss, layer.shift.value)
    keras.optimizers.SGD(0.01).apply_gradients([(gradient, layer.shift)])
    # d loss / d (applied shift) = 16 * upstream (4 x 2 x 2 positions per channel)
    np.testing.assert_allclose(np.asarray(layer.shift) * 8.0,
                               8.0 * np.array([1.0, 0.0, -0.5]) - 64 * 0.01 * 16 * upstream,
                               rtol=1e-5)


def test_convolutions_start_as_identities_on_their_first_channels():
    model = reference_classifier.build_classifier(3, width=4)
    kernel = np.asarray(model.get_layer("group2_conv2").kernel)  # 16 -> 16 channels
    centre = np.zeros((3, 3))
    centre[1, 1] = 1
    for channel in range(16):
        expected = np.zeros((3, 3, 16))
        expected[..., channel] = centre
        np.testing.assert_array_equal(kernel[..., channel], expected)
    widening = np.asarray(model.get_layer("group2_conv1").kernel)  # 4 -> 16: 12 stay random
    assert widening[1, 1, 3, 3] == 1 and np.abs(widening[..., 4:]).max() > 0


def test_triangle_schedule_rises_to_its_peak_then_falls():
    schedule = recipe.Triangle(2.0, total_steps=100, peak_at=0.25, start=0.2, end=0.1)
    values = [float(schedule(step)) for step in (0, 12.5, 25, 62.5, 100)]
    np.testing.assert_allclose(values, [0.4, 1.2, 2.0, 1.1, 0.2], atol=1e-6)


def test_lookahead_replaces_the_weights_by_their_slow_average():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    lookahead = recipe.Lookahead(total_steps=10, start=0.2, every=2, decay=0.5, power=1)
    lookahead.set_model(model)
    kernel = model.weights[0]
    slow = None
    for step in range(1, 11):
        kernel.assign(np.full((2, 1), float(step), np.float32))  # what training did
        lookahead.on_train_batch_end(step - 1)
        if step >= 2 and step % 2 == 0:
            if slow is None:
                slow = float(step)
            else:
                rho = 0.5 ** 2 * (step / 10)
                slow = rho * slow + (1 - rho) * step
            np.testing.assert_allclose(np.asarray(kernel), slow, rtol=1e-6)
    kernel.assign(np.zeros((2, 1), np.float32))
    lookahead.on_epoch_end(0)
    np.testing.assert_allclose(np.asarray(kernel), slow, rtol=1e-6)


def test_bad_classifier_files_give_one_clear_line(trained, tmp_path):
    _, path = trained
    with pytest.raises(UserError, match=r"classifies 3 classes but the model has 10"):
        reference_classifier.load(path, num_classes=10)
    with pytest.raises(UserError, match=r"--reference_classifier=.*missing.keras is not a file"):
        reference_classifier.load(str(tmp_path / "missing.keras"))
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(UserError, match=r"is not a reference classifier") as error:
        reference_classifier.load(str(garbage))
    assert "\n" not in str(error.value)


def _command(*args):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "tfgan_cifar.classifier", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def test_command_trains_tests_and_saves_with_a_record(cifar_like_dir, tmp_path, capfd):
    from tfgan_cifar import classifier

    code = classifier.main(["tfgan-classifier", f"--image_dir={cifar_like_dir / 'train'}",
                            "--epochs=1", "--width=4", "--batch_size=8",
                            f"--out={tmp_path / 'out'}"])
    assert code == 0
    path = tmp_path / "out" / reference_classifier.DEFAULT_NAME
    record = json.loads((tmp_path / "out" / "classifier_cifar10.json").read_text())
    assert record["test_images"] == 24 and record["train_images"] == 24
    assert record["test_source"].endswith(os.path.join("cifar_like0", "test"))
    assert record["settings"]["epochs"] == 1 and 0 <= record["test_accuracy"] <= 1
    assert f"wrote {path}" in capfd.readouterr().out
    assert reference_classifier.load(str(tmp_path / "out"), num_classes=3).num_classes == 3


def test_command_without_image_dir_says_what_to_pass():
    result = _command("--epochs=1")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--image_dir" in errors[0]


def _no_inception(monkeypatch):
    from tfgan_cifar.metrics import inception

    def no_download(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(inception.keras.applications, "InceptionV3", no_download)


def _train_config(cifar_like_dir, tmp_path, **overrides):
    from tfgan_cifar.config import TrainConfig

    values = dict(model="sagan", image_dir=str(cifar_like_dir / "train"),
                  workdir=str(tmp_path / "run"), save_dir=str(tmp_path / "saved"),
                  fid_cache_dir=str(tmp_path / "cache"), width=4, z_dim=8, batch_size=4,
                  steps=4, log_every=2, sample_every=0, checkpoint_every=0, eval_every=2,
                  fid_samples=12, num_classes=3,
                  run_eagerly=True)  # the subject is evaluation, not the compiled step
    values.update(overrides)
    return TrainConfig(**values).resolved()


@pytest.fixture(scope="module")
def classifier_run(cifar_like_dir, tmp_path_factory, untrained_classifier_file):
    """A tiny SAGAN run with --classifier and no Inception weights: (config, its stdout)."""
    import contextlib
    import io

    from tfgan_cifar.training import loop

    tmp = tmp_path_factory.mktemp("classifier_run")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _no_inception(monkeypatch)
        config = _train_config(cifar_like_dir, tmp, reference_classifier=untrained_classifier_file)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            loop.train(config)
    return config, out.getvalue()


def test_training_with_a_classifier_logs_quality_and_selects_by_fd_classifier(classifier_run):
    from tfgan_cifar import export
    from tfgan_cifar.run_dir import RunDir

    config, out = classifier_run
    run = RunDir(config.workdir)
    evals = run.metrics.records("eval")
    assert [r["step"] for r in evals] == [2, 4]
    for record in evals:
        assert "fid" not in record and np.isfinite(record["fd_classifier"])
        assert 0 <= record["class_acc"] <= 1 and len(record["class_acc_per_class"]) == 3
        assert record["classifier_samples"] == 12 and len(record["class_distribution"]) == 3
        assert record["class_kl"] >= 0
        assert {"precision_clf", "recall_clf", "density_clf", "coverage_clf"} <= set(record)
    info = export.read_info(run.export_dir("best"))
    assert info["selected_by"] == "fd_classifier"
    assert info["fd_classifier"] == min(r["fd_classifier"] for r in evals)
    assert info["step"] == min(evals, key=lambda r: r["fd_classifier"])["step"]
    assert os.path.exists(os.path.join(config.workdir, "quality.png"))
    assert not os.path.exists(os.path.join(config.workdir, "fid.png"))
    assert "FD_classifier" in out and "best so far by fd_classifier" in out

    import tensorflow as tf

    tags = set()
    for events in tf.io.gfile.glob(os.path.join(config.workdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(events):
            tags.update(value.tag for value in event.summary.value)
    assert {"quality/fd_classifier", "quality/class_acc", "quality/class_acc/2"} <= tags


def test_evaluate_reports_classifier_metrics_intra_class_and_cas(
        classifier_run, tmp_path, untrained_classifier_file, capsys):
    from tfgan_cifar import evaluate_model
    from tfgan_cifar.run_dir import RunDir

    config, _ = classifier_run
    outputs = evaluate_model.run(evaluate_model.EvaluateOptions(
        model="sagan", saved_model=RunDir(config.workdir).export_dir("best"),
        output_dir=str(tmp_path), fid=False, reference_classifier=untrained_classifier_file,
        fid_samples=12,
        real_baseline=True, intra_class=True, cas=True, cas_samples=24, cas_epochs=1,
        fid_cache_dir=config.fid_cache_dir, image_dir=config.image_dir))
    assert outputs["quality"]["classifier_samples"] == 12 and "class_acc" in outputs["quality"]
    assert "fd_classifier" in outputs["quality_real_baseline"]
    intra = outputs["intra_class"]
    assert list(intra) == ["fd_classifier"] and len(intra["fd_classifier"]["per_class"]) == 3
    assert intra["fd_classifier"]["samples_per_class"] == [8, 8, 8]
    assert intra["fd_classifier"]["mean"] == pytest.approx(
        np.mean(intra["fd_classifier"]["per_class"]))
    assert 0 <= outputs["cas"]["cas"] <= 1 and outputs["cas"]["cas_samples"] == 24
    written = json.loads((tmp_path / "SAGAN" / "metrics.json").read_text())
    assert set(written) == {"quality", "quality_real_baseline", "intra_class", "cas"}
    out = capsys.readouterr().out
    assert "intra-class FD_classifier" in out and "(CAS)" in out


def test_training_refuses_a_classifier_for_other_classes_before_writing(
        cifar_like_dir, tmp_path, untrained_classifier_file):
    from tfgan_cifar.training import loop

    config = _train_config(cifar_like_dir, tmp_path, reference_classifier=untrained_classifier_file,
                           num_classes=10)
    with pytest.raises(UserError, match="classifies 3 classes but the model has 10"):
        loop.train(config)
    assert not os.path.exists(os.path.join(config.workdir, "config.json"))
    with pytest.raises(UserError, match="--reference_classifier=.*does not exist"):
        _train_config(cifar_like_dir, tmp_path,
                      reference_classifier=str(tmp_path / "nothing.keras"))


def test_report_shows_the_quality_metrics(classifier_run, tmp_path):
    from tfgan_cifar.report import build_report
    from tfgan_cifar.run_dir import RunDir, best_eval

    config, _ = classifier_run
    written = build_report([config.workdir], str(tmp_path / "report"))
    markdown = open(written["markdown"]).read()
    table, row = [line for line in markdown.splitlines() if line.startswith("| run |")][:2]
    assert "best FD_classifier" in table and "class accuracy" in table
    assert "precision / recall (Inception)" not in table  # no run has Inception features
    best = best_eval(RunDir(config.workdir).metrics.records(), "fd_classifier")
    cells = dict(zip([c.strip() for c in table.strip("|").split("|")],
                     [c.strip() for c in row.strip("|").split("|")]))
    assert cells["best FD_classifier"] == f"{best['fd_classifier']:.2f}"
    assert cells["class accuracy"] == f"{best['class_acc']:.3f}"
    assert "## Quality metrics" in markdown
    assert any(name.endswith("-quality.png") for name in os.listdir(tmp_path / "report" / "images"))


def test_command_defaults_are_the_recipe_defaults():
    """ClassifierOptions repeats train_classifier's defaults (it must not import Keras)."""
    import inspect

    from tfgan_cifar.classifier import ClassifierOptions

    options = ClassifierOptions()
    defaults = inspect.signature(reference_classifier.train_classifier).parameters
    for name in ("epochs", "batch_size", "width", "learning_rate", "noise", "seed"):
        assert getattr(options, name) == defaults[name].default, name
