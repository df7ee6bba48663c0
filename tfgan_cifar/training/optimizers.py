"""The two optimizers of a run, one per network, picked by name."""

import keras

OPTIMIZERS = ("adam", "rmsprop", "sgd")


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


def make_optimizers(config):
    """Returns (g_optimizer, d_optimizer) of `config.optimizer` with their own rates."""
    return (make_optimizer(config.optimizer, config.lr_g, config.beta1, config.beta2,
                           "g_optimizer"),
            make_optimizer(config.optimizer, config.lr_d, config.beta1, config.beta2,
                           "d_optimizer"))
