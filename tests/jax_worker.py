"""Runs JAX-backend checks in a process of its own (Keras picks its backend once per process).

  KERAS_BACKEND=jax python tests/jax_worker.py losses IN.npz OUT.json
  KERAS_BACKEND=jax python tests/jax_worker.py train CONFIG.json
  KERAS_BACKEND=jax python tests/jax_worker.py steps_and_export CONFIG.json OUT.json
"""

import dataclasses
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from tfgan_cifar import data, train_lib  # noqa: E402
from tfgan_cifar.config import TrainConfig  # noqa: E402
from tfgan_cifar.trainer_jax import JaxTrainer  # noqa: E402

assert keras.backend.backend() == "jax", keras.backend.backend()


def _config(path):
    return TrainConfig.from_json(open(path).read())


def losses(inputs, output):
    """First-step metrics from the weights, batch and noise the TensorFlow test saved."""
    saved = np.load(inputs)
    config = TrainConfig.from_json(str(saved["config"]))
    trainer = JaxTrainer(config, data.load_image_folder(config.image_dir))
    state = dict(trainer.state)
    for part in ("g", "g_nt", "d", "d_nt"):
        state[part] = [saved[f"{part}_{i:04d}"] for i in range(len(state[part]))]
    _, metrics = trainer.update(state, saved["images"], saved["labels"], saved["z"],
                                saved["fake_labels"])
    json.dump({k: float(v) for k, v in metrics.items()}, open(output, "w"))


def train(config_path):
    train_lib.train(_config(config_path))


def steps_and_export(config_path, output):
    """A few steps change both networks; the .keras export reloads to the same images."""
    config = _config(config_path)
    trainer = JaxTrainer(config, data.load_image_folder(config.image_dir))
    before = {k: [np.asarray(v) for v in trainer.state[k]] for k in ("g", "d")}
    for _ in range(2):
        trainer.train_step()
    metrics = trainer.pop_metrics()
    changed = {k: [bool(not np.array_equal(a, np.asarray(b)))
                   for a, b in zip(before[k], trainer.state[k])] for k in ("g", "d")}
    z = np.random.default_rng(0).standard_normal((3, config.z_dim)).astype("float32")
    labels = np.arange(3, dtype="int32") % config.num_classes
    expected = trainer.generate(z, labels)
    path = os.path.join(config.workdir, "g.keras")
    trainer.export_generator().save(path)
    reloaded = keras.saving.load_model(path)
    images = keras.ops.convert_to_numpy(reloaded(z, labels, training=False))
    json.dump({"metrics": metrics, "changed": changed, "step": trainer.step,
               "export_max_diff": float(np.abs(images - expected).max()),
               "images_range": [float(expected.min()), float(expected.max())],
               "device": trainer.device}, open(output, "w"))


if __name__ == "__main__":
    {"losses": losses, "train": train, "steps_and_export": steps_and_export}[sys.argv[1]](
        *sys.argv[2:])
