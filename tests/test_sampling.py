"""The public API (tfgan_cifar.load_generator), the SavedModel's signatures, the model card,
`keras.models.load_model` after `import tfgan_cifar`, and tfgan-sample (tiny untrained models)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tfgan_cifar
from tfgan_cifar.commands import sample as sample_command
from tfgan_cifar.errors import UserError
from tfgan_cifar.sampling import slerp, truncated_normal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run directories <tmp>/dcgan (unconditional) and <tmp>/sagan (conditional, 3 classes),
    each with an export/final of a tiny untrained generator."""
    import keras

    from tfgan_cifar import export
    from tfgan_cifar.config import TrainConfig
    from tfgan_cifar.nn import build_models
    from tfgan_cifar.run_dir import RunDir

    tmp = tmp_path_factory.mktemp("sampling")
    keras.utils.set_random_seed(0)
    for model in ("dcgan", "sagan"):
        config = TrainConfig(model=model, width=4, z_dim=8, num_classes=3, steps=40,
                             workdir=str(tmp / model)).resolved()
        run = RunDir(config.workdir)
        os.makedirs(run.path)
        run.write_config(config)
        generator = build_models(config)[0].build_weights()
        for variable in generator.variables:  # untrained class embeddings are all alike
            variable.assign(variable + 0.05 * keras.random.normal(variable.shape, seed=1))
        export.export_model(generator, run.export_dir("final"),
                            {"step": 40, "final": True, "fid": 123.25, "kid": 0.5,
                             "num_samples": 10, "reference": "folder:/data/test",
                             "config": json.loads(config.to_json())})
    return tmp


def test_the_savedmodel_keeps_serving_default_and_adds_a_uint8_sample_signature(runs):
    import tensorflow as tf

    from tfgan_cifar.viz.grids import to_uint8

    z = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0], np.int32)
    for model, inputs in (("dcgan", {"z"}), ("sagan", {"z", "labels"})):
        loaded = tf.saved_model.load(str(runs / model / "export" / "final" / "saved_model"))
        serving = loaded.signatures["serving_default"]
        assert set(serving.structured_input_signature[1]) == {"z", "labels"}
        floats = serving(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
        assert floats.shape == (5, 32, 32, 3) and floats.dtype == np.float32
        signature = loaded.signatures["sample"]
        assert set(signature.structured_input_signature[1]) == inputs
        given = {"z": tf.constant(z), "labels": tf.constant(labels)}
        images = signature(**{k: v for k, v in given.items() if k in inputs})["images"].numpy()
        assert images.dtype == np.uint8 and images.shape == (5, 32, 32, 3)
        assert np.abs(images.astype(int) - to_uint8(floats)).max() <= 1


def test_load_generator_samples_uint8_images_from_a_run_or_an_export(runs):
    dcgan = tfgan_cifar.load_generator(runs / "dcgan")
    assert dcgan.path == str(runs / "dcgan" / "export" / "final")
    assert (dcgan.z_dim, dcgan.num_classes, dcgan.conditional, dcgan.step) == (8, 3, False, 40)
    images = dcgan.sample(4, seed=3)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert (dcgan.sample(4, seed=3) == images).all()
    assert not (dcgan.sample(4, seed=4) == images).all()
    with pytest.raises(UserError, match="unconditional: it takes no labels"):
        dcgan.sample(2, labels=1)

    sagan = tfgan_cifar.load_generator(runs / "sagan" / "export" / "final")
    assert (sagan.z_dim, sagan.conditional) == (8, True)
    z = sagan.noise(3, seed=0)
    per_class = [sagan.generate(z, labels=c) for c in range(3)]
    assert not (per_class[0] == per_class[1]).all()
    assert (sagan.sample(3, labels=[0, 1, 2], seed=0)[1] == per_class[1][1]).all()
    with pytest.raises(UserError, match="class 3 is out of range"):
        sagan.sample(2, labels=3)
    with pytest.raises(UserError, match="neither a run directory"):
        tfgan_cifar.load_generator(runs)


def test_truncation_bounds_the_noise_and_slerp_walks_between_the_ends():
    z = truncated_normal(np.random.default_rng(0), (200, 16), truncation=0.5)
    assert np.abs(z).max() <= 0.5 and z.std() > 0.2
    ends = np.random.default_rng(1).standard_normal((2, 16))
    walk = slerp(ends[0], ends[1], [0.0, 0.5, 1.0])
    assert np.allclose(walk[0], ends[0], atol=1e-5) and np.allclose(walk[2], ends[1], atol=1e-5)
    assert np.linalg.norm(walk[1]) > np.linalg.norm((ends[0] + ends[1]) / 2)


def test_every_export_has_a_model_card(runs):
    with open(runs / "sagan" / "export" / "final" / "README.md") as f:
        card = f.read()
    assert card.startswith("# SAGAN (resnet) generator, step 40")
    assert "A conditional SAGAN (resnet)" in card and "a class label (0..2)" in card
    assert "| fid | 123.2 |" in card and "10 generated images against folder:/data/test" in card
    assert "tfgan_cifar.load_generator(" in card


def test_generator_keras_loads_with_keras_after_importing_tfgan_cifar(runs):
    # tfgan_cifar first, Keras after: the classes are registered once Keras loads.
    script = ("import sys, tfgan_cifar, keras\n"
              "model = keras.models.load_model(sys.argv[1])\n"
              "print(type(model).__name__, model.z_dim)\n")
    result = subprocess.run(
        [sys.executable, "-c", script, str(runs / "sagan" / "export" / "final" /
                                           "generator.keras")],
        cwd=str(runs), capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT})
    assert result.stdout.split() == ["ResNetGenerator", "8"], result.stderr[-2000:]


