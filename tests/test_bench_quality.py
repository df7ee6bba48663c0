"""bench/quality.py and bench/calibration.py: the scripts behind the quality table of
docs/studies.md and the calibration table of docs/evaluation.md, run end to end on a tiny image folder with an untrained classifier."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "bench", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(os.path.join(ROOT, "bench"))
    return module


def test_quality_trains_a_preset_scores_it_and_names_its_extra_flags(
        cifar_like_dir, untrained_classifier_file, tmp_path):
    preset = tmp_path / "tiny.cfg"
    preset.write_text("--model=sagan\n--arch=resnet\n--batch_size=4\n--z_dim=8\n"
                      "--num_classes=3\n")
    out = tmp_path / "quality"
    # --run_eagerly: the subject is the script (train, score, tabulate), not the compiled step.
    command = [sys.executable, os.path.join(ROOT, "bench", "quality.py"), f"--presets={preset}",
               "--steps=2", "--samples=12", f"--image_dir={cifar_like_dir / 'train'}",
               f"--classifier={untrained_classifier_file}", "--extra=--width=4 --run_eagerly",
               f"--out={out}", "--fid_network=none"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "quality.json").read_text())
    (run,) = record["results"]
    assert (run["name"], run["steps"], run["extra"]) == ("tiny", 2, "--width=4 --run_eagerly")
    trained = json.loads((out / "tiny" / "config.json").read_text())
    assert trained["width"] == 4 and trained["run_eagerly"]
    metrics = run["metrics"]
    assert np.isfinite(metrics["fd_classifier"]) and metrics["fd_classifier"] >= 0
    assert 0 <= metrics["class_acc"] <= 1 and 0 <= metrics["class_kl"] <= np.log(3) + 1e-6
    assert sum(metrics["class_distribution"]) == pytest.approx(1)
    assert record["machine"] and "cores" in record["machine"]
    table = (out / "quality.md").read_text().splitlines()
    assert table[0].startswith("| preset | steps | wall time | FD_classifier | class accuracy")
    assert table[2].startswith("| tiny `--width=4 --run_eagerly` | 2 | ")
    assert f"{metrics['fd_classifier']:.2f}" in table[2]


def _calibrate(monkeypatch, images, classifier, out, *flags):
    """Runs bench/calibration.py on `images` into `out`; returns (module, calibration.json,
    the table's header line)."""
    calibration = _load("calibration")
    monkeypatch.setattr(sys, "argv", ["calibration.py", f"--image_dir={images}",
                                      f"--classifier={classifier}", f"--out={out}", *flags])
    calibration.main()
    record = json.loads((out / "calibration.json").read_text())
    return calibration, record, (out / "calibration.md").read_text().splitlines()[0]


def test_calibration_scores_real_and_degraded_images(cifar_like_dir, untrained_classifier_file,
                                                      tmp_path, monkeypatch):
    from tfgan_cifar import data
    from tfgan_cifar import reference_classifier

    out = tmp_path / "calibration"
    calibration, record, _ = _calibrate(monkeypatch, cifar_like_dir / "train",
                                        untrained_classifier_file, out, "--samples=20",
                                        f"--cache_dir={tmp_path / 'cache'}")
    results = record["results"]
    assert list(results) == ["real training images", "blurred (Gaussian, σ = 1 px)",
                             "noised (Gaussian, σ = 0.1 on [-1, 1])",
                             "half the classes removed (0-0 only)"]
    train = data.load_image_folder(str(cifar_like_dir / "train"))
    images, labels = calibration.degraded_sets(train, 20, seed=0)["real training images"]
    direct = np.mean(reference_classifier.load(untrained_classifier_file).predict(images) == labels)
    assert results["real training images"]["class_acc"] == pytest.approx(direct)
    half = calibration.degraded_sets(train, 20, seed=0)["half the classes removed (0-0 only)"]
    assert set(half[1]) == {0} and len(half[1]) == 8  # the 8 images of the first class
    for result in results.values():
        assert np.isfinite(result["fd_classifier"]) and result["classifier_samples"] in (8, 20)
    table = (out / "calibration.md").read_text().splitlines()
    assert len(table) == 2 + 4 + 2 and table[2].startswith("| real training images | ")


def test_calibration_adds_fid_and_inception_precision_recall_given_inception_weights(
        cifar_like_dir, untrained_classifier_file, inception_weights_file, tmp_path,
        monkeypatch):
    _, record, header = _calibrate(
        monkeypatch, cifar_like_dir / "train", untrained_classifier_file,
        tmp_path / "calibration", "--samples=12", f"--inception_weights={inception_weights_file}",
        f"--cache_dir={tmp_path / 'cache'}")
    for result in record["results"].values():
        assert np.isfinite(result["fid"]) and result["fid"] >= 0
        assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert header.endswith("| FID (Keras InceptionV3) | precision | recall |")


def test_calibration_uses_the_standard_network_once_its_weights_are_made(
        cifar_like_dir, untrained_classifier_file, tmp_path, monkeypatch):
    from tfgan_cifar import fid_weights
    from tfgan_cifar.paths import CACHE_DIR

    cache = tmp_path / "cache"
    cache.mkdir()
    os.symlink(fid_weights.ensure_weights(CACHE_DIR), cache / fid_weights.WEIGHTS_FILE)
    _, record, header = _calibrate(monkeypatch, cifar_like_dir / "train",
                                   untrained_classifier_file, tmp_path / "calibration",
                                   "--samples=8", f"--cache_dir={cache}")
    assert record["fid_network"] == "standard"
    fids = {name: result["fid"] for name, result in record["results"].items()}
    assert all(np.isfinite(value) and value > 0 for value in fids.values())
    assert header.endswith("| FID | precision | recall |")
