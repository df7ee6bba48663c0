"""The trainer the loop drives, and everything of it that does not depend on the backend.

A backend subclass (`tf_backend.TFTrainer`, `jax_backend.JaxTrainer`) says how a pure function
is compiled, where the training state lives and how it is read, how batches and random draws
reach the step, and how checkpoints are written. Everything else, the step itself
(`objective.GANObjective`) and the read side below, is written once.
"""

import abc
import os

import keras
import numpy as np

from tfgan_cifar.errors import UserError, one_line
from tfgan_cifar.nn.base import nested_layers
from tfgan_cifar.nn.layers import SelfAttention, with_own_spectral_vectors
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.training.objective import GANObjective, build_networks
from tfgan_cifar.training.optimizers import learning_rate

# Compiled calls (of --steps_per_call steps each) a backend that dispatches asynchronously (JAX)
# may run ahead of the device. Unbounded, Python queued up to --log_every steps, and Ctrl-C
# then waited for all of them before saving (docs/performance.md).
MAX_IN_FLIGHT = 3

CHUNK = 500  # images per compiled call when sampling or classifying

# Power iterations on the EMA weights, from the live G's vectors, before the EMA G samples or
# is exported: enough for sigma to reach their largest singular value.
EMA_POWER_ITERATIONS = 50


def assign(variables, new_values):
    """Copies arrays into Keras variables."""
    for variable, value in zip(variables, new_values):
        variable.assign(value)