def _sample(*argv):
    return sample_command.main(["tfgan-sample", *map(str, argv)])


def test_tfgan_sample_writes_what_out_names(runs, tmp_path):
    _sample(runs / "sagan", "--num=5", f"--out={tmp_path / 'folder'}", "--seed=2")
    names = sorted(os.listdir(tmp_path / "folder"))
    assert len(names) == 5 and all(n.endswith(".png") and "_class" in n for n in names)

    _sample(runs / "sagan", "--num=5", f"--out={tmp_path / 'grid.png'}", "--class=2",
            "--truncation=1.0")
    # 3 columns, 2 rows of 32-pixel tiles with 2-pixel padding, doubled
    assert Image.open(tmp_path / "grid.png").size == (2 * (3 * 34 + 2), 2 * (2 * 34 + 2))

    _sample(runs / "dcgan", "--num=4", f"--out={tmp_path / 'a.npz'}", "--seed=7")
    arrays = np.load(tmp_path / "a.npz")
    assert sorted(arrays) == ["images", "z"] and arrays["images"].dtype == np.uint8
    expected = tfgan_cifar.load_generator(runs / "dcgan").sample(4, seed=7)
    assert (arrays["images"] == expected).all()

    _sample(runs / "sagan", "--class_sweep", "--num=2", f"--out={tmp_path / 'sweep.npz'}")
    sweep = np.load(tmp_path / "sweep.npz")
    assert sweep["images"].shape == (2, 3, 32, 32, 3)
    assert (sweep["labels"] == [[0, 1, 2], [0, 1, 2]]).all()
    assert (sweep["z"][:, 0] == sweep["z"][:, 2]).all()

    _sample(runs / "dcgan", "--interpolate", "--num=2", "--frames=4",
            f"--out={tmp_path / 'walk.png'}")
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 2 * 4 - 2  # forth and back
    assert Image.open(tmp_path / "walk.png").size == (2 * (4 * 34 + 2), 2 * (2 * 34 + 2))


@pytest.mark.parametrize("argv,message", [
    (["dcgan", "--class=1"], "--class needs a conditional generator"),
    (["dcgan", "--class_sweep"], "--class_sweep needs a conditional generator"),
    (["dcgan", "--ema"], "was trained without --ema_decay"),
    (["sagan", "--class=5"], "--class=5 is out of range: the generator has classes 0..2"),
    (["sagan", "--out=x.jpg"], "--out=x.jpg: pass a folder"),
    (["sagan", "--truncation=0"], "--truncation must be positive"),
    (["nowhere"], "is not a folder: pass a run directory"),
])
def test_tfgan_sample_refuses_bad_input_with_one_line(runs, argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        _sample(*[runs / argv[0]], *argv[1:])
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], errors
