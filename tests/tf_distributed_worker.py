"""Runs --distribute=mirrored checks on two logical CPU devices, in a process of its own (the
logical devices must be configured before TensorFlow starts).

  python tests/tf_distributed_worker.py IMAGE_DIR TMP RESULTS.json
"""

import dataclasses
import json
import os
import signal
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
# As in the test processes (conftest.py): the steps' graphs run without Grappler's rewrites.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tfgan_cifar import data  # noqa: E402
from tfgan_cifar.config import TrainConfig  # noqa: E402
from tfgan_cifar.errors import UserError  # noqa: E402
from tfgan_cifar.training import loop  # noqa: E402
from tfgan_cifar.training.tf_backend import TFTrainer  # noqa: E402

IMAGE_DIR, TMP, RESULTS = sys.argv[1:4]
MIRRORED = dict(distribute="mirrored", devices=("CPU:0", "CPU:1"))


def config(name, **overrides):
    values = dict(image_dir=IMAGE_DIR, workdir=os.path.join(TMP, name), width=4, z_dim=8,
                  batch_size=8, num_classes=3, steps=4, seed=3, log_every=1, sample_every=0,
                  eval_every=0, checkpoint_every=2, save_dir=os.path.join(TMP, name, "saved"),
                  optimizer="sgd", ema_decay=0.5)
    values.update(overrides)
    return TrainConfig(**values).resolved()


def two_steps(cfg):
    trainer = TFTrainer(cfg, data.load_image_folder(IMAGE_DIR))
    trainer.start()
    for _ in range(2):
        trainer.train_step()
    return trainer


def state(trainer):
    return {part: [np.asarray(v) for v in trainer.read(part)]
            for part in ("g", "g_nt", "d", "d_nt", "ema")}


def replica_spread(trainer):
    """The largest difference between two replicas' copies of any variable of G, D or EMA."""
    spread = 0.0
    for variable in (trainer.generator.variables + trainer.discriminator.variables
                     + trainer.ema_generator.variables):
        copies = [np.asarray(c) for c in trainer.strategy.experimental_local_results(variable)]
        spread = max([spread] + [float(np.max(np.abs(c - copies[0]))) for c in copies[1:]])
    return spread


def max_difference(a, b):
    return {part: max(float(np.max(np.abs(x - y))) for x, y in zip(a[part], b[part]))
            for part in a}


def compare(model, one_call=False, **overrides):
    """A single-device and a mirrored run's metrics and state after two steps; with
    `one_call`, also how far two mirrored steps in one call (--steps_per_call=2) are from them."""
    single = two_steps(config(f"single_{model}", model=model, **overrides))
    mirrored = two_steps(config(f"mirrored_{model}", model=model, **MIRRORED, **overrides))
    a, b = state(single), state(mirrored)
    result = {
        "replicas": mirrored.replicas,
        "metrics": [single.pop_metrics(), mirrored.pop_metrics()],
        "max_difference": max_difference(a, b),
        "replica_spread": replica_spread(mirrored),
    }
    if one_call:
        both = TFTrainer(config(f"mirrored_{model}_k2", model=model, steps_per_call=2,
                                log_every=2, **MIRRORED, **overrides),
                         data.load_image_folder(IMAGE_DIR))
        both.start()
        both.train_steps(2)
        result["one_call"] = {"metrics": both.pop_metrics(), "step": both.step,
                              "max_difference": max_difference(b, state(both)),
                              "replica_spread": replica_spread(both)}
    return result


def interrupted_and_resumed():
    """Four mirrored steps in a row against a run stopped by Ctrl-C (SIGINT) after step 3 and
    resumed: the largest difference of their final states, and how the run stopped."""
    interrupted = config("interrupted", model="dcgan", sync_bn=True, **MIRRORED)
    straight = TFTrainer(interrupted, data.load_image_folder(IMAGE_DIR))
    straight.start()
    for _ in range(4):
        straight.train_step()
    original = TFTrainer.train_steps

    def train_steps(trainer, count):
        original(trainer, count)
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    TFTrainer.train_steps = train_steps
    try:
        loop.train(interrupted)
        stopped = None
    except loop.StoppedBySignal as stop:
        stopped = stop.signum
    finally:
        TFTrainer.train_steps = original
    checkpoints = sorted(os.listdir(os.path.join(interrupted.workdir, "checkpoints")))
    loop.train(interrupted)
    resumed = TFTrainer(interrupted, data.load_image_folder(IMAGE_DIR))
    assert resumed.restore() == 4
    finals = [state(straight), state(resumed)]
    return {"stopped_by": stopped, "checkpoints_when_stopped": checkpoints,
            "max_difference": max(float(np.max(np.abs(x - y))) for part in finals[0]
                                  for x, y in zip(finals[0][part], finals[1][part]))}


def replay_over_replicas():
    """Experience replay (half of each fake batch) on one device and on two replicas: the
    buffers after one step (the same G, so the same fakes), how alike the replicas' buffers
    are, and the fraction of replayed images D saw in the second step."""
    overrides = dict(model="dcgan", sync_bn=True, replay_size=16, replay_fraction=0.5)
    trainers = [TFTrainer(config(name, **overrides, **extra), data.load_image_folder(IMAGE_DIR))
                for name, extra in (("single_replay", {}), ("mirrored_replay", MIRRORED))]
    for trainer in trainers:
        trainer.start()
        trainer.train_step()
    single, mirrored = ({name: np.asarray(value)
                         for name, value in t.read("replay")._asdict().items()}
                        for t in trainers)
    copies = [np.asarray(c) for c in trainers[1].strategy.experimental_local_results(
        trainers[1].state.replay.images)]
    trainers[1].pop_metrics()
    trainers[1].train_step()
    return {"buffer_difference": float(np.max(np.abs(single["images"] - mirrored["images"]))),
            "labels_equal": bool(np.array_equal(single["labels"], mirrored["labels"])),
            "filled": [int(single["filled"]), int(mirrored["filled"])],
            "replica_spread": max(float(np.max(np.abs(c - copies[0]))) for c in copies),
            "replayed_in_step_2": trainers[1].pop_metrics()["replayed"]}


def refused(**overrides):
    try:
        loop.train(config("refused", model="dcgan", **overrides))
    except UserError as error:
        return {"error": str(error),
                "written": sorted(os.listdir(os.path.join(TMP, "refused")))
                if os.path.isdir(os.path.join(TMP, "refused")) else []}
    return {"error": None}


results = {
    # Self-attention holds no batch statistics or other replica state: left out, it saves a
    # third of the compile time.
    "sagan_sync_bn": compare("sagan", sync_bn=True, attention_res=()),
    "dcgan_sync_bn": compare("dcgan", sync_bn=True, class_head=True),
    "dcgan_local_bn": compare("dcgan", one_call=True),
    "resume": interrupted_and_resumed(),
    "replay": replay_over_replicas(),
    "odd_batch": refused(batch_size=7, **MIRRORED),
    "unknown_device": refused(distribute="mirrored", devices=("GPU:7",)),
}
with open(RESULTS, "w") as f:
    json.dump(results, f)
