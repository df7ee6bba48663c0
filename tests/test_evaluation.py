"""FID cadence during training, the best-model export, and evaluate.py end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import no_tensorflow
from tfgan_cifar import data, evaluate_model, export, metric_schema
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.metrics import inception
from tfgan_cifar.metrics.evaluator import reference_source
from tfgan_cifar.run_dir import RunDir, published_best
from tfgan_cifar.training import loop
from tfgan_cifar.training.tf_backend import TFTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(cifar_like_dir, tmp, weights, **overrides):
    values = dict(model="sagan", image_dir=str(cifar_like_dir / "train"), workdir=str(tmp / "run"),
                  save_dir=str(tmp / "saved"), fid_cache_dir=str(tmp / "cache"), width=4, z_dim=8,
                  batch_size=4, steps=4, log_every=1, sample_every=2, checkpoint_every=2,
                  eval_every=2, fid_samples=6, inception_weights=weights, num_classes=3,
                  run_eagerly=True)  # the subject is evaluation, not the compiled step
    values.update(overrides)
    return TrainConfig(**values).resolved()


@pytest.fixture(scope="module")
def trained_run(cifar_like_dir, inception_weights_file, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluated_run")
    config = _config(cifar_like_dir, tmp, inception_weights_file, steps=5)
    loop.train(config)
    return config


def test_training_evaluates_at_its_cadence_and_keeps_the_best(trained_run):
    config = trained_run
    log = RunDir(config.workdir).metrics
    evals = log.records("eval")
    assert [r["step"] for r in evals] == [2, 4, 5]  # every --eval_every steps and the last
    for record in evals:
        assert record["num_samples"] == 6 and record["reference_samples"] == 6
        assert np.isfinite(record["fid"]) and "kid_std" in record
        assert record["reference"].endswith(os.path.join("cifar_like0", "test")) or \
            record["reference"].endswith("test")
    for name in ("fid.png", "losses.png"):
        with Image.open(os.path.join(config.workdir, name)) as image:
            assert min(image.size) > 100
    best = RunDir(config.workdir).export_dir("best")
    assert export.read_info(published_best(config.save_dir, "sagan")) == export.read_info(best)
    info = json.load(open(os.path.join(best, "best.json")))
    assert info["fid"] == min(r["fid"] for r in evals)
    assert info["num_samples"] == 6 and info["config"]["model"] == "sagan"
    assert os.path.exists(os.path.join(best, "saved_model", "saved_model.pb"))
    assert os.path.exists(os.path.join(best, "generator.keras"))
    assert len(os.listdir(config.fid_cache_dir)) == 1  # reference statistics computed once
    assert export.read_info(RunDir(config.workdir).export_dir("final"))["step"] == 5
    undeclared = {key for record in log.records() for key in record
                  if key not in ("kind", "step") and metric_schema.lookup(key) is None}
    assert not undeclared  # every logged value is declared in metric_schema


def test_without_inception_weights_evaluation_is_off_and_the_final_generator_is_used(
        cifar_like_dir, tmp_path, monkeypatch, capsys):
    def no_download(*args, weights=None, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(inception.keras.applications, "InceptionV3", no_download)
    config = _config(cifar_like_dir, tmp_path, None, steps=2, model="dcgan")
    loop.train(config)
    out = capsys.readouterr().out
    notices = [line for line in out.splitlines() if line.startswith("FID evaluation is off")]
    assert len(notices) == 1 and "--inception_weights" in notices[0]
    assert RunDir(config.workdir).metrics.records("eval") == []
    final = RunDir(config.workdir).export_dir("final")
    assert "finished 2 steps" in out and f"final generator exported to {final}" in out
    assert not os.path.exists(RunDir(config.workdir).export_dir("best"))
    assert not os.path.exists(published_best(config.save_dir, "dcgan"))
    info = export.read_info(final)
    assert info["step"] == 2 and info["final"] and "fid" not in info
    assert info["workdir"] == os.path.abspath(config.workdir)

    # The export is the generator of the last checkpoint, and evaluate.py falls back to it.
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    assert trainer.restore() == 2
    z = np.random.default_rng(0).standard_normal((4, config.z_dim)).astype(np.float32)
    labels = np.zeros(4, np.int32)
    sample, _ = export.load_sampler(final)
    np.testing.assert_allclose(sample(z, labels), trainer.generate(z, labels), atol=1e-5)
    outputs = evaluate_model.run(evaluate_model.EvaluateOptions(
        model="dcgan", save_dir=config.save_dir, run_dir=config.workdir,
        output_dir=str(tmp_path / "eval"), fid=False))
    assert outputs["saved_model"] == final
    assert "using the final generator" in capsys.readouterr().out
    assert Image.open(outputs["grid"]).size == (2 * (8 * 34 + 2),) * 2


def test_reference_is_the_test_folder_beside_image_dir_or_a_clear_error(tmp_path,
                                                                        cifar_like_dir):
    config = _config(cifar_like_dir, tmp_path, None)
    assert reference_source(config)[0] == f"folder:{cifar_like_dir / 'test'}"
    lonely = tmp_path / "only_train" / "train"
    os.makedirs(lonely / "a")
    with pytest.raises(UserError, match="--fid_reference_dir"):
        reference_source(_config(cifar_like_dir, tmp_path, None, image_dir=str(lonely)))
    custom = _config(cifar_like_dir, tmp_path, None, fid_reference_dir=str(lonely))
    assert reference_source(custom)[0] == f"folder:{lonely}"


def test_evaluation_writes_every_documented_output(trained_run, inception_weights_file,
                                                   cifar_like_dir, tmp_path, capsys):
    # In-process: evaluate.py is this call behind the flags (its command line is checked by
    # test_evaluate_py_without_a_model_says_what_to_do and the flag tests of test_cli).
    config = trained_run
    out = tmp_path / "out"
    evaluate_model.run(evaluate_model.EvaluateOptions(
        model="sagan", save_dir=config.save_dir, output_dir=str(out), fid_samples=6,
        inception_weights=inception_weights_file, image_dir=str(cifar_like_dir / "train"),
        fid_cache_dir=config.fid_cache_dir, samples_npz=str(out / "samples.npz"),
        num_samples=25, attention_maps=True, real_baseline=True, weights=True))
    printed = capsys.readouterr().out
    assert "FID (Keras InceptionV3)" in printed and "6 generated images" in printed
    assert "real baseline" in printed
    folder = out / "SAGAN"
    with Image.open(folder / "grid_8x8.png") as grid:
        assert grid.size == (2 * (8 * 34 + 2),) * 2
    with Image.open(folder / "classes_10x10.png") as classes:  # 3 classes x 10 columns here
        assert classes.size[1] == 2 * (3 * 34 + 2)
    assert sorted(p.name for p in folder.glob("sample_*.png")) == [
        f"sample_{i:02d}.png" for i in range(10)]
    for name in ("attention_16x16.png", "metrics.json", "weights_generator_filters.png",
                 "weights_generator_histograms.png", "weights_discriminator_filters.png",
                 "weights_discriminator_histograms.png"):
        assert (folder / name).exists(), name
    metrics = json.load(open(folder / "metrics.json"))
    assert metrics["metrics"]["num_samples"] == 6 and "real_baseline" in metrics
    with np.load(out / "samples.npz") as npz:
        assert npz["x"].shape == (25, 32, 32, 3) and npz["x"].dtype == np.uint8
        assert npz["y"].shape == (25,) and npz["y"].dtype == np.int32
        assert set(npz["y"]) <= {0, 1, 2}


def test_evaluate_py_without_a_model_says_what_to_do(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "evaluate.py"), "--model=dcgan",
         f"--save_dir={tmp_path}", f"--run_dir={tmp_path / 'no_run'}"], cwd=ROOT, env=env,
        capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--saved_model" in errors[0]


def test_evaluate_py_samples_the_keras_copy_on_jax_without_tensorflow(
        trained_run, untrained_classifier_file, cifar_like_dir, tmp_path):
    # As on a GPU machine with JAX and no TensorFlow: the SavedModel cannot be read there.
    pytest.importorskip("jax")
    best = RunDir(trained_run.workdir).export_dir("best")
    no_keras = tmp_path / "saved_model_only"
    os.makedirs(no_keras)
    for name in ("best.json", "saved_model"):
        os.symlink(os.path.join(best, name), no_keras / name)
    env = {**os.environ, "PYTHONPATH": ROOT, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    runs = {}
    for name, model in (("keras", best), ("saved_model_only", no_keras)):
        runs[name] = subprocess.run(
            no_tensorflow.command(
                os.path.join(ROOT, "evaluate.py"), f"--saved_model={model}",
                f"--classifier={untrained_classifier_file}", "--nofid", "--fid_samples=6",
                f"--image_dir={cifar_like_dir / 'train'}", f"--fid_cache_dir={tmp_path / 'cache'}",
                f"--output_dir={tmp_path / name}"),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert runs["keras"].returncode == 0, runs["keras"].stderr[-2000:]
    assert "FD_classifier" in runs["keras"].stdout
    metrics = json.load(open(tmp_path / "keras" / "SAGAN" / "metrics.json"))
    assert metrics["quality"]["classifier_samples"] == 6
    assert np.isfinite(metrics["quality"]["fd_classifier"])
    with Image.open(tmp_path / "keras" / "SAGAN" / "grid_8x8.png") as grid:
        assert grid.size == (2 * (8 * 34 + 2),) * 2
    assert runs["saved_model_only"].returncode == 2
    errors = [line for line in runs["saved_model_only"].stderr.splitlines()
              if line.startswith("error:")]
    assert len(errors) == 1 and "generator.keras" in errors[0] and "TensorFlow" in errors[0]


def test_a_missing_model_is_reported_before_keras_and_tensorflow_load(tmp_path):
    script = f"""
