"""What the TensorFlow and JAX trainers share: the networks, the random draws of a step, the
metrics it reports and the discriminator's objective (GAN loss + classifier head + penalty).

The trainers differ only in how they differentiate, compile and keep state.
"""

import keras
import numpy as np

from tfgan_cifar.nn import build_models
from tfgan_cifar.training.losses import classification_accuracy, classification_loss
from tfgan_cifar.training.optimizers import make_optimizers

BASE_METRICS = ("g_loss", "d_loss", "d_real_acc", "d_fake_acc")


def build_networks(config):
    """Seeded, built (G, D, G's optimizer, D's optimizer, EMA copy of G or None)."""
    keras.utils.set_random_seed(config.seed)
    generator, discriminator = build_models(config)
    generator.build_weights()
    discriminator.build_weights()
    g_optimizer, d_optimizer = make_optimizers(config)
    # Slots are created lazily in Keras 3: build them so a checkpoint restores into them.
    g_optimizer.build(generator.trainable_variables)
    d_optimizer.build(discriminator.trainable_variables)
    ema_generator = None
    if config.ema_decay:
        ema_generator = build_models(config)[0].build_weights()
        for ema, variable in zip(ema_generator.variables, generator.variables):
            ema.assign(variable)
    return generator, discriminator, g_optimizer, d_optimizer, ema_generator


def metric_names(config):
    """Names of the per-step metrics: the GAN ones, then those of the enabled studies."""
    names = list(BASE_METRICS)
    if config.aux_classifier:
        names += ["cls_loss", "cls_acc"]
    if config.gp_weight:
        names.append("gp")
    if config.replay_size:
        names.append("replayed")
    return tuple(names)


def draw_specs(config):
    """{name: (shape, distribution, high)} of the random numbers one training step uses.

    One step is n_critic D updates and one G update: z and fake labels for each of them, a
    mixing weight per image for the gradient penalty and buffer rows for replay.
    """
    n, b = config.n_critic, config.batch_size
    specs = {"z": ((n + 1, b, config.z_dim), "normal", None),
             "fake_labels": ((n + 1, b), "integers", config.num_classes)}
    if config.gp_weight:
        specs["gp_epsilon"] = ((n, b), "uniform", None)
    if config.replay_size:
        specs["replay_index"] = ((n, b), "integers", config.replay_size)
    return specs


def numpy_draws(config, rng):
    """The draws of one step from a NumPy generator (for tests and cross-backend checks)."""
    draws = {}
    for name, (shape, distribution, high) in draw_specs(config).items():
        if distribution == "normal":
            draws[name] = rng.standard_normal(shape).astype(np.float32)
        elif distribution == "uniform":
            draws[name] = rng.uniform(0, 1, shape).astype(np.float32)
        else:
            draws[name] = rng.integers(0, high, shape).astype(np.int32)
    return draws


def discriminator_objective(config, loss, real_logits, fake_logits, class_logits=None,
                            labels=None, penalty=None):
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
