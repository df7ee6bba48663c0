"""The two optimizers of a run, one per network, picked by name, and their learning rates.

With --lr_decay=linear the rate falls linearly to 0 at --steps. The schedule reads the
optimizer's own iteration count, which is part of the checkpointed optimizer state, so a
resumed run continues the same schedule. D takes n_critic updates per step, so its schedule
runs over n_critic x --steps iterations.
"""

import keras

from tfgan_cifar import config as config_lib

OPTIMIZERS = config_lib.OPTIMIZERS.names()


def make_optimizer(name, learning_rate, beta1, beta2, label):
    """Adam(lr, beta1, beta2), RMSprop(lr) or SGD(lr, momentum=beta1) named `label`."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1, beta_2=beta2,
                                     name=label)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate, name=label)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=beta1, name=label)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")


def updates_per_step(config, part):
    """Optimizer updates of network `part` ("g" or "d") per generator step."""
    return config.n_critic if part == "d" else 1


def schedule(config, part):
    """The learning rate of network `part`: a float, or a Keras schedule of its iterations."""
    rate = config.lr_g if part == "g" else config.lr_d
    if config.lr_decay == "none":
        return rate
    return keras.optimizers.schedules.PolynomialDecay(
        rate, decay_steps=config.steps * updates_per_step(config, part), end_learning_rate=0.0,
        power=1.0)


def learning_rate(config, part, step):
    """The learning rate of network `part` after `step` generator steps."""
    rate = schedule(config, part)
    if isinstance(rate, float):
        return rate
    return float(rate(step * updates_per_step(config, part)))


def make_optimizers(config):
    """Returns (g_optimizer, d_optimizer) of `config.optimizer` with their own rates."""
    return tuple(make_optimizer(config.optimizer, schedule(config, part), config.beta1,
                                config.beta2, f"{part}_optimizer") for part in ("g", "d"))