import sys
from tfgan_cifar import evaluate_model
from tfgan_cifar.errors import UserError
try:
    evaluate_model.run(evaluate_model.EvaluateOptions(model="dcgan", save_dir={str(tmp_path)!r}))
except UserError as error:
    print("error:", error)
print(sorted(m for m in ("keras", "tensorflow") if m in sys.modules))
"""
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("error: no saved model at") and lines[-1] == "[]"


def test_evaluation_on_jax_needs_neither_tensorflow_nor_the_training_code(tmp_path):
    """evaluate.py, the sampling and metric modules and the report, run on JAX with
    TensorFlow unimportable, on an unconditional generator with a class head."""

    out = tmp_path / "out"
    script = no_tensorflow.PRELUDE + f"""
import json, sys
from tfgan_cifar import (evaluate_model, evaluation_samples, evaluations, export, metric_schema,
                         reference_classifier, report)
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.metrics import conditional, evaluator
from tfgan_cifar.nn import build_models

config = TrainConfig(model="dcgan", width=4, z_dim=8, num_classes=3, conditional=False,
                     class_head=True, workdir={str(tmp_path / "run")!r}).resolved()
generator, discriminator = build_models(config)
path = export.export_model(generator.build_weights(), {str(tmp_path / "best")!r},
                           {{"step": 1, "config": json.loads(config.to_json())}},
                           discriminator=discriminator.build_weights())
outputs = evaluate_model.run(evaluate_model.EvaluateOptions(
    model="dcgan", saved_model=path, output_dir={str(out)!r}, fid=False,
    samples_npz={str(out / "samples.npz")!r}, num_samples=7))
print(json.dumps({{"tensorflow": no_tensorflow.imported(), "outputs": sorted(outputs),
                  "training": sorted(m for m in sys.modules
                                     if m.startswith("tfgan_cifar.training"))}}))
"""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"tensorflow": False, "training": [],
                     "outputs": ["class_grid", "grid", "samples", "samples_npz", "saved_model"]}
    with np.load(out / "samples.npz") as saved:
        assert saved["x"].shape == (7, 32, 32, 3) and saved["x"].dtype == np.uint8
    assert "sorted by the discriminator's classifier head" in result.stdout
