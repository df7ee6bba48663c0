"""`--distribute` on JAX: a one-axis device mesh for data parallelism, across processes if asked.

  none          one device
  mirrored      every local device (or --devices): the batch axis is sharded over them, the
                state replicated, and one jitted step runs on all (XLA inserts the collectives,
                so batch-norm statistics are those of the global batch)
  multi_worker  the same over the devices of several processes, joined with
                `jax.distributed.initialize` (--coordinator_address, --num_processes and
                --process_id, or what JAX finds in the environment, e.g. under Slurm)

Every process loads the data set and computes the same global batch indices; XLA gives each
device its slice. Process 0 writes the run directory.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tfgan_cifar.errors import UserError, one_line
from tfgan_cifar.training import rendezvous

AXIS = "batch"


class Cluster:
    """The mesh of a run and this process's place in it."""

    def __init__(self, devices, kind):
        self.kind = kind
        self.mesh = Mesh(np.array(devices), (AXIS,))
        self.replicas = len(devices)
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.processes = jax.process_count()
        self.is_writer = jax.process_index() == 0
        self.platform = devices[0].platform  # "cpu", "gpu" or "tpu": one kind per mesh

    def batch_sharding(self, batch_axis):
        """Shards axis `batch_axis` of an array over the devices."""
        return NamedSharding(self.mesh, PartitionSpec(*([None] * batch_axis), AXIS))

    def place(self, tree, sharding=None):
        """Host or device arrays as global arrays with `sharding` (default: replicated). Every
        process must pass the same values (each supplies its own devices' parts)."""
        sharding = sharding or self.replicated

        def put(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
        return jax.tree.map(put, tree)

    def local(self, tree):
        """Replicated global arrays as arrays of this process (readable without the others)."""
        if self.processes == 1:
            return tree
        return jax.tree.map(lambda x: x.addressable_data(0), tree)

    def describe(self):
        """The devices in words, for the start line."""
        device = self.mesh.devices.flat[0]
        name = f"{self.platform.upper()} ({device.device_kind})"
        if self.kind == "none":
            return name
        where = (f" in {self.processes} processes, this one is {jax.process_index()}"
                 if self.processes > 1 else "")
        return f"{self.replicas} x {name}{where}"


def connect(config):
    """The `Cluster` of `config.distribute`; joins the other processes first for
    multi_worker. Raises UserError, one line, when that cannot be done."""
    if config.distribute == "multi_worker":
        _initialize(config)
        return Cluster(jax.devices(), "multi_worker")
    if config.coordinator_address or config.num_processes or config.process_id is not None:
        raise UserError("--coordinator_address, --num_processes and --process_id need "
                        "--distribute=multi_worker")
    if config.distribute == "mirrored":
        return Cluster(_devices(config.devices) if config.devices else jax.local_devices(),
                       "mirrored")
    return Cluster(jax.local_devices()[:1], "none")


def _initialize(config):
    given = (config.coordinator_address, config.num_processes, config.process_id)
    if any(value is not None for value in given) and not all(value is not None for value in given):
        raise UserError("--distribute=multi_worker on JAX needs all of --coordinator_address, "
                        "--num_processes and --process_id (or none, under a cluster JAX detects "
                        "such as Slurm)")
    if config.process_id is not None and config.process_id >= config.num_processes:
        raise UserError(f"--process_id={config.process_id} must be below "
                        f"--num_processes={config.num_processes}")
    if given[0]:
        rendezvous.parse_address(config.coordinator_address, "--coordinator_address")

    def unreachable():
        if not given[0]:
            return "the coordinator JAX found in the environment did not answer"
        if config.process_id == 0:
            return (f"the other {config.num_processes - 1} processes did not connect to "
                    f"--coordinator_address={config.coordinator_address}")
        why = rendezvous.refused(config.coordinator_address)
        return (f"--coordinator_address={config.coordinator_address} did not answer"
                + (f" ({why})" if why else ""))

    # JAX's own timeout aborts the process from C++: it must come later than ours.
    kwargs = dict(initialization_timeout=config.connect_timeout + 60)
    try:
        rendezvous.join_within(
            lambda: jax.distributed.initialize(*given, **kwargs) if given[0]
            else jax.distributed.initialize(**kwargs), config.connect_timeout, unreachable,
            f"coordinator {config.coordinator_address}" if given[0] else "the environment's")
    except (ValueError, RuntimeError) as error:
        reason = one_line(error)
        raise UserError(f"--distribute=multi_worker could not join the other processes "
                        f"({reason}): pass --coordinator_address=HOST:PORT, --num_processes "
                        "and --process_id, or launch it under Slurm") from None


def _devices(names):
    """The local devices --devices names: "gpu:0", "cpu:1"... (platform:id)."""
    known = {f"{d.platform}:{d.id}": d for d in jax.local_devices()}
    chosen = []
    for name in names:
        device = known.get(name.lower())
        if device is None:
            raise UserError(f"--devices={','.join(names)}: no device {name} here (there are "
                            f"{', '.join(known)})")
        chosen.append(device)
    return chosen
