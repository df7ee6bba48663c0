"""The TensorFlow backend: `tf.function` steps, tf.data input, `tf.train.Checkpoint` state.

The state lives in variables: the networks' and optimizers' own, plus new ones for the replay
buffer, the metric sums and the step. A compiled step reads them, runs the shared step
(`objective.GANObjective.step`) and assigns the results back; `jit_compile=True` hands it to
XLA. Metrics are summed on the device and read only when the loop logs.
"""

import os

import tensorflow as tf

from tfgan_cifar import data as data_lib
from tfgan_cifar.training import objective
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


class TFTrainer(Trainer):
    """A run on TensorFlow; see `trainer.Trainer`."""

    backend = "tensorflow"

    def __init__(self, config, data):
        super().__init__(config, objective.BackendOps(_value_and_grad, _grad, self._apply))
        self.data = data
        G, D, ema = self.generator, self.discriminator, self.ema_generator
        initial = self.objective.initial_state(ema)
        self.state = {
            "g": G.trainable_variables, "g_nt": G.non_trainable_variables,
            "d": D.trainable_variables, "d_nt": D.non_trainable_variables,
            "g_opt": self.g_optimizer.variables, "d_opt": self.d_optimizer.variables,
            "ema": ema.trainable_variables if ema else [],
            **{part: tf.nest.map_structure(lambda v: tf.Variable(v, trainable=False),
                                           initial[part])
               for part in ("replay", "sums", "count", "diverged_at")},
            "step": tf.Variable(0, dtype=tf.int64, trainable=False, name="step"),
        }
        self.rng = tf.random.Generator.from_seed(config.seed)
        # Keras 3 layers kept in Python lists are invisible to TF's object-graph tracking, so
        # the checkpoint names every variable explicitly, by its position in the model.
        self.checkpoint = tf.train.Checkpoint(
            generator=by_position(G.variables), discriminator=by_position(D.variables),
            g_optimizer=by_position(self.g_optimizer.variables),
            d_optimizer=by_position(self.d_optimizer.variables),
            step=self.state["step"], rng=self.rng,
            **({"ema_generator": by_position(ema.variables)} if ema else {}),
            **({"replay": self.state["replay"]} if config.replay_size else {}),
        )
        self.manager = self._checkpoint_manager()
        self._compiled_step = tf.function(self._step, jit_compile=config.jit_compile)
        self._next_and_step = tf.function(self._next_and_step_eager)
        self._iterator = None

    def _apply(self, part, optimizer, grads, params, optimizer_values):
        # Keras's TF optimizers have no stateless_apply (it would not work under tf.distribute),
        # so they update the variables themselves. `params` are those variables' values: only
        # this update writes them during a step.
        optimizer.apply(grads, self.state[part])
        return self.read(part), tf.nest.map_structure(tf.convert_to_tensor, optimizer.variables)

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
        return tf.function(function, reduce_retracing=True)

    def read(self, part):
        return tf.nest.map_structure(tf.convert_to_tensor, self.state[part])

    def reset_metrics(self):
        for variable in self.state["sums"].values():
            variable.assign(0.0)
        self.state["count"].assign(0.0)

    @property
    def device(self):
        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else "CPU"

    checkpoint_errors = Trainer.checkpoint_errors + (tf.errors.OpError,)

    def _load_checkpoint(self, path):
        self.checkpoint.restore(path).assert_consumed()

    def save(self):
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
        state = self.objective.step(self.read_all(), images, labels, self._draws())
        tf.nest.map_structure(lambda variable, value: variable.assign(value), self.state, state)

    def read_all(self):
        """The whole state as tensors."""
        return {part: self.read(part) for part in self.state}

    def _next_and_step_eager(self, iterator):
        images, labels = next(iterator)
        self._compiled_step(images, labels)

    def train_step(self):
        self._next_and_step(self._iterator)
