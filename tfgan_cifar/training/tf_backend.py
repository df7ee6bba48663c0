"""The TensorFlow backend: `tf.function` steps, tf.data input, `tf.train.Checkpoint` state.

The state (an `objective.TrainState`) lives in variables: the networks' and optimizers' own,
plus new ones for the replay buffer, the metric sums and the step. A compiled step reads them, runs the shared step
(`objective.GANObjective.step`) and assigns the results back; `jit_compile=True` hands it to
XLA. Metrics are summed on the device and read only when the loop logs. With --steps_per_call=K
one `tf.function` call runs K steps, each on the next batch of the input.

Under a tf.distribute strategy (`tf_distribute`) the variables are mirrored and the step runs
once per replica, on that replica's slice of the global batch and of the step's random draws.
The optimizers all-reduce the gradients (each replica's are divided by the number of replicas,
so the update is that of the mean loss over the global batch) and update every copy alike.
What else the step changes is made identical across replicas before it is assigned: the
non-trainable values (spectral-norm vectors, batch-norm moving statistics) and the metric sums
are averaged over the replicas; the spectral-norm vectors are equal already (the same power
iteration on the same weights), and so are the batch-norm statistics with --sync_bn. The rest
(EMA, counters, and the replay buffer, which every replica writes with the fakes of all
replicas) is computed alike on every replica and taken from the first.
"""

import os

import tensorflow as tf

from tfgan_cifar import data as data_lib
from tfgan_cifar.training import objective, tf_distribute
from tfgan_cifar.training.trainer import Trainer


