"""The TensorFlow trainer: `tf.function` steps, tf.data input, `tf.train.Checkpoint` state.

One call of `train_step` is one generator update preceded by `n_critic` discriminator updates,
all inside one compiled function (`jit_compile=True` hands it to XLA). Metrics are summed on the
device and read only when the loop logs.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_cifar import data as data_lib
from tfgan_cifar.layers import SelfAttention
from tfgan_cifar.losses import LOSSES, discriminator_accuracy
from tfgan_cifar.models import build_models
from tfgan_cifar.optimizers import make_optimizers

tf.get_logger().setLevel("WARNING")  # TF's per-save INFO lines drown the progress output

METRICS = ("g_loss", "d_loss", "d_real_acc", "d_fake_acc")


def _by_position(variables):
    return {f"v{index:04d}": variable for index, variable in enumerate(variables)}


class TFTrainer:
    """Holds G, D, their optimizers, the step counter and the random stream of one run."""

    backend = "tensorflow"

    def __init__(self, config, data):
        self.config = config
        self.data = data
        self.loss = LOSSES[config.loss]
        keras.utils.set_random_seed(config.seed)
        self.generator, self.discriminator = build_models(config)
        self.generator.build_weights()
        self.discriminator.build_weights()
        self.g_optimizer, self.d_optimizer = make_optimizers(config)
        # Slots are created lazily in Keras 3: build them so a checkpoint restores into them.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.rng = tf.random.Generator.from_seed(config.seed)
        # Keras 3 layers kept in Python lists are invisible to TF's object-graph tracking, so
        # the checkpoint names every variable explicitly, by its position in the model.
        self.checkpoint = tf.train.Checkpoint(
            generator=_by_position(self.generator.variables),
            discriminator=_by_position(self.discriminator.variables),
            g_optimizer=_by_position(self.g_optimizer.variables),
            d_optimizer=_by_position(self.d_optimizer.variables),
            step=self.step, rng=self.rng,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(config.workdir, "checkpoints"),
            max_to_keep=config.keep_checkpoints,
        )
        self._sums = {name: tf.Variable(0.0, trainable=False) for name in METRICS}
        self._count = tf.Variable(0.0, trainable=False)
        self._compiled_step = tf.function(self._update, jit_compile=config.jit_compile)
        self._next_and_update = tf.function(self._next_and_update_eager)
        self._iterator = None

    @property
    def device(self):
        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else "CPU"

    def restore(self):
        """Restores the latest checkpoint of the run directory, if any; returns its step."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_consumed()
            logging.info("resumed from %s at step %d", latest, int(self.step))
        return int(self.step)

    def save(self):
        """Writes a checkpoint numbered by the current step; returns its path."""
        return self.manager.save(checkpoint_number=int(self.step))

    def start(self):
        """Builds the input pipeline from the batch the restored step had reached."""
        n_critic = self.config.n_critic
        dataset = data_lib.make_dataset(
            self.data, self.config.batch_size, self.config.seed,
            start_batch=int(self.step) * n_critic, flip=self.config.flip,
        ).batch(n_critic, drop_remainder=True)
        self._iterator = iter(dataset)

    def _next_and_update_eager(self, iterator):
        images, labels = next(iterator)
        self._compiled_step(images, labels)

    def train_step(self):
        """Runs one generator step (and its n_critic discriminator steps)."""
        self._next_and_update(self._iterator)

    def _sample_inputs(self, batch):
        z = self.rng.normal((batch, self.config.z_dim))
        labels = self.rng.uniform((batch,), 0, self.config.num_classes, dtype=tf.int32)
        return z, labels

    def _update(self, images, labels):
        batch = self.config.batch_size
        G, D, loss = self.generator, self.discriminator, self.loss
        for i in range(self.config.n_critic):
            z, fake_labels = self._sample_inputs(batch)
            with tf.GradientTape() as tape:
                fake = G(z, fake_labels, training=True)
                real_logits = D(images[i], labels[i], training=True)
                fake_logits = D(fake, fake_labels, training=True)
                d_loss = loss.d_loss(real_logits, fake_logits)
            grads = tape.gradient(d_loss, D.trainable_variables)
            self.d_optimizer.apply_gradients(zip(grads, D.trainable_variables))
        z, fake_labels = self._sample_inputs(batch)
        with tf.GradientTape() as tape:
            fake_logits_g = D(G(z, fake_labels, training=True), fake_labels, training=True)
            g_loss = loss.g_loss(fake_logits_g)
        grads = tape.gradient(g_loss, G.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, G.trainable_variables))
        real_acc, fake_acc = discriminator_accuracy(loss, real_logits, fake_logits)
        for name, value in zip(METRICS, (g_loss, d_loss, real_acc, fake_acc)):
            self._sums[name].assign_add(tf.cast(value, tf.float32))
        self._count.assign_add(1.0)
        self.step.assign_add(1)

    def pop_metrics(self):
        """Means of the step metrics since the last call, then resets them."""
        count = max(float(self._count.numpy()), 1.0)
        means = {name: float(v.numpy()) / count for name, v in self._sums.items()}
        for v in self._sums.values():
            v.assign(0.0)
        self._count.assign(0.0)
        return means

    def learning_rates(self):
        return {"lr_g": float(self.g_optimizer.learning_rate.numpy()),
                "lr_d": float(self.d_optimizer.learning_rate.numpy())}

    def attention_gains(self):
        """{"gamma/generator/attention16": value, ...} for every self-attention layer."""
        gains = {}
        for model in (self.generator, self.discriminator):
            for layer in model._flatten_layers():
                if isinstance(layer, SelfAttention):
                    gains[f"gamma/{model.name}/{layer.name}"] = float(layer.gamma.numpy())
        return gains

    def generate(self, z, labels):
        """Images in [-1, 1] (numpy) from G in inference mode."""
        return np.asarray(self.generator(tf.constant(z), tf.constant(labels), training=False))
