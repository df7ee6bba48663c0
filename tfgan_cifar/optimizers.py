"""The two optimizers of a run, one per network."""

import keras


def make_optimizers(config):
    """Returns (g_optimizer, d_optimizer): Adam with the config's rates and betas."""
    def adam(learning_rate, name):
        return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=config.beta1,
                                     beta_2=config.beta2, name=name)

    return adam(config.lr_g, "g_optimizer"), adam(config.lr_d, "d_optimizer")
