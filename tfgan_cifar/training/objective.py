"""The GAN training step, written once for every Keras backend.

A step is a pure function of the training state, a `TrainState`: a NamedTuple of arrays and
lists and dicts of arrays, so a pytree for `jax.tree_util`, `keras.tree` and `tf.nest` alike.
A step returns a new one (`_replace`); the TensorFlow backend holds its parts in variables.

The networks run through `stateless_call`, so the same code serves TensorFlow and JAX. A backend
supplies only differentiation and the optimizer update (a `BackendOps`), compilation, the random
draws' samplers and where the state lives between steps.
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import keras
from keras import ops

from tfgan_cifar import precision
from tfgan_cifar.metric_schema import step_metric_names
from tfgan_cifar.nn import build_models
from tfgan_cifar.nn.base import nested_layers
from tfgan_cifar.training import replay
from tfgan_cifar.training.augment import augment, draw_count
from tfgan_cifar.training.losses import (LOSSES, classification_accuracy, classification_loss,
                                         discriminator_accuracy, gradient_penalty, interpolate)
from tfgan_cifar.training.optimizers import make_optimizers


class TrainState(NamedTuple):
    """The training state. A backend's checkpoint names each value by its part (the field's
    name) and its position in it: "d/3" is D's fourth trainable value."""

    g: list  # G's trainable values
    g_nt: list  # G's non-trainable values (batch-norm statistics, spectral-norm vectors)
    d: list  # D's trainable values
    d_nt: list  # D's non-trainable values
    g_opt: list  # G's optimizer variables (slots, iterations, learning rate)
    d_opt: list  # D's
    loss_scale: dict  # {"g": [...], "d": [...]}: the loss-scale variables under
    #                   mixed_float16 ({} otherwise; see `precision`)
    ema: list  # EMA of G's trainable values ([] without --ema_decay)
    replay: Any  # the replay buffer, a `replay.ReplayBuffer` (() without --replay_size)
    sums: dict  # {metric: sum of its per-step values}, on the device until the loop reads it
    count: Any  # how many steps `sums` holds (float32 scalar)
    step: Any  # generator steps taken (integer scalar)
    diverged_at: Any  # the first step with a non-finite loss or value of the state (0: none
    #                   yet; int32 scalar)


# The parts of the state whose values must stay finite (see `GANObjective.step`).
FINITE_PARTS = ("g", "g_nt", "d", "d_nt", "g_opt", "d_opt", "loss_scale", "ema", "replay")


class DiscriminatorStep(NamedTuple):
    """What one D step's objective yields besides its loss (see
    `GANObjective.discriminator_objective`)."""

    d_nt: list  # D's non-trainable values after it saw the reals and the fakes
    g_nt: list  # G's, after it made the fakes
    fake: Any  # the fresh fakes, before replay and augmentation (they go into the buffer)
    real_logits: Any  # D's logits on the reals
    fake_logits: Any  # and on the fakes it saw
    metrics: dict  # {"d_loss", ...}: see `discriminator_total`; "replayed" with replay


class BackendOps(NamedTuple):
    """What the step needs from a backend, for `fn(x, *args) -> (scalar, aux)`:

    value_and_grad(fn)(x, *args) -> ((scalar, aux), d scalar / d x)
    grad(fn)(x, *args) -> (d scalar / d x, aux), itself differentiable (the gradient penalty)
    apply(part, optimizer, grads, params, optimizer_values) -> (params, optimizer_values):
        one optimizer update of the network whose state part is `part` ("g" or "d")
    gather(x) -> x of every replica, concatenated along the batch axis in replica order (a
        step that runs once per replica on its slice; default: x itself)
    """

    value_and_grad: Callable
    grad: Callable
    apply: Callable
    gather: Callable = lambda x: x


class Networks(NamedTuple):
    """The built networks and optimizers of a run."""

    generator: keras.Model  # trained, under the --precision policy
    discriminator: keras.Model  # likewise
    g_optimizer: keras.optimizers.Optimizer  # loss-scaled under mixed_float16
    d_optimizer: keras.optimizers.Optimizer
    ema_generator: Optional[keras.Model]  # float32, holds the EMA weights; None without EMA
    sampler: keras.Model  # the float32 G that samples and is exported (see `sampling_weights`)


