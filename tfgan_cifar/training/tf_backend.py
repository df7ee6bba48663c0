"""The TensorFlow trainer: `tf.function` steps, tf.data input, `tf.train.Checkpoint` state.

One call of `train_step` is one generator update preceded by `n_critic` discriminator updates,
all inside one compiled function (`jit_compile=True` hands it to XLA). Metrics are summed on the
device and read only when the loop logs.
"""


import numpy as np
import tensorflow as tf

from tfgan_cifar import data as data_lib
from tfgan_cifar.nn.layers import SelfAttention
from tfgan_cifar.run_log import checkpoint_dir
from tfgan_cifar.training import objective, replay
from tfgan_cifar.training.losses import (LOSSES, discriminator_accuracy, gradient_penalty,
                                         interpolate)


def by_position(variables):
    """{"v0000": variable, ...}: checkpoint keys that do not depend on layer names."""
    return {f"v{index:04d}": variable for index, variable in enumerate(variables)}


class TFTrainer:
    """Holds G, D, their optimizers, the step counter and the random stream of one run."""

    backend = "tensorflow"

    def __init__(self, config, data):
        self.config = config
        self.data = data
        self.loss = LOSSES[config.loss]
        (self.generator, self.discriminator, self.g_optimizer, self.d_optimizer,
         self.ema_generator) = objective.build_networks(config)
        self.metric_names = objective.metric_names(config)
        self.replay_state = self._replay_variables() if config.replay_size else {}
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.rng = tf.random.Generator.from_seed(config.seed)
        # Keras 3 layers kept in Python lists are invisible to TF's object-graph tracking, so
        # the checkpoint names every variable explicitly, by its position in the model.
        self.checkpoint = tf.train.Checkpoint(
            generator=by_position(self.generator.variables),
            discriminator=by_position(self.discriminator.variables),
            g_optimizer=by_position(self.g_optimizer.variables),
            d_optimizer=by_position(self.d_optimizer.variables),
            step=self.step, rng=self.rng,
            **({"ema_generator": by_position(self.ema_generator.variables)}
               if self.ema_generator else {}),
            **({"replay": self.replay_state} if self.replay_state else {}),
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, checkpoint_dir(config.workdir),
            max_to_keep=config.keep_checkpoints,
        )
        self._sums = {name: tf.Variable(0.0, trainable=False) for name in self.metric_names}
        self._count = tf.Variable(0.0, trainable=False)
        self._compiled_step = tf.function(self._update, jit_compile=config.jit_compile)
        self._next_and_update = tf.function(self._next_and_update_eager)
        self._iterator = None
        self._generate = tf.function(
            lambda z, labels: self.export_generator()(z, labels, training=False),
            reduce_retracing=True)
        self._class_logits = tf.function(
            lambda images: self.discriminator(
                images, tf.zeros(tf.shape(images)[:1], tf.int32), training=False,
                return_class_logits=True)[1],
            reduce_retracing=True)

    @property
    def device(self):
        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else "CPU"

    def restore(self):
        """Restores the latest checkpoint of the run directory, if any; returns its step."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_consumed()
            print(f"resumed from {latest} at step {int(self.step)}", flush=True)
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

    def _replay_variables(self):
        size = self.config.replay_size
        return {"images": tf.Variable(tf.zeros((size, 32, 32, 3)), trainable=False),
                "labels": tf.Variable(tf.zeros((size,), tf.int32), trainable=False),
                "position": tf.Variable(0, trainable=False),
                "filled": tf.Variable(0, trainable=False)}

    def _draws(self):
        draws = {}
        for name, (shape, distribution, high) in objective.draw_specs(self.config).items():
            if distribution == "normal":
                draws[name] = self.rng.normal(shape)
            elif distribution == "uniform":
                draws[name] = self.rng.uniform(shape)
            else:
                draws[name] = self.rng.uniform(shape, 0, high, dtype=tf.int32)
        return draws

    def _update(self, images, labels):
        metrics = self.update(images, labels, self._draws())
        if self.ema_generator is not None:
            self._update_ema()
        for name in self.metric_names:
            self._sums[name].assign_add(tf.cast(metrics[name], tf.float32))
        self._count.assign_add(1.0)
        self.step.assign_add(1)

    def _update_ema(self):
        """ema <- decay * ema + (1 - decay) * w for G's weights; statistics are copied."""
        decay = self.config.ema_decay
        trainable = {id(v) for v in self.generator.trainable_variables}
        for ema, variable in zip(self.ema_generator.variables, self.generator.variables):
            if id(variable) in trainable:
                ema.assign(decay * ema + (1.0 - decay) * variable)
            else:
                ema.assign(variable)

    def update(self, images, labels, draws):
        """One G step after n_critic D steps, on given batches and random draws.

        images/labels: [n_critic, B, ...]; draws: see `objective.draw_specs`.
        Returns {metric: value}.
        """
        config, G, D, loss = self.config, self.generator, self.discriminator, self.loss
        z, fake_labels = draws["z"], draws["fake_labels"]
        for i in range(config.n_critic):
            with tf.GradientTape() as tape:
                fake = G(z[i], fake_labels[i], training=True)
                shown, shown_labels = fake, fake_labels[i]
                if config.replay_size:
                    buffer = self.replay_state
                    shown, shown_labels, replayed = replay.mix(
                        fake, fake_labels[i], buffer["images"], buffer["labels"],
                        buffer["filled"], draws["replay_index"][i], replay.replay_count(config))
                class_logits = None
                if config.aux_classifier:
                    real_logits, class_logits = D(images[i], labels[i], training=True,
                                                  return_class_logits=True)
                else:
                    real_logits = D(images[i], labels[i], training=True)
                fake_logits = D(shown, shown_labels, training=True)
                penalty = (self.gradient_penalty(images[i], shown, labels[i],
                                                 draws["gp_epsilon"][i])
                           if config.gp_weight else None)
                d_total, d_metrics = objective.discriminator_objective(
                    config, loss, real_logits, fake_logits, class_logits, labels[i], penalty)
            grads = tape.gradient(d_total, D.trainable_variables)
            self.d_optimizer.apply_gradients(zip(grads, D.trainable_variables))
            if config.replay_size:
                self._write_replay(fake, fake_labels[i])
                d_metrics["replayed"] = tf.reduce_mean(replayed)
        with tf.GradientTape() as tape:
            fake_logits_g = D(G(z[-1], fake_labels[-1], training=True), fake_labels[-1],
                              training=True)
            g_loss = loss.g_loss(fake_logits_g)
        grads = tape.gradient(g_loss, G.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, G.trainable_variables))
        real_acc, fake_acc = discriminator_accuracy(loss, real_logits, fake_logits)
        return {**d_metrics, "g_loss": g_loss, "d_real_acc": real_acc, "d_fake_acc": fake_acc}

    def gradient_penalty(self, real, fake, labels, epsilon, training=True):
        """GP of D at random interpolates of real and fake images (see losses.gradient_penalty)."""
        x_hat = interpolate(real, fake, epsilon)
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            critic = self.discriminator(x_hat, labels, training=training)
        return gradient_penalty(tape.gradient(critic, x_hat))

    def _write_replay(self, fake, fake_labels):
        buffer, size = self.replay_state, self.config.replay_size
        rows = replay.write_rows(buffer["position"], fake.shape[0], size)[:, None]
        buffer["images"].scatter_nd_update(rows, tf.stop_gradient(fake))
        buffer["labels"].scatter_nd_update(rows, fake_labels)
        position, filled = replay.advance(buffer["position"], buffer["filled"], fake.shape[0],
                                          size)
        buffer["position"].assign(position)
        buffer["filled"].assign(filled)

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

    def generate(self, z, labels, batch_size=500):
        """Images in [-1, 1] (numpy) from G in inference mode, computed in chunks."""
        return np.concatenate([
            np.asarray(self._generate(tf.constant(z[i:i + batch_size]),
                                      tf.constant(labels[i:i + batch_size])))
            for i in range(0, len(z), batch_size)])

    def generate_with_attention(self, z, labels):
        """(images, {resolution: attention [N, positions, positions]}) from a SAGAN generator."""
        images, maps = self.export_generator()(z, labels, training=False, return_attention=True)
        return np.asarray(images), {r: np.asarray(m) for r, m in maps.items()}

    def export_generator(self):
        """The generator to sample and export: the EMA one when --ema_decay is set."""
        return self.ema_generator or self.generator

    def export_discriminator(self):
        """D, exported beside the generator when it has a classifier head; else None."""
        return self.discriminator if self.config.aux_classifier else None

    def class_logits(self, images, batch_size=500):
        """The classifier head's logits (numpy [N, num_classes]) for images in [-1, 1]."""
        return np.concatenate([
            np.asarray(self._class_logits(tf.constant(images[i:i + batch_size])))
            for i in range(0, len(images), batch_size)])
