"""The best-model export: SavedModel signature, round trips and atomic replacement."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_cifar import export
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.nn import build_models


def _generator(model, conditional=True, seed=0):
    keras.utils.set_random_seed(seed)
    config = TrainConfig(model=model, width=4, conditional=conditional).resolved()
    generator, _ = build_models(config)
    return generator.build_weights()


def _inputs(z_dim, n=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, z_dim)).astype(np.float32), np.arange(n, dtype=np.int32)


@pytest.mark.parametrize("model,conditional", [("dcgan", False), ("sagan", True)])
def test_saved_model_round_trip(tmp_path, model, conditional):
    generator = _generator(model, conditional)
    path = export.export_model(generator, str(tmp_path / "best"), {"step": 7, "workdir": "w"})

    loaded = tf.saved_model.load(os.path.join(path, export.SAVED_MODEL))
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == {"z", "labels"}
    assert inputs["z"].dtype == tf.float32 and inputs["z"].shape.as_list() == [
        None, generator.z_dim]
    assert inputs["labels"].dtype == tf.int32 and inputs["labels"].shape.as_list() == [None]
    assert list(signature.structured_outputs) == ["images"]

    z, labels = _inputs(generator.z_dim)
    expected = generator(z, labels, training=False).numpy()
    images = signature(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    np.testing.assert_allclose(images, expected, atol=1e-5)

    sample, z_dim = export.load_sampler(path)
    assert z_dim == generator.z_dim
    np.testing.assert_allclose(sample(z, labels), expected, atol=1e-5)
    reloaded = keras.saving.load_model(os.path.join(path, export.KERAS_FILE))
    np.testing.assert_allclose(reloaded(z, labels, training=False).numpy(), expected, atol=1e-5)
    assert export.read_info(path) == {"step": 7, "workdir": "w"}


def test_interrupted_export_leaves_the_previous_best_loadable(tmp_path, monkeypatch):
    path = str(tmp_path / "best")
    first = _generator("dcgan", seed=1)
    export.export_model(first, path, {"step": 1, "workdir": "w"})
    z, labels = _inputs(first.z_dim)
    expected = first(z, labels, training=False).numpy()

    second = _generator("dcgan", seed=2)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the .keras copy")

    monkeypatch.setattr(type(second), "save", crash)
    with pytest.raises(KeyboardInterrupt):
        export.export_model(second, path, {"step": 2, "workdir": "w"})
    assert export.read_info(path)["step"] == 1
    np.testing.assert_allclose(export.load_sampler(path)[0](z, labels), expected, atol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["best"]  # no staging directory left behind

    # A kill between the two renames leaves only best.previous: loading puts it back.
    os.rename(path, path + ".previous")
    np.testing.assert_allclose(export.load_sampler(path)[0](z, labels), expected, atol=1e-6)
    assert os.path.isdir(path)


def test_new_best_replaces_old_and_publishing_copies_it_whole(tmp_path):
    path = str(tmp_path / "run" / "export" / "best")
    export.export_model(_generator("dcgan", seed=1), path, {"step": 1})
    export.export_model(_generator("dcgan", seed=2), path, {"step": 5})
    assert export.read_info(path)["step"] == 5
    assert sorted(os.listdir(tmp_path / "run" / "export")) == ["best"]
    published = export.publish(path, str(tmp_path / "saved_models" / "dcgan" / "best"))
    assert export.read_info(published)["step"] == 5
    assert sorted(os.listdir(published)) == sorted(os.listdir(path))
    export.export_model(_generator("dcgan", seed=3), path, {"step": 7})
    export.publish(path, published)  # replaces the published copy, leaves nothing beside it
    assert export.read_info(published)["step"] == 7
    assert sorted(os.listdir(tmp_path / "saved_models" / "dcgan")) == ["best"]


def test_the_model_to_evaluate_is_the_best_one_else_the_final_one(tmp_path):
    run = RunDir(str(tmp_path))
    assert run.model_to_evaluate() is None
    os.makedirs(run.export_dir("final"))
    assert run.model_to_evaluate() == run.export_dir("final")
    os.makedirs(run.export_dir("best") + export.PREVIOUS_SUFFIX)  # a best mid-export counts
    assert run.model_to_evaluate() == run.export_dir("best")
