"""The reference classifier's Lookahead callback, run the same way on either Keras backend
(test_jax_backend compares the two): inside Keras's `fit`, and in the package's own loop
(`train_epochs`: train_on_batch on TrainingBatches)."""

import keras
import numpy as np

from tfgan_cifar import reference_classifier
from tfgan_cifar.reference_classifier import recipe


def _seeded_model(rng):
    model = reference_classifier.build_classifier(3, width=4)
    for variable in model.weights:
        values = rng.normal(0.0, 0.2, variable.shape)
        if "moving_variance" in variable.path:
            values = np.abs(values) + 0.5
        variable.assign(values.astype(np.float32))
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    return model


def _lookahead():
    return recipe.Lookahead(total_steps=8, start=0.0, every=2, decay=0.9, power=0.0)


def _weights(model):
    return [keras.ops.convert_to_numpy(v).tolist() for v in model.weights]


def run():
    """Two width-4 classifiers from seeded weights, 8 SGD steps each with averaging every 2
    steps: one in `fit` (where an in-place average once changed JAX's weights), one for two
    epochs of augmented batches in `train_epochs`. Returns their weights and the loop's
    epoch losses as nested lists."""
    rng = np.random.default_rng(0)
    model = _seeded_model(rng)
    x = rng.uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0, callbacks=[_lookahead()])
    result = {"fit_weights": _weights(model)}

    model = _seeded_model(rng)
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    onehot = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    batches = recipe.TrainingBatches(images, onehot, batch_size=2, seed=0, noise=0.1)
    losses = []
    recipe.train_epochs(model, batches, 2, _lookahead(),
                                on_epoch=lambda epoch, logs: losses.append(logs["loss"]))
    return {**result, "loop_weights": _weights(model), "loop_losses": losses}
