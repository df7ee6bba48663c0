"""bench/gpu_pack.py's round trips and bench/gpu_run.py's dry run: the prepared GPU command."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import gpu_pack  # noqa: E402
import no_tensorflow  # noqa: E402


def test_images_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    for split, name in (("train", "cat"), ("train", "dog"), ("test", "cat")):
        os.makedirs(tmp_path / "src" / split / name)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            tmp_path / "src" / split / name / "0001.jpg")
    (tmp_path / "src" / "train" / "notes.txt").write_text("not an image")
    assert gpu_pack.pack_images(str(tmp_path / "src"), str(tmp_path / "c.npz")) == 3
    assert gpu_pack.unpack_images(str(tmp_path / "c.npz"), str(tmp_path / "dst")) == 3
    for path in ("train/cat/0001.jpg", "train/dog/0001.jpg", "test/cat/0001.jpg"):
        assert (tmp_path / "dst" / path).read_bytes() == (tmp_path / "src" / path).read_bytes()
    assert not (tmp_path / "dst" / "train" / "notes.txt").exists()


def test_weights_split_into_parts_and_joined(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {f"w{i}": rng.normal(size=(64, 64)).astype(np.float32) for i in range(5)}
    np.savez(tmp_path / "inception_2015.npz", **arrays)
    parts = gpu_pack.split_weights(str(tmp_path / "inception_2015.npz"),
                                   str(tmp_path / "part"), max_bytes=2 * 64 * 64 * 4)
    assert len(parts) == 3 and all(os.path.getsize(p) < 3 * 64 * 64 * 4 for p in parts)
    target, missing = gpu_pack.join_weights(parts[:2], str(tmp_path / "joined"))
    assert target is None and missing == [2]
    target, missing = gpu_pack.join_weights(parts, str(tmp_path / "joined"))
    assert missing == [] and os.path.basename(target) == "inception_2015.npz"
    with np.load(target) as joined:
        assert sorted(joined.files) == sorted(arrays)
        for name, array in arrays.items():
            np.testing.assert_array_equal(joined[name], array)


@pytest.fixture(scope="module")
def ten_class_folder(tmp_path_factory):
    """train/ and test/ with ten classes of three random images: what the presets expect."""
    root = tmp_path_factory.mktemp("ten_classes")
    rng = np.random.default_rng(2)
    for split in ("train", "test"):
        for label in range(10):
            os.makedirs(root / split / f"c{label}")
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                    root / split / f"c{label}" / f"{i}.png")
    return root


def test_the_gpu_command_dry_runs_on_a_cpu(ten_class_folder, tmp_path):
    from tfgan_cifar import fid_weights
    from tfgan_cifar.paths import CACHE_DIR

    cache = tmp_path / "fid"
    cache.mkdir()
    os.symlink(fid_weights.ensure_weights(CACHE_DIR), cache / fid_weights.WEIGHTS_FILE)
    out = tmp_path / "out"
    # The script runs `python`: this interpreter's, also when its virtual environment is not
    # activated. As on the GPU machine, no process of it can import TensorFlow or tensorboard.
    site = no_tensorflow.site_folder(tmp_path / "site")
    env = {**os.environ, "OUT": str(out), "GPU_DATA": str(tmp_path / "data"),
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]),
           "PYTHONPATH": os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        ["bash", os.path.join(ROOT, "bench", "gpu_run.sh"), "all", "--dry_run", "--runs=dcgan",
         f"--image_dir={ten_class_folder / 'train'}", f"--fid_cache_dir={cache}"],
        env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "gpu_run.json").read_text())
    assert report["dry_run"] and {"train", "all"} & set(report["wall_s"])
    assert report["bench"]["results"][0]["steps_per_sec"] > 0
    # One run keeps the dry run short: the presets' training is tested elsewhere, and every
    # run takes the same path through the script.
    assert {name: run["exit_code"] for name, run in report["runs"].items()} == {"dcgan": 0}
    for name in ("dcgan",):
        scores = report["scores"][name]
        assert scores["exit_code"] == 0
        for which in ("best", "final"):
            assert scores[which]["fid_network"] == "standard"
            assert scores[which]["reference_split"] == "train"
            assert np.isfinite(scores[which]["fid"]) and scores[which]["num_samples"] == 16
            assert "fd_classifier" in scores[which]["quality"]
        assert (out / f"{name}_final_grid_8x8.png").exists()
