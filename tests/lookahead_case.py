"""One small `fit` of the reference classifier with its Lookahead callback, run the same way on
either Keras backend (test_jax_backend compares the two)."""

import keras
import numpy as np

from tfgan_cifar.metrics import classifier as classifier_lib


def run():
    """Trains a width-4 classifier from seeded weights for 8 SGD steps, averaging every 2;
    returns its weights as nested lists."""
    rng = np.random.default_rng(0)
    model = classifier_lib.build_classifier(3, width=4)
    for variable in model.weights:
        values = rng.normal(0.0, 0.2, variable.shape)
        if "moving_variance" in variable.path:
            values = np.abs(values) + 0.5
        variable.assign(values.astype(np.float32))
    x = rng.uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    lookahead = classifier_lib.Lookahead(total_steps=8, start=0.0, every=2, decay=0.9,
                                         power=0.0)
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0, callbacks=[lookahead])
    return [keras.ops.convert_to_numpy(v).tolist() for v in model.weights]
