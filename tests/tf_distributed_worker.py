"""Runs --distribute=mirrored checks on two logical CPU devices, in a process of its own (the
logical devices must be configured before TensorFlow starts).

  python tests/tf_distributed_worker.py IMAGE_DIR TMP RESULTS.json

Tracing a step under MirroredStrategy is most of what this costs, so each compiled mirrored
step serves as many checks as it can: the single-device references run eagerly (the same Python
step, op by op), and the local-batch-norm trainer also makes the one-call and the uninterrupted
runs.
"""

import contextlib
import io
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
from tfgan_cifar.commands import train as train_command  # noqa: E402
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


def new_trainer(cfg):
    return TFTrainer(cfg, data.load_image_folder(IMAGE_DIR))


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


def pair(name, **overrides):
    """Trainers of the same run on one device (stepping eagerly) and mirrored (compiled)."""
    return (new_trainer(config(f"single_{name}", run_eagerly=True, **overrides)),
            new_trainer(config(f"mirrored_{name}", **MIRRORED, **overrides)))


def compare(single, mirrored):
    """Two steps of each of a `pair`: their metrics, the largest difference of their states and
    of the mirrored replicas' copies; and the mirrored state."""
    for each in (single, mirrored):
        each.start()
        for _ in range(2):
            each.train_step()
    after_two = state(mirrored)
    return {
        "replicas": mirrored.replicas,
        "metrics": [single.pop_metrics(), mirrored.pop_metrics()],
        "max_difference": max_difference(state(single), after_two),
        "replica_spread": replica_spread(mirrored),
    }, after_two


def local_bn():
    """compare() with local batch statistics; then the same mirrored trainer goes on to step 4
    (the uninterrupted run that `interrupted_and_resumed` needs) and, back at its step-0
    checkpoint, runs two steps in one call, as --steps_per_call=2 does. Returns the result and
    the state of step 4."""
    single, mirrored = pair("local", model="dcgan")
    mirrored.save()  # step 0, to come back to
    result, after_two = compare(single, mirrored)
    for _ in range(2):
        mirrored.train_step()
    after_four = state(mirrored)
    assert mirrored.restore() == 0
    mirrored.reset_metrics()  # not part of a checkpoint: they still sum steps 3 and 4
    mirrored.start()
    mirrored.train_steps(2)
    result["one_call"] = {"metrics": mirrored.pop_metrics(), "step": mirrored.step,
                          "max_difference": max_difference(after_two, state(mirrored)),
                          "replica_spread": replica_spread(mirrored)}
    return result, after_four


def interrupted_and_resumed(straight):
    """`straight`, the state of four mirrored steps in a row (local_bn's), against a run of the
    same config stopped by Ctrl-C (SIGINT) after step 3 and resumed: the largest difference of
    their final states, and how the run stopped."""
    interrupted = config("interrupted", model="dcgan", **MIRRORED)
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
    resumed = new_trainer(interrupted)
    assert resumed.restore() == 4
    resumed_state = state(resumed)
    return {"stopped_by": stopped, "checkpoints_when_stopped": checkpoints,
            "max_difference": max(float(np.max(np.abs(x - y))) for part in straight
                                  for x, y in zip(straight[part], resumed_state[part]))}


def replay_over_replicas():
    """Experience replay (half of each fake batch) on one device and on two replicas: the
    buffers after one step (the same G, so the same fakes), how alike the replicas' buffers
    are, and the fraction of replayed images D saw in the second step."""
    trainers = pair("replay", model="dcgan", sync_bn=True, replay_size=16, replay_fraction=0.5)
    for each in trainers:
        each.start()
        each.train_step()
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


def multi_worker_without_a_cluster():
    """The train command's exit code and stderr with --distribute=multi_worker and neither
    TF_CONFIG nor Slurm, and whether it made its workdir."""
    for name in [name for name in os.environ if name == "TF_CONFIG" or name.startswith("SLURM")]:
        del os.environ[name]
    workdir = os.path.join(TMP, "no_cluster")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            code = train_command.main([
                "train.py", f"--image_dir={IMAGE_DIR}", f"--workdir={workdir}",
                f"--save_dir={workdir}_saved", "--width=4", "--z_dim=8", "--batch_size=8",
                "--num_classes=3", "--steps=4", "--log_every=2", "--checkpoint_every=2",
                "--sample_every=0", "--eval_every=0", "--distribute=multi_worker"])
        except SystemExit as stop:
            code = stop.code
    return {"code": code, "stderr": stderr.getvalue(), "workdir_made": os.path.exists(workdir)}


local, straight = local_bn()
results = {
    # SNGAN's standard CNNs (--arch=cnn): conditional BN, spectral norm, the projection and
    # self-attention (at 8x8) in fewer layers than the ResNets, so a shorter trace.
    "sagan_sync_bn": compare(*pair("sagan", model="sagan", arch="cnn", sync_bn=True,
                                   attention_res=(8,)))[0],
    "dcgan_sync_bn": compare(*pair("dcgan", model="dcgan", sync_bn=True, class_head=True))[0],
    "dcgan_local_bn": local,
    "resume": interrupted_and_resumed(straight),
    "replay": replay_over_replicas(),
    "odd_batch": refused(batch_size=7, **MIRRORED),
    "unknown_device": refused(distribute="mirrored", devices=("GPU:7",)),
    "no_cluster": multi_worker_without_a_cluster(),
}
with open(RESULTS, "w") as f:
    json.dump(results, f)