def _value_and_grad(function):
    def value_and_grad(x, *args):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value, aux = function(x, *args)
        gradients = tape.gradient(value, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return (value, aux), gradients
    return value_and_grad


def _grad(function):
    def grad(x, *args):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value, aux = function(x, *args)
        return tape.gradient(value, x), aux
    return grad


def by_position(variables):
    """{"v0000": variable, ...}: checkpoint keys that do not depend on layer names."""
    return {f"v{index:04d}": variable for index, variable in enumerate(variables)}


def restore_discriminator(discriminator, prefix):
    """Sets a built `discriminator`'s weights to those of the TensorFlow checkpoint `prefix`."""
    tf.train.Checkpoint(discriminator=by_position(discriminator.variables)).restore(
        prefix).expect_partial()


# Parts of the state that a replica's step updates in place through the optimizers, and those
# whose new values are averaged over the replicas (see the module's docstring).
_UPDATED_BY_OPTIMIZERS = ("g", "d", "g_opt", "d_opt", "loss_scale")
_AVERAGED = ("g_nt", "d_nt", "sums")


class TFTrainer(Trainer):
    """A run on TensorFlow; see `trainer.Trainer`. `cluster` (`tf_distribute.Cluster`) is the
    strategy; default: one device."""

    backend = "tensorflow"

    def __init__(self, config, data, cluster=None):
        self.cluster = cluster or tf_distribute.connect(config)
        self.strategy = self.cluster.strategy
        self.replicas = self.cluster.replicas
        with self.strategy.scope():
            self._build_state(config)
        self.data = data
        self.rng = tf.random.Generator.from_seed(config.seed)
        if config.run_eagerly:  # --run_eagerly: the same Python functions, op by op
            self._compiled_step, self._next_and_step = self._step, self._next_and_step_eager
        else:
            self._compiled_step = tf.function(self._step, jit_compile=config.jit_compile,
                                              autograph=False)
            self._next_and_step = tf.function(self._next_and_step_eager, autograph=False)
        self._iterator = None
        self._make_checkpoint(config)

    def _build_state(self, config):
        super().__init__(config, objective.BackendOps(_value_and_grad, _grad, self._apply,
                                                      self._gather))
        initial = self.objective.initial_state(self.ema_generator)
        self.state = objective.TrainState(
            **self.objective.model_variables(self.ema_generator),
            **{part: tf.nest.map_structure(lambda v: tf.Variable(v, trainable=False),
                                           getattr(initial, part))
               for part in ("replay", "sums", "count", "diverged_at")},
            step=tf.Variable(0, dtype=tf.int64, trainable=False, name="step"),
        )

    def _make_checkpoint(self, config):
        G, D, ema = self.generator, self.discriminator, self.ema_generator
        # Keras 3 layers kept in Python lists are invisible to TF's object-graph tracking, so
        # the checkpoint names every variable explicitly, by its position in the model.
        self._checkpointed = dict(
            generator=by_position(G.variables), discriminator=by_position(D.variables),
            g_optimizer=by_position(self.state.g_opt),
            d_optimizer=by_position(self.state.d_opt),
            step=self.state.step, rng=self.rng,
            **({"ema_generator": by_position(ema.variables)} if ema else {}),
            **({"replay": self.state.replay._asdict()} if config.replay_size else {}),
            **({"loss_scale": {part: by_position(variables) for part, variables
                               in self.state.loss_scale.items()}}
               if self.objective.loss_scaled else {}),
        )
        self.checkpoint = tf.train.Checkpoint(**self._checkpointed)
        self.manager = self._checkpoint_manager() if self.cluster.is_writer else None

    def _apply(self, part, optimizer, grads, params, optimizer_values):
        # Keras's TF optimizers have no stateless_apply (it would not work under tf.distribute),
        # so they update the variables themselves. `params` are those variables' values: only
        # this update writes them during a step. Under a strategy it sums the replicas' gradients.
        if self.replicas > 1:
            grads = [tf.math.scalar_mul(1.0 / self.replicas, gradient) for gradient in grads]
        optimizer.apply(grads, getattr(self.state, part))
        return self.read(part), tf.nest.map_structure(tf.convert_to_tensor, optimizer.variables)

    def _gather(self, x):
        """`x` of every replica, concatenated along the first axis in replica order."""
        if self.replicas == 1:
            return x
        gathered = tf.distribute.get_replica_context().all_gather(x, axis=0)
        return tf.ensure_shape(gathered, [x.shape[0] * self.replicas, *x.shape[1:]])

    def _checkpoint_manager(self):
        try:
            return tf.train.CheckpointManager(self.checkpoint, self.run.checkpoints,
                                              max_to_keep=self.config.keep_checkpoints)
        except ValueError:  # an empty or garbled `checkpoint` index; the checkpoints are intact
            index = os.path.join(self.run.checkpoints, "checkpoint")
            print(f"warning: {index} is unreadable: rebuilt from the checkpoint files (older "
                  "checkpoints are no longer rotated away)", flush=True)
            os.remove(index)
            return tf.train.CheckpointManager(self.checkpoint, self.run.checkpoints,
                                              max_to_keep=self.config.keep_checkpoints)

    def compile(self, function):
        if self.config.run_eagerly:
            return function
        return tf.function(function, reduce_retracing=True, autograph=False)

    def read(self, part):
        return tf.nest.map_structure(tf.convert_to_tensor, getattr(self.state, part))

    def reset_metrics(self):
        for variable in self.state.sums.values():
            variable.assign(0.0)
        self.state.count.assign(0.0)

    @property
    def device(self):
        if self.cluster.kind != "none":
            return self.cluster.describe()
        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else "CPU"

    checkpoint_errors = Trainer.checkpoint_errors + (tf.errors.OpError,)

    def _load_checkpoint(self, path):
        saved_scale = any(name.startswith("loss_scale/")
                          for name, _ in tf.train.list_variables(path))
        if saved_scale == self.objective.loss_scaled:
            self.checkpoint.restore(path).assert_consumed()
            return
        # Written under another --precision: everything but the loss scale, which this run
        # either does not use or starts afresh.
        status = tf.train.Checkpoint(**{name: value for name, value in self._checkpointed.items()
                                        if name != "loss_scale"}).restore(path)
        status.expect_partial()
        status.assert_existing_objects_matched()

    def save(self):
        if self.manager is None:  # a worker that is not the chief: it takes part, then forgets
            with self.cluster.scratch_directory() as directory:
                self.checkpoint.write(os.path.join(directory, "ckpt"))
            return None
        return self.manager.save(checkpoint_number=self.step)

    def start(self):
        n_critic = self.config.n_critic
        dataset = data_lib.make_dataset(
            self.data, self.config.batch_size, self.config.seed,
            start_batch=self.step * n_critic, flip=self.config.flip,
        ).batch(n_critic, drop_remainder=True)
        self._iterator = iter(dataset)

    def _draws(self):
        return objective.draw(self.config, self.rng.normal, self.rng.uniform,
                              lambda shape, high: self.rng.uniform(shape, 0, high, tf.int32))

    def _step(self, images, labels):
        """One step on the global batch: each replica's, then the state made identical."""
        new = self.strategy.run(self._replica_step, args=(images, labels, self._draws()))
        for part, values in new._asdict().items():
            if part in _UPDATED_BY_OPTIMIZERS:
                continue
            if part in _AVERAGED:
                values = tf.nest.map_structure(
                    lambda v: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None),
                    values)
            else:
                values = tf.nest.map_structure(
                    lambda v: self.strategy.experimental_local_results(v)[0], values)
            tf.nest.map_structure(lambda variable, value: variable.assign(value),
                                  getattr(self.state, part), values)

    def _replica_step(self, images, labels, draws):
        """The shared step on this replica's slice of the batch and of the draws (whose batch
        axis is the second: [n_critic, B, ...])."""
        if self.replicas > 1:
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group

            def slice_of_replica(x):
                size = x.shape[1] // self.replicas
                return x[:, replica * size:(replica + 1) * size]

            images, labels, draws = tf.nest.map_structure(slice_of_replica,
                                                          (images, labels, draws))
        return self.objective.step(self.read_all(), images, labels, draws)

    def read_all(self):
        """The whole `TrainState` as tensors."""
        return tf.nest.map_structure(tf.convert_to_tensor, self.state)

    def _next_and_step_eager(self, iterator, count):
        # Unrolled: `count` calls of the compiled step in one graph, each on the next batch.
        # The step's variable updates order them.
        for _ in range(count):
            images, labels = next(iterator)
            self._compiled_step(images, labels)

    def train_steps(self, count):
        self._next_and_step(self._iterator, count)
