"""`--distribute` on TensorFlow: the tf.distribute strategy of a run, and which process writes.

  none          the default strategy: one device, no replicas
  mirrored      `tf.distribute.MirroredStrategy` over every local GPU, or over --devices
  multi_worker  `tf.distribute.MultiWorkerMirroredStrategy`; the cluster comes from TF_CONFIG,
                else from Slurm (`SlurmClusterResolver`) inside an allocation

Every replica runs the same step on its slice of the global batch (see `tf_backend`). Only the
chief (task "chief", else worker 0) writes the run directory; every other worker writes its
checkpoints into a temporary directory it deletes, as the TensorFlow multi-worker guide says
(saving is a collective operation, so every worker must take part).
"""

import contextlib
import json
import os
import shutil
import tempfile

import tensorflow as tf

from tfgan_cifar.errors import UserError
from tfgan_cifar.training import rendezvous


class Cluster:
    """The strategy of a run and this process's place in it."""

    def __init__(self, strategy, kind):
        self.strategy, self.kind = strategy, kind
        self.replicas = strategy.num_replicas_in_sync
        resolver = getattr(strategy, "cluster_resolver", None)
        self.task_type = getattr(resolver, "task_type", None) if kind == "multi_worker" else None
        self.task_id = getattr(resolver, "task_id", None) if kind == "multi_worker" else None
        self.is_writer = kind != "multi_worker" or _is_chief(resolver)

    def describe(self):
        """The devices in words, for the start line."""
        if self.kind == "none":
            return "1 device"
        role = "" if self.kind == "mirrored" else (
            f", this process is {self.task_type} {self.task_id}"
            f"{' (writes the run)' if self.is_writer else ''}")
        return f"{self.kind}, {self.replicas} replicas{role}"

    @contextlib.contextmanager
    def scratch_directory(self):
        """A temporary directory for the checkpoint of a worker that is not the chief, deleted
        afterwards: saving is collective, so every worker saves, but only the chief keeps it."""
        directory = tempfile.mkdtemp(prefix=f"tfgan_cifar_worker{self.task_id}_")
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _is_chief(resolver):
    spec = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return True
    return "chief" not in spec and resolver.task_type == "worker" and resolver.task_id == 0


# One strategy per kind and devices for the life of the process: the collectives of a second
# MirroredStrategy over the same devices collide with the first one's (tensorflow#62790), so a
# process that trains twice (a notebook, the tests) reuses it.
_STRATEGIES = {}


def connect(config):
    """The `Cluster` of `config.distribute`; raises UserError, one line, when it cannot be
    built (unknown --devices, multi_worker without a cluster description)."""
    if config.distribute == "none":
        return Cluster(tf.distribute.get_strategy(), "none")
    key = (config.distribute, tuple(config.devices))
    if key not in _STRATEGIES:
        if config.distribute == "mirrored":
            strategy = tf.distribute.MirroredStrategy(devices=_devices(config.devices) or None)
        else:
            # Not bounded by --connect_timeout: the strategy waits for its peers in C++ while
            # holding the GIL, so no Python thread or handler can run until they answer.
            strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=_resolver())
        _STRATEGIES[key] = strategy
    return Cluster(_STRATEGIES[key], config.distribute)


def _devices(names):
    """The logical devices --devices names (GPU:0, /gpu:1, CPU:0...), checked to exist."""
    known = {device.name.lower(): device.name for device in tf.config.list_logical_devices()}
    chosen = []
    for name in names:
        full = name if name.startswith("/") else f"/device:{name}"
        key = next((k for k in known if k.endswith(full.lower().replace("/device:", "device:"))),
                   None)
        if key is None:
            raise UserError(f"--devices={','.join(names)}: no device {name} here (there are "
                            f"{', '.join(d.split('device:')[-1] for d in known.values())})")
        chosen.append(known[key])
    return chosen


def _resolver():
    if "TF_CONFIG" in os.environ:
        try:
            spec = json.loads(os.environ["TF_CONFIG"])
            spec["cluster"], spec["task"]["type"], spec["task"]["index"]
            addresses = [a for tasks in spec["cluster"].values() for a in tasks]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"TF_CONFIG is not a cluster description ({error}): it needs "
                            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
                            '"worker", "index": N}}') from None
        for address in addresses:
            rendezvous.parse_address(address, "TF_CONFIG's cluster address")
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if "SLURM_PROCID" in os.environ:
        gpus = len(tf.config.list_physical_devices("GPU"))
        return tf.distribute.cluster_resolver.SlurmClusterResolver(
            gpus_per_node=gpus, gpus_per_task=gpus, auto_set_gpu=bool(gpus))
    raise UserError("--distribute=multi_worker needs the cluster: set TF_CONFIG on every worker "
                    "(see docs/precision_and_devices.md) or launch it with srun inside a Slurm "
                    "allocation")
