"""Runs JAX-backend checks in one process of its own (Keras picks its backend once per process).

TensorFlow is made unimportable here, so the checks also prove that JAX training needs none.

  KERAS_BACKEND=jax python tests/jax_worker.py TASKS.json RESULTS.json

TASKS.json is a list of {"name": ..., "task": "losses" | "steps_and_export" | "train" |
"lookahead" | "checkpoint_names", ...};
RESULTS.json maps each name to what its task measured.
"""

import dataclasses
import json
import os
import sys
import time


import no_tensorflow  # noqa: E402  (this file's folder is on sys.path when run as a script)

no_tensorflow.hide(("tensorflow", "tensorflow_datasets"))  # JAX and tensorboard, no TensorFlow

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import keras  # noqa: E402

from tfgan_cifar import data, precision  # noqa: E402
from tfgan_cifar.config import TrainConfig  # noqa: E402
from tfgan_cifar.errors import UserError  # noqa: E402
from tfgan_cifar.nn.base import nested_layers  # noqa: E402
from tfgan_cifar.nn.layers import _SpectralNorm  # noqa: E402
from tfgan_cifar.run_dir import RunDir  # noqa: E402
from tfgan_cifar.training import loop  # noqa: E402
from tfgan_cifar.training.jax_backend import JaxTrainer  # noqa: E402

assert keras.backend.backend() == "jax", keras.backend.backend()
# The training tasks of one config (straight, resumed, truncated...) compile the same step:
# compile it once. Under pytest, conftest.py's cache of the whole run is already set.
if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir",
                      os.path.join(os.path.dirname(sys.argv[2]), "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def losses(inputs):
    """First-step metrics from the weights, batch and noise the TensorFlow test saved."""
    saved = np.load(inputs)
    config = TrainConfig.from_json(str(saved["config"]))
    trainer = JaxTrainer(config, data.load_image_folder(config.image_dir))
    state = trainer.state._replace(**{
        part: [saved[f"{part}_{i:04d}"] for i in range(len(getattr(trainer.state, part)))]
        for part in ("g", "g_nt", "d", "d_nt")})
    draws = {name[len("draw_"):]: saved[name] for name in saved.files if name.startswith("draw_")}
    _, metrics = jax.jit(trainer.objective.update)(state, saved["images"], saved["labels"],
                                                  draws)
    return {k: float(v) for k, v in metrics.items()}


def steps_and_export(config):
    """A few steps change both networks; the .keras export reloads to the same images."""
    config = TrainConfig.from_json(config)
    trainer = JaxTrainer(config, data.load_image_folder(config.image_dir))
    before = {k: [np.asarray(v) for v in trainer.read(k)] for k in ("g", "d")}
    history = [before["g"]]
    for _ in range(2):
        trainer.train_step()
        history.append([np.asarray(v) for v in trainer.read("g")])
    metrics = trainer.pop_metrics()
    ema_deviation = None
    if config.ema_decay:  # e_(t+1) = d_t e_t + (1 - d_t) w_(t+1), d_t = min(d, (1+t)/(10+t))
        expected = history[0]
        for t, weights in enumerate(history[1:]):
            d = min(config.ema_decay, (1 + t) / (10 + t))
            expected = [d * e + (1 - d) * w for e, w in zip(expected, weights)]
        ema_deviation = max(float(np.abs(np.asarray(value) - expected[i]).max())
                            for i, value in enumerate(trainer.read("ema")))
    changed = {k: [bool(not np.array_equal(a, np.asarray(b)))
                   for a, b in zip(before[k], trainer.read(k))] for k in ("g", "d")}
    z = np.random.default_rng(0).standard_normal((3, config.z_dim)).astype("float32")
    labels = np.arange(3, dtype="int32") % config.num_classes
    expected = trainer.generate(z, labels)
    path = os.path.join(config.workdir, "g.keras")
    generator = trainer.export_generator()  # in the order training exports them
    discriminator = trainer.export_discriminator()
    generator.save(path)
    reloaded = keras.saving.load_model(path)
    # Jitted: op by op, JAX compiles each of the network's ops on its own (5 s for this G).
    images = np.asarray(jax.jit(lambda z, y: reloaded(z, y, training=False))(z, labels))
    learning_rates = {}
    for part, optimizer in (("g", trainer.objective.g_optimizer),
                            ("d", trainer.objective.d_optimizer)):
        inner = precision.split_variables(optimizer)[1]  # the rate is read from its iterations
        with keras.StatelessScope(state_mapping=list(zip(inner, trainer.read(f"{part}_opt")))):
            learning_rates[part] = float(getattr(optimizer, "inner_optimizer", optimizer)
                                         .learning_rate)
    class_logits_shape = None
    if config.class_head:
        class_logits_shape = list(trainer.class_logits(np.zeros((5, 32, 32, 3), "float32")).shape)
    return {"metrics": metrics, "changed": changed, "step": trainer.step,
            "optimizer_learning_rates": learning_rates,
            "logged_learning_rates": trainer.learning_rates(),
            "class_logits_shape": class_logits_shape,
            "exported_discriminator": discriminator is not None,
            "replay_filled": int(trainer.read("replay").filled) if config.replay_size else None,
            "export_max_diff": float(np.abs(images - expected).max()),
            "images_range": [float(expected.min()), float(expected.max())],
            "device": trainer.device, "ema_deviation": ema_deviation,
            "compute_dtypes": sorted({layer.compute_dtype
                                      for layer in nested_layers(trainer.generator)
                                      if isinstance(layer, (keras.layers.Conv2DTranspose,
                                                            _SpectralNorm))}),
            "export_policy": generator.dtype_policy.name,
            "images_dtype": str(expected.dtype)}


def sharded_step(config):
    """Two steps on one device and on a 2-device mesh (XLA_FLAGS gives the worker two CPU
    devices): the metrics and state after them, and whether the step is really partitioned."""
    config = TrainConfig.from_json(config)
    images = data.load_image_folder(config.image_dir)
    runs = {}
    for distribute in ("none", "mirrored"):
        trainer = JaxTrainer(dataclasses.replace(config, distribute=distribute), images)
        hlo = trainer._train_step.lower(trainer.state, trainer.key, trainer.images,
                                        trainer.labels).compile().as_text()
        for _ in range(2):
            trainer.train_step()
        runs[distribute] = (trainer, hlo)
    (single, _), (sharded, hlo) = runs["none"], runs["mirrored"]
    return {
        "replicas": sharded.cluster.replicas, "device": sharded.device,
        "all_reduce": "all-reduce" in hlo,
        "metrics": [single.pop_metrics(), sharded.pop_metrics()],
        "max_difference": {part: max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                                     for a, b in zip(single.read(part), sharded.read(part)))
                           for part in ("g", "g_nt", "d", "d_nt")},
    }