class Trainer(abc.ABC):
    """G, D, their optimizers and the training state of one run.

    The loop calls: restore(), start(), train_steps(), pop_metrics(), save(), and for
    evaluation generate(), class_logits(), export_generator(), export_discriminator().
    """

    backend = None  # "tensorflow" or "jax"

    def __init__(self, config, backend_ops):
        self.config = config
        self.run = RunDir(config.workdir)
        self.networks = build_networks(config)
        (self.generator, self.discriminator, self.g_optimizer, self.d_optimizer,
         self.ema_generator, self.sampler) = self.networks
        self.objective = GANObjective(config, self.networks, backend_ops)
        self.metric_names = self.objective.metric_names
        self._generate = self.compile(self.objective.generate)
        self._class_logits = self.compile(self.objective.class_logits)
        self._batch_statistics = self.compile(self.objective.batch_statistics)
        self._own_spectral_vectors = self.compile(
            lambda g, g_nt: with_own_spectral_vectors(self.sampler, g, g_nt,
                                                      EMA_POWER_ITERATIONS))
        self._standing = (None, None)  # (step, g_nt with standing statistics)

    # ---- what a backend provides -----------------------------------------------------------

    @abc.abstractmethod
    def compile(self, function):
        """`function` (pure, of arrays) compiled for this backend."""

    @abc.abstractmethod
    def read(self, part):
        """The current value of one part of the state, by its field's name ("g", "sums", ...;
        see `objective.TrainState`)."""

    @abc.abstractmethod
    def reset_metrics(self):
        """Zeroes the metric sums and their count."""

    @property
    @abc.abstractmethod
    def device(self):
        """The device the step runs on, in words."""

    @abc.abstractmethod
    def _load_checkpoint(self, path):
        """Loads one checkpoint of this backend into the state; raises if it cannot."""

    checkpoint_errors = (OSError, ValueError, KeyError, IndexError, EOFError, AssertionError)

    @abc.abstractmethod
    def save(self):
        """Writes a checkpoint numbered by the current step; returns its path."""

    @abc.abstractmethod
    def start(self):
        """Prepares the input from the batch the restored step had reached."""

    @abc.abstractmethod
    def train_steps(self, count):
        """Runs `count` generator steps (each with its n_critic discriminator steps) in one
        compiled call; the metric sums accumulate over all of them."""

    def train_step(self):
        """Runs one generator step (and its n_critic discriminator steps)."""
        self.train_steps(1)

    # ---- shared ----------------------------------------------------------------------------

    def restore(self):
        """Restores the newest readable checkpoint of the run directory; returns its step, or 0
        without any. Newer unreadable ones (a truncated file, a kill mid-write) are skipped with
        a warning; when none can be read, UserError says why."""
        errors = []
        for _, path in reversed(self.run.checkpoint_files()[self.backend]):
            try:
                self._load_checkpoint(path)
            except self.checkpoint_errors as error:
                reason = one_line(error)
                errors.append(f"{os.path.basename(path)}: {reason}")
                print(f"warning: checkpoint {path} cannot be read ({reason}); trying an older "
                      "one", flush=True)
                continue
            self._standing = (None, None)
            print(f"resumed from {path} at step {self.step}", flush=True)
            return self.step
        if errors:
            raise UserError(f"no readable checkpoint in {self.run.checkpoints} ("
                            + "; ".join(errors) + "): pass another --workdir")
        return 0

    @property
    def step(self):
        return int(self.read("step"))

    def diverged_at(self):
        """The first step whose losses or weights were not finite, or 0."""
        return int(self.read("diverged_at"))

    def pop_metrics(self):
        """Means of the step metrics since the last call, then resets them."""
        count = max(float(self.read("count")), 1.0)
        means = {name: float(value) / count for name, value in self.read("sums").items()}
        self.reset_metrics()
        return means

    def learning_rates(self):
        """{"lr_g", "lr_d"}: the learning rates the next step uses."""
        step = self.step
        return {f"lr_{part}": learning_rate(self.config, part, step) for part in ("g", "d")}

    def attention_gains(self):
        """{"gamma/generator/attention16": value, ...} for every self-attention layer."""
        gains = {}
        for model, part in ((self.generator, "g"), (self.discriminator, "d")):
            weights = self.read(part)
            positions = {id(v): i for i, v in enumerate(model.trainable_variables)}
            for layer in nested_layers(model):
                if isinstance(layer, SelfAttention):
                    gains[f"gamma/{model.name}/{layer.name}"] = float(
                        weights[positions[id(layer.gamma)]])
        return gains

    def _sampling_weights(self):
        g, g_nt = self.objective.sampling_weights(self.read("g"), self.read("g_nt"),
                                                  self.read("ema"))
        if self.config.ema_decay:
            g_nt = self._own_spectral_vectors(g, g_nt)
            if self.config.standing_stats:
                g_nt = self.standing_statistics(g, g_nt)
        return g, g_nt

    def standing_statistics(self, g, g_nt):
        """`g_nt` with the batch-norm statistics that G with weights `g` has on its own samples:
        the mean batch statistics over --standing_stats batches of --batch_size fixed draws
        (computed once per step). The EMA weights never ran with the live G's statistics."""
        step = self.step
        if self._standing[0] != step:
            config = self.config
            rng = np.random.default_rng(config.seed)
            shape = (config.standing_stats, config.batch_size)
            z = rng.standard_normal(shape + (config.z_dim,)).astype(np.float32)
            labels = rng.integers(0, config.num_classes, shape).astype(np.int32)
            batches = [[keras.ops.convert_to_numpy(s)
                        for s in self._batch_statistics(g, g_nt, batch_z, batch_labels)]
                       for batch_z, batch_labels in zip(z, labels)]
            self._standing = (step, self.objective.with_statistics(
                g_nt, [np.mean(values, axis=0) for values in zip(*batches)]))
        return self._standing[1]

    def generate(self, z, labels, batch_size=CHUNK):
        """Images in [-1, 1] (numpy) from the sampling G in inference mode, in chunks."""
        g, g_nt = self._sampling_weights()
        return np.concatenate([
            keras.ops.convert_to_numpy(self._generate(g, g_nt, z[i:i + batch_size],
                                                      labels[i:i + batch_size]))
            for i in range(0, len(z), batch_size)])

    def class_logits(self, images, batch_size=CHUNK):
        """The classifier head's logits (numpy [N, num_classes]) for images in [-1, 1]."""
        d, d_nt = self.read("d"), self.read("d_nt")
        return np.concatenate([
            keras.ops.convert_to_numpy(self._class_logits(d, d_nt, images[i:i + batch_size]))
            for i in range(0, len(images), batch_size)])

    def export_generator(self):
        """The float32 Keras generator holding the sampling weights (the EMA ones with
        --ema_decay)."""
        model = self.sampler
        g, g_nt = self._sampling_weights()
        assign(model.trainable_variables, g)
        assign(model.non_trainable_variables, g_nt)
        return model

    def export_discriminator(self):
        """D, exported beside the generator when it has a classifier head; else None."""
        if not self.config.class_head:
            return None
        assign(self.discriminator.trainable_variables, self.read("d"))
        assign(self.discriminator.non_trainable_variables, self.read("d_nt"))
        return self.discriminator

    def generate_with_attention(self, z, labels):
        """(images, {resolution: attention [N, positions, positions]}) from a SAGAN generator."""
        images, maps = self.export_generator()(z, labels, training=False, return_attention=True)
        return (keras.ops.convert_to_numpy(images),
                {r: keras.ops.convert_to_numpy(m) for r, m in maps.items()})
