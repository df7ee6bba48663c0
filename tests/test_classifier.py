"""The reference classifier: it learns, its file round-trips, and bad files give one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfgan_cifar.data import ImageSet
from tfgan_cifar.errors import UserError
from tfgan_cifar.metrics import classifier as classifier_lib

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
    model, settings = classifier_lib.train_classifier(
        coloured_images(192, seed=0), epochs=3, batch_size=16, width=4, learning_rate=0.05,
        seed=0, verbose=False)
    path = str(tmp_path_factory.mktemp("classifier") / "tiny.keras")
    classifier_lib.save(model, path, {"test_accuracy": 1.0, "settings": settings})
    return model, path


def test_classifier_learns_coloured_images(trained):
    model, _ = trained
    test = coloured_images(120, seed=1)
    assert classifier_lib.ReferenceClassifier(model).accuracy(test.images, test.labels) >= 0.95


def test_saved_classifier_round_trips(trained):
    model, path = trained
    loaded = classifier_lib.load(path, num_classes=3)
    images = coloured_images(10, seed=2).images.astype(np.float32) / 127.5 - 1
    logits, features = loaded.logits_and_features(images)
    np.testing.assert_allclose(logits, np.asarray(model(images, training=False)), atol=1e-5)
    assert features.shape == (10, loaded.feature_dim) == (10, 32)
    assert loaded.info["settings"]["width"] == 4
    assert loaded.cache_key["classifier"] == os.path.abspath(path)
    assert classifier_lib.load(os.path.dirname(path) + "/tiny.keras").num_classes == 3


def test_augmentation_crops_and_flips_within_the_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    out = classifier_lib.augment(images, rng)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1
    assert not np.array_equal(out, images / 127.5 - 1)
    same = classifier_lib.augment(images, rng, pad=0)  # no crop: each image, maybe flipped
    original = images.astype(np.float32) / 127.5 - 1
    assert all(np.array_equal(s, o) or np.array_equal(s, o[:, ::-1])
               for s, o in zip(same, original))


def test_bad_classifier_files_give_one_clear_line(trained, tmp_path):
    _, path = trained
    with pytest.raises(UserError, match=r"classifies 3 classes but the model has 10"):
        classifier_lib.load(path, num_classes=10)
    with pytest.raises(UserError, match=r"--classifier=.*missing.keras is not a file"):
        classifier_lib.load(str(tmp_path / "missing.keras"))
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(UserError, match=r"is not a reference classifier") as error:
        classifier_lib.load(str(garbage))
    assert "\n" not in str(error.value)


def _command(*args):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "tfgan_cifar.classifier", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def test_command_trains_tests_and_saves_with_a_record(cifar_like_dir, tmp_path):
    result = _command(f"--image_dir={cifar_like_dir / 'train'}", "--epochs=1", "--width=4",
                      "--batch_size=8", f"--out={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "out" / classifier_lib.DEFAULT_NAME
    record = json.loads((tmp_path / "out" / "classifier_cifar10.json").read_text())
    assert record["test_images"] == 24 and record["train_images"] == 24
    assert record["test_source"].endswith(os.path.join("cifar_like0", "test"))
    assert record["settings"]["epochs"] == 1 and 0 <= record["test_accuracy"] <= 1
    assert f"wrote {path}" in result.stdout
    assert classifier_lib.load(str(tmp_path / "out"), num_classes=3).num_classes == 3


def test_command_without_image_dir_says_what_to_pass():
    result = _command("--epochs=1")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--image_dir" in errors[0]


@pytest.fixture(scope="module")
def untrained_file(tmp_path_factory):
    """An untrained 3-class classifier file: enough to check the plumbing of the metrics."""
    import keras

    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("untrained") / "c3.keras")
    return classifier_lib.save(classifier_lib.build_classifier(3, width=4), path, {})


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
                  fid_samples=12, num_classes=3)
    values.update(overrides)
    return TrainConfig(**values).resolved()


@pytest.fixture(scope="module")
def classifier_run(cifar_like_dir, tmp_path_factory, untrained_file):
    """A tiny SAGAN run with --classifier and no Inception weights: (config, its stdout)."""
    import contextlib
    import io

    from tfgan_cifar.training import loop

    tmp = tmp_path_factory.mktemp("classifier_run")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _no_inception(monkeypatch)
        config = _train_config(cifar_like_dir, tmp, classifier=untrained_file)
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


def test_evaluate_reports_classifier_metrics_intra_class_and_cas(classifier_run, tmp_path,
                                                                untrained_file, capsys):
    from tfgan_cifar import evaluate_model
    from tfgan_cifar.run_dir import RunDir

    config, _ = classifier_run
    outputs = evaluate_model.run(evaluate_model.EvaluateOptions(
        model="sagan", saved_model=RunDir(config.workdir).export_dir("best"),
        output_dir=str(tmp_path), fid=False, classifier=untrained_file, fid_samples=12,
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
        cifar_like_dir, tmp_path, untrained_file):
    from tfgan_cifar.training import loop

    config = _train_config(cifar_like_dir, tmp_path, classifier=untrained_file,
                           num_classes=10)
    with pytest.raises(UserError, match="classifies 3 classes but the model has 10"):
        loop.train(config)
    assert not os.path.exists(os.path.join(config.workdir, "config.json"))
    with pytest.raises(UserError, match="--classifier=.*does not exist"):
        _train_config(cifar_like_dir, tmp_path, classifier=str(tmp_path / "nothing.keras"))


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