def steps_per_call(config):
    """Four steps in two calls of `config`'s --steps_per_call (2) against four calls of one
    step: the largest difference of any value of their states (the random key included);
    and the batches the steps of one epoch and more draw on the device, from a fresh trainer
    and from one restored from `config`'s run (at step 2). Both steps are those the runs of
    `config` compiled (XLA's cache is shared)."""
    config = TrainConfig.from_json(config)
    images = data.load_image_folder(config.image_dir)
    single, one_call = (JaxTrainer(dataclasses.replace(config, steps_per_call=k), images)
                        for k in (1, config.steps_per_call))
    for _ in range(4):
        single.train_step()
    one_call.train_steps(4)
    a, b = (jax.tree.leaves((trainer.state, trainer.key)) for trainer in (single, one_call))
    fresh, restored = JaxTrainer(config, images), JaxTrainer(config, images)
    return {
        "steps": [single.step, one_call.step],
        "leaves": len(a), "dtypes_equal": [x.dtype for x in a] == [y.dtype for y in b],
        "max_difference": max(float(np.max(np.abs(np.asarray(x, np.float64)
                                                  - np.asarray(y, np.float64))))
                              for x, y in zip(a, b)),
        "metrics": [single.pop_metrics(), one_call.pop_metrics()],
        "restored_at": restored.restore(),
        "restored_batches_equal": all(np.array_equal(x, y) for x, y in
                                      zip(fresh.batches(2), restored.batches(2))),
        "epoch_labels": [np.asarray(fresh.batches(s)[1]).ravel().tolist() for s in range(4)],
        "data_labels": np.asarray(images.labels).tolist(),
    }


def train(config):
    loop.train(TrainConfig.from_json(config))
    return {}


def checkpoint_names(config):
    """The names of the values in a checkpoint of an untrained run of `config`."""
    config = TrainConfig.from_json(config)
    trainer = JaxTrainer(config, data.load_image_folder(config.image_dir))
    os.makedirs(trainer.run.checkpoints)
    with np.load(trainer.save()) as saved:
        return sorted(saved.files)


def train_expecting_error(config):
    """Trains and returns the one-line error it stops with, plus its checkpoints' state."""
    config = TrainConfig.from_json(config)
    kind = message = None
    try:
        loop.train(config)
    except UserError as error:
        kind, message = type(error).__name__, str(error)
    finite = []
    for _, path in RunDir(config.workdir).npz_checkpoints():
        with np.load(path) as saved:
            finite.append(all(np.isfinite(saved[name]).all() for name in saved.files
                              if saved[name].dtype.kind == "f"))
    return {"error": kind, "message": message,
            "checkpoints_finite": finite}


def lookahead(_):
    """The classifier's Lookahead, in `fit` and in its own loop, on JAX (lookahead_case.py)."""
    import lookahead_case

    return lookahead_case.run()


def truncate_newest_checkpoint_and_resume(config):
    """Cuts the newest .npz in half, then trains on: the run resumes from the one before."""
    config = TrainConfig.from_json(config)
    path = RunDir(config.workdir).npz_checkpoints()[-1][1]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    loop.train(dataclasses.replace(config, steps=config.steps + 2))
    return {}


if __name__ == "__main__":
    tasks = json.load(open(sys.argv[1]))
    functions = {"losses": losses, "steps_and_export": steps_and_export, "train": train,
                 "sharded_step": sharded_step, "lookahead": lookahead,
                 "steps_per_call": steps_per_call, "checkpoint_names": checkpoint_names,
                 "train_expecting_error": train_expecting_error,
                 "truncate_and_resume": truncate_newest_checkpoint_and_resume}
    results = {}
    for t in tasks:
        started = time.perf_counter()
        results[t["name"]] = functions[t["task"]](t["argument"])
        print(f"jax_worker: {t['name']} took {time.perf_counter() - started:.1f}s", flush=True)
    json.dump(results, open(sys.argv[2], "w"))