def build_networks(config):
    """Seeded, built `Networks` for `config`."""
    keras.utils.set_random_seed(config.seed)
    with precision.dtype_policy(config.precision):
        generator, discriminator = build_models(config)
        generator.build_weights()
        discriminator.build_weights()
    g_optimizer, d_optimizer = (precision.loss_scaled(optimizer, config.precision)
                                for optimizer in make_optimizers(config))
    # Slots are created lazily in Keras 3: build them so a checkpoint restores into them.
    g_optimizer.build(generator.trainable_variables)
    d_optimizer.build(discriminator.trainable_variables)
    ema_generator = float32_copy(config, generator) if config.ema_decay else None
    sampler = ema_generator or generator
    if config.precision != "float32" and not ema_generator:
        sampler = float32_copy(config, generator)
    return Networks(generator, discriminator, g_optimizer, d_optimizer, ema_generator, sampler)


def float32_copy(config, generator):
    """A float32 generator of `config`'s architecture holding `generator`'s current weights.
    A mixed-precision policy changes only how layers compute, so the variables match."""
    with precision.dtype_policy("float32"):  # it samples alone: no synchronised batch norm
        copy = build_models(dataclasses.replace(config, sync_bn=False))[0].build_weights()
    for target, source in zip(copy.variables, generator.variables):
        target.assign(source)
    return copy


def draw_specs(config):
    """{name: (shape, distribution, high)} of the random numbers one training step uses.

    One step is n_critic D updates and one G update: z and fake labels for each of them (G's,
    "g_z" and "g_labels", of --g_batch_size images), a mixing weight per image for the gradient
    penalty, uniform buffer positions for replay and, with --augment, DiffAugment's uniforms
    for each batch D sees: the reals and the fakes of each D update, and G's fakes. The batch
    axis of every draw is the second.
    """
    n, b, gb = config.n_critic, config.batch_size, config.g_batch_size
    specs = {"z": ((n, b, config.z_dim), "normal", None),
             "fake_labels": ((n, b), "integers", config.num_classes),
             "g_z": ((1, gb, config.z_dim), "normal", None),
             "g_labels": ((1, gb), "integers", config.num_classes)}
    if config.gp_weight:
        specs["gp_epsilon"] = ((n, b), "uniform", None)
    if config.replay_size:
        specs["replay_position"] = ((n, b), "uniform", None)
    if config.augment:
        k = draw_count(config.augment)
        specs["augment_real"] = ((n, b, k), "uniform", None)
        specs["augment_fake"] = ((n, b, k), "uniform", None)
        specs["g_augment"] = ((1, gb, k), "uniform", None)
    return specs


def draw(config, normal, uniform, integers):
    """The draws of one step from a backend's samplers: normal(shape), uniform(shape) in
    [0, 1), integers(shape, high) in [0, high)."""
    draws = {}
    for name, (shape, distribution, high) in draw_specs(config).items():
        if distribution == "normal":
            draws[name] = normal(shape)
        elif distribution == "uniform":
            draws[name] = uniform(shape)
        else:
            draws[name] = integers(shape, high)
    return draws


def discriminator_total(config, loss, real_logits, fake_logits, class_logits=None, labels=None,
                        penalty=None):
    """D's total loss J_D + aux_weight * J_C + gp_weight * GP, and its parts as metrics.

    `d_loss` in the metrics is the GAN part J_D alone, comparable across studies.
    """
    d_loss = loss.d_loss(real_logits, fake_logits)
    total, metrics = d_loss, {"d_loss": d_loss}
    if class_logits is not None:
        cls_loss = classification_loss(class_logits, labels)
        total = total + config.aux_weight * cls_loss
        metrics.update(cls_loss=cls_loss, cls_acc=classification_accuracy(class_logits, labels))
    if penalty is not None:
        total = total + config.gp_weight * penalty
        metrics["gp"] = penalty
    return total, metrics


def moving_statistics(model):
    """[(index in model.non_trainable_variables, momentum)] of every batch norm's moving mean
    and moving variance, in layer order."""
    positions = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    return [(positions[id(variable)], layer.momentum)
            for layer in nested_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)
            for variable in (layer.moving_mean, layer.moving_variance)]


def ema_decay_at(decay, step):
    """The EMA decay after `step` updates: min(decay, (1 + step) / (10 + step)), so that the
    average forgets the random initial weights within the first few hundred steps."""
    step = ops.cast(step, "float32")
    return ops.minimum(decay, (1.0 + step) / (10.0 + step))


