"""`--distribute` on TensorFlow: the tf.distribute strategy of a run, and which process writes.

  none          the default strategy: one device, no replicas
  mirrored      `tf.distribute.MirroredStrategy` over every local GPU, or over --devices
  multi_worker  `tf.distribute.MultiWorkerMirroredStrategy`; the cluster comes from TF_CONFIG,
                else from Slurm (`SlurmClusterResolver`) inside an allocation

Every replica runs the same step on its slice of the global batch (see `tf_backend`). Only the
chief (task "chief", else worker 0) writes the run directory; every other worker writes its
checkpoints into a temporary directory it deletes, as the TensorFlow multi-worker guide says
(saving is a collective operation, so every worker must take part).

A multi-worker strategy is joined within --connect_timeout, and SIGINT and SIGTERM end the wait,
by `rendezvous.join_within`. That needs a wait that lets Python run: the strategy's default
join, through TensorFlow's coordination service, waits for its peers in C++ holding the GIL and
installs its own SIGTERM handler, so neither a thread nor a signal handler (nor a watchdog
process, which could only SIGKILL it) could end it with one line and the usual exit status. So
the coordination service is left off, as TensorFlow's own multi-worker tests do: the strategy
then waits for its peers in a collective that releases the GIL, and finds a peer that fails
later with its periodic health check.
"""

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import tempfile

import tensorflow as tf
from tensorflow.python.eager import context

from tfgan_cifar.errors import UserError, one_line
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
            strategy = _join(_resolver(), config.connect_timeout)
        _STRATEGIES[key] = strategy
    return Cluster(_STRATEGIES[key], config.distribute)


def _join(resolver, seconds):
    """The MultiWorkerMirroredStrategy of `resolver`'s cluster, once every task of it has
    joined, within `seconds` (see the module docstring); UserError, one line, when TensorFlow
    refuses the cluster."""
    spec = resolver.cluster_spec()
    others = {f"{job} {index}": spec.task_address(job, index)
              for job in ("chief", "worker") if job in spec.jobs
              for index in spec.task_indices(job)
              if (job, index) != (resolver.task_type, resolver.task_id)}

    def unreachable():
        with concurrent.futures.ThreadPoolExecutor(min(len(others), 16) or 1) as pool:
            why = dict(zip(others, pool.map(rendezvous.refused, others.values())))
        silent = [f"{task} at {others[task]} ({why[task]})" for task in others if why[task]]
        if not silent:
            return (f"the other {len(others)} tasks answer but did not all join: check that "
                    "each one is started with the same cluster")
        return f"{', '.join(silent)} did not answer"

    # Off: its join holds the GIL (see the module docstring). Read when the strategy starts.
    context.context().configure_coordination_service(service_type="")
    source = "TF_CONFIG" if "TF_CONFIG" in os.environ else "Slurm"
    try:
        return rendezvous.join_within(
            lambda: tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver),
            seconds, unreachable, f"{len(others) + 1} tasks of {source}'s cluster, this one "
            f"is {resolver.task_type} {resolver.task_id}")
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        # TensorFlow names the op first: "{{function_node ...}} Collective ops is aborted by..."
        reason = one_line(re.sub(r"\{\{.*?\}\}", "", one_line(error, None)))
        raise UserError(f"--distribute=multi_worker could not join {source}'s cluster "
                        f"({reason}): check its addresses, that this task's port is free and "
                        "that every task is started with the same cluster") from None


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