def all_finite(tensors):
    """Whether every element of every tensor is finite (a scalar boolean)."""
    return ops.all(ops.stack([ops.all(ops.isfinite(x)) for x in tensors]))


def tree_cast(tree, dtype):
    """Every tensor of a tuple (or a single tensor) cast to `dtype`."""
    if isinstance(tree, tuple):
        return tuple(ops.cast(x, dtype) for x in tree)
    return ops.cast(tree, dtype)


def values(variables):
    """The current values of a list of Keras variables."""
    return [v.value for v in variables]


class GANObjective:
    """D's and G's objectives and the whole training step, over the values of the state."""

    def __init__(self, config, networks, backend_ops):
        self.config = config
        self.generator, self.discriminator = networks.generator, networks.discriminator
        self.g_optimizer, self.d_optimizer = networks.g_optimizer, networks.d_optimizer
        self.sampler = networks.sampler
        self.ops = backend_ops
        self.loss = LOSSES[config.loss]
        self.metric_names = step_metric_names(config)
        self.loss_scaled = precision.needs_loss_scaling(config.precision)
        self.sampler_statistics = moving_statistics(self.sampler)

    def model_variables(self, ema_generator=None):
        """{part: Keras variables} for the parts of the `TrainState` that are the networks' and
        optimizers' variables: g, g_nt, d, d_nt, g_opt, d_opt, loss_scale and ema."""
        G, D = self.generator, self.discriminator
        optimizers = {"g": self.g_optimizer, "d": self.d_optimizer}
        return {
            "g": G.trainable_variables, "g_nt": G.non_trainable_variables,
            "d": D.trainable_variables, "d_nt": D.non_trainable_variables,
            **{f"{part}_opt": precision.split_variables(optimizer)[1]
               for part, optimizer in optimizers.items()},
            "loss_scale": {part: precision.split_variables(optimizer)[0]
                           for part, optimizer in optimizers.items()}
            if self.loss_scaled else {},
            "ema": ema_generator.trainable_variables if ema_generator else [],
        }

    def initial_state(self, ema_generator=None):
        """The `TrainState` of an untrained run, from the networks' and optimizers'
        variables."""
        size = self.config.replay_size
        variables = self.model_variables(ema_generator)
        return TrainState(
            **{part: values(variables[part])
               for part in ("g", "g_nt", "d", "d_nt", "g_opt", "d_opt")},
            loss_scale={part: values(scale) for part, scale in variables["loss_scale"].items()},
            # Copies: a JAX step donates the state, which must not hold one buffer twice.
            ema=[ops.copy(v) for v in values(variables["ema"])],
            replay=replay.empty(size) if size else (),
            sums={name: ops.zeros((), "float32") for name in self.metric_names},
            count=ops.zeros((), "float32"),
            step=ops.zeros((), "int32"),
            diverged_at=ops.zeros((), "int32"),
        )

    # ---- the networks, with float32 outputs ------------------------------------------------

    def fake_images(self, g, g_nt, z, labels):
        """(G's images as float32, new g_nt), in training mode."""
        images, g_nt = self.generator.stateless_call(g, g_nt, z, labels, training=True)
        return ops.cast(images, "float32"), g_nt

    def critic(self, d, d_nt, images, labels, return_class_logits=False, training=True):
        """(D's logits as float32, or (logits, class logits), new d_nt): the losses are
        computed in float32 whatever the precision of the layers."""
        outputs, d_nt = self.discriminator.stateless_call(
            d, d_nt, images, labels, training=training, return_class_logits=return_class_logits)
        return tree_cast(outputs, "float32"), d_nt

    # ---- objectives ----------------------------------------------------------------------

    def gradient_penalty(self, d, d_nt, real, fake, labels, epsilon, training=True):
        """WGAN-GP of D at random interpolates of real and fake images. D's non-trainable
        state is left as it was: the interpolates are not data its statistics should see."""
        def critic_sum(x_hat):
            critic, _ = self.critic(d, d_nt, x_hat, labels, training=training)
            return ops.sum(critic), ()

        gradients, _ = self.ops.grad(critic_sum)(interpolate(real, fake, epsilon))
        return gradient_penalty(gradients)

    def discriminator_objective(self, d, d_nt, g, g_nt, images, labels, z, fake_labels,
                                buffer, step_draws):
        """D's total loss for one D step (see `discriminator_total`): (total,
        `DiscriminatorStep`). `buffer` is the state's replay buffer."""
        config = self.config
        fake, g_nt = self.fake_images(g, g_nt, z, fake_labels)
        shown, shown_labels = fake, fake_labels
        metrics = {}
        if config.replay_size:
            shown, shown_labels, replayed = replay.mix(
                fake, fake_labels, buffer.images, buffer.labels, buffer.filled,
                step_draws["replay_position"],
                replay.replay_count(config.replay_fraction, fake.shape[0]))
            metrics["replayed"] = ops.mean(replayed)
        if config.augment:
            # Each batch gets its own draws, as in the authors' code. The gradient penalty below
            # is then taken at interpolates of the augmented images, where D looks: so do the
            # authors' CIFAR runs, whose R1 is D's gradient at the augmented reals
            # (`ns_r1_DiffAugment`, DiffAugment-stylegan2/training/loss.py).
            images = augment(images, config.augment, step_draws["augment_real"])
            shown = augment(shown, config.augment, step_draws["augment_fake"])
        if config.class_head:
            (real_logits, class_logits), d_nt = self.critic(d, d_nt, images, labels,
                                                            return_class_logits=True)
        else:
            real_logits, d_nt = self.critic(d, d_nt, images, labels)
            class_logits = None
        fake_logits, d_nt = self.critic(d, d_nt, shown, shown_labels)
        penalty = None
        if config.gp_weight:
            penalty = self.gradient_penalty(d, d_nt, images, shown, labels,
                                            step_draws["gp_epsilon"])
        total, d_metrics = discriminator_total(config, self.loss, real_logits, fake_logits,
                                               class_logits, labels, penalty)
        return total, DiscriminatorStep(d_nt, g_nt, fake, real_logits, fake_logits,
                                        {**metrics, **d_metrics})

    def generator_objective(self, g, g_nt, d, d_nt, z, fake_labels, augment_draws=None):
        """G's loss on one batch: (loss, (g_nt, d_nt)). With --augment, D sees the batch
        augmented by `augment_draws`."""
        fake, g_nt = self.fake_images(g, g_nt, z, fake_labels)
        if self.config.augment:
            fake = augment(fake, self.config.augment, augment_draws)
        fake_logits, d_nt = self.critic(d, d_nt, fake, fake_labels)
        return self.loss.g_loss(fake_logits), (g_nt, d_nt)

    # ---- the step ------------------------------------------------------------------------

    def update(self, state, images, labels, draws):
        """One G step after n_critic D steps, on given batches and random draws.

        images/labels: [n_critic, B, ...]; draws: see `draw_specs`.
        Returns (new `TrainState`, {metric: value}).
        """
        config = self.config
        z, fake_labels = draws["z"], draws["fake_labels"]
        for i in range(config.n_critic):
            step_draws = {name: draws[name][i] for name in ("replay_position", "gp_epsilon",
                                                            "augment_real", "augment_fake")
                          if name in draws}
            _, d_step, grads = self._loss_and_gradients(
                self.discriminator_objective, state.d, self._loss_scale(state, "d"), state.d_nt,
                state.g, state.g_nt, images[i], labels[i], z[i], fake_labels[i], state.replay,
                step_draws)
            state = self._apply(state._replace(d_nt=d_step.d_nt, g_nt=d_step.g_nt), "d",
                                self.d_optimizer, grads)
            if config.replay_size:
                state = state._replace(replay=replay.write(
                    state.replay, self.ops.gather(d_step.fake), self.ops.gather(fake_labels[i]),
                    config.replay_size))
        g_loss, (g_nt, d_nt), grads = self._loss_and_gradients(
            self.generator_objective, state.g, self._loss_scale(state, "g"), state.g_nt,
            state.d, state.d_nt, draws["g_z"][0], draws["g_labels"][0],
            draws["g_augment"][0] if config.augment else None)
        state = self._apply(state._replace(g_nt=g_nt, d_nt=d_nt), "g", self.g_optimizer, grads)
        real_acc, fake_acc = discriminator_accuracy(self.loss, d_step.real_logits,
                                                    d_step.fake_logits)
        return state, {**d_step.metrics, "g_loss": g_loss, "d_real_acc": real_acc,
                       "d_fake_acc": fake_acc}

    def _loss_and_gradients(self, objective, x, scale, *args):
        """(loss, aux, gradients) of `objective(x, *args) -> (loss, aux)` with respect to `x`.
        Under loss scaling (`scale` not None) the gradients are those of `scale` * loss."""
        def scaled(x, scale, *args):
            loss, aux = objective(x, *args)
            return (loss if scale is None else loss * scale), (loss, aux)

        (_, (loss, aux)), gradients = self.ops.value_and_grad(scaled)(x, scale, *args)
        return loss, aux, gradients

    def _loss_scale(self, state, part):
        """The current loss scale of network `part`, or None without loss scaling."""
        if not self.loss_scaled:
            return None
        optimizer = self.g_optimizer if part == "g" else self.d_optimizer
        return state.loss_scale[part][precision.scale_index(optimizer)]

    def _apply(self, state, part, optimizer, grads):
        """The state after one optimizer update of network `part` ("g" or "d"): its values
        (`state.g` or `state.d`), optimizer variables and loss scale."""
        own = state.loss_scale[part] if self.loss_scaled else []
        optimizer_part = f"{part}_opt"
        params, optimizer_values = self.ops.apply(
            part, optimizer, grads, getattr(state, part),
            list(own) + list(getattr(state, optimizer_part)))
        state = state._replace(**{part: params,
                                  optimizer_part: list(optimizer_values[len(own):])})
        if self.loss_scaled:
            state = state._replace(loss_scale={**state.loss_scale,
                                               part: list(optimizer_values[:len(own)])})
        return state

    def step(self, state, images, labels, draws):
        """`update`, then the EMA of G, the metric sums and the step counter: the new state."""
        state, metrics = self.update(state, images, labels, draws)
        if self.config.ema_decay:
            decay = ema_decay_at(self.config.ema_decay, state.step)
            state = state._replace(ema=[decay * e + (1.0 - decay) * w
                                        for e, w in zip(state.ema, state.g)])
        state = state._replace(
            sums={name: state.sums[name] + ops.cast(metrics[name], "float32")
                  for name in self.metric_names},
            count=state.count + 1.0, step=state.step + 1)
        # Every value of the state, not only the weights: batch-norm statistics, spectral-norm
        # vectors, EMA, optimizer slots and replayed images can overflow while the weights
        # stay finite, and a checkpoint of them would not resume.
        finite = all_finite([metrics[name] for name in self.metric_names]
                            + keras.tree.flatten([getattr(state, part) for part in FINITE_PARTS]))
        return state._replace(diverged_at=ops.where(
            ops.logical_and(state.diverged_at == 0, ops.logical_not(finite)),
            ops.cast(state.step, state.diverged_at.dtype), state.diverged_at))

    def sampling_weights(self, g, g_nt, ema):
        """(trainable, non-trainable) values of the G that samples and is exported, from the
        state's parts: the EMA weights with --ema_decay, with G's batch-norm statistics and
        spectral-norm vectors (the trainer then makes both the EMA weights' own)."""
        return (ema if self.config.ema_decay else g), g_nt

    def batch_statistics(self, g, g_nt, z, labels):
        """[mean, variance, ...] of every batch norm of the sampling G on one batch of its own
        samples in training mode (pure): the statistics of BigGAN's "standing statistics"."""
        stats = self.sampler_statistics
        zeroed = list(g_nt)
        for index, _ in stats:
            zeroed[index] = ops.zeros_like(zeroed[index])
        # From zero, one update leaves (1 - momentum) x the batch's statistic.
        _, updated = self.sampler.stateless_call(g, zeroed, z, labels, training=True)
        return [updated[index] / (1.0 - momentum) for index, momentum in stats]

    def with_statistics(self, g_nt, statistics):
        """`g_nt` with the batch norms' moving statistics replaced by `statistics` (in the
        order of `batch_statistics`)."""
        g_nt = list(g_nt)
        for (index, _), value in zip(self.sampler_statistics, statistics):
            g_nt[index] = value
        return g_nt

    def generate(self, g, g_nt, z, labels):
        """Images in [-1, 1] from the float32 sampling G in inference mode (pure)."""
        return self.sampler.stateless_call(g, g_nt, z, labels, training=False)[0]

    def class_logits(self, d, d_nt, images):
        """The classifier head's logits for images in [-1, 1] (pure). D normalises with the
        statistics of `images` themselves, as in the step: its moving statistics mostly hold
        those of fake batches. The updated statistics are dropped."""
        labels = ops.zeros((ops.shape(images)[0],), "int32")
        return ops.cast(self.discriminator.stateless_call(
            d, d_nt, images, labels, training=True, return_class_logits=True)[0][1], "float32")
