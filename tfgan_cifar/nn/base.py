"""Shared plumbing of the generators and discriminators: call signature and serialisation.

Generators are called as `generator(z, labels, training=...)` and return images in [-1, 1];
discriminators as `discriminator(images, labels, training=...)` and return one logit per image.
Unconditional models accept and ignore `labels`, so every caller can pass them.
"""

import keras
from keras import ops


def nested_layers(layer):
    """`layer` and every layer inside it, depth first in the order they were assigned, each
    once: a model's `layers`, and a layer's public attributes that hold layers (alone or in
    lists, tuples or dicts). Keras 3 has no public recursive equivalent."""
    found, stack = {}, [layer]
    while stack:
        current = stack.pop()
        if id(current) in found:
            continue
        found[id(current)] = current
        if isinstance(current, keras.Model):
            children = list(current.layers)
        else:
            children = []
            for name, value in vars(current).items():
                if name.startswith("_"):
                    continue
                values = (value.values() if isinstance(value, dict)
                          else value if isinstance(value, (list, tuple)) else [value])
                children += [v for v in values if isinstance(v, keras.layers.Layer)]
        stack.extend(reversed(children))
    return list(found.values())


class GANModel(keras.Model):
    """Base of every network: keeps its constructor arguments for `get_config`.

    Subclasses call `super().__init__(config_dict, **kwargs)` with their own arguments, and
    implement `dummy_inputs(batch)` so that a `.keras` file can rebuild the weights.
    """

    def __init__(self, arguments, **kwargs):
        super().__init__(**kwargs)
        self._arguments = dict(arguments)

    def get_config(self):
        return {**super().get_config(), **self._arguments}

    def dummy_inputs(self, batch=2):
        raise NotImplementedError

    def build_weights(self):
        """Creates every weight by calling the model once on dummy inputs.

        Under JAX the call is symbolic (shapes only): an eager call there compiles every op
        on its own, which is far slower. Under TensorFlow the eager call is the faster one
        (docs/performance.md). The weights are the same either way.
        """
        if not self.built:
            inputs = self.dummy_inputs()
            if keras.backend.backend() == "jax":
                inputs = [keras.KerasTensor(tuple(x.shape), x.dtype) for x in inputs]
            self(*inputs, training=False, **self.build_call_options())
        return self

    def build_call_options(self):
        """Keyword arguments of the call that `build_weights` makes, beyond `training`."""
        return {}

    def get_build_config(self):
        return {"dummy_inputs": True}  # a non-empty config makes Keras call build_from_config

    def build_from_config(self, config):
        self.build_weights()


class Generator(GANModel):
    """Base of generators: `call(z, labels=None, training=False)` -> images in [-1, 1]."""

    def dummy_inputs(self, batch=2):
        return ops.zeros((batch, self.z_dim)), ops.zeros((batch,), dtype="int32")


class Discriminator(GANModel):
    """Base of discriminators: `call(images, labels=None, training=False)` -> logits [N].

    Built with `aux_classifier=True`, `call(..., return_class_logits=True)` returns
    (logits [N], class logits [N, num_classes]) from a head on an intermediate feature map
    (each discriminator's docstring says which).
    """

    @property
    def has_classifier(self):
        return self.classifier is not None

    def build_call_options(self):
        """The build call asks for class logits, so the classifier head is built too."""
        return {"return_class_logits": self.has_classifier}

    def with_class_logits(self, logits, head_features, return_class_logits):
        """`logits`, or (logits, class logits of the head on `head_features`) when they are
        asked for."""
        if not return_class_logits:
            return logits
        if self.classifier is None:
            raise ValueError("this discriminator has no classifier head (aux_classifier=False)")
        return logits, self.classifier(head_features)

    def dummy_inputs(self, batch=2):
        return ops.zeros((batch, 32, 32, 3)), ops.zeros((batch,), dtype="int32")


def batch_norm(synchronized=False, **kwargs):
    """The networks' batch norm (momentum 0.9, epsilon 1e-5). `synchronized` computes the
    batch statistics over every replica of a tf.distribute strategy; see `synchronizable`."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                           synchronized=synchronizable(synchronized), **kwargs)


def synchronizable(synchronized):
    """Keras synchronises batch norm on TensorFlow only; under JAX a sharded step's batch
    statistics are global anyway, so the flag is dropped there (a model saved with it loads)."""
    return synchronized and keras.backend.backend() == "tensorflow"


def projection(logits, features, embedding, labels, training):
    """Adds the projection term <embed(y), phi(x)> of Miyato & Koyama 2018 to the logits, in
    float32 (`embedding` is a float32 layer)."""
    embedded = ops.cast(embedding(labels, training=training), "float32")
    return ops.cast(logits, "float32") + ops.sum(embedded * ops.cast(features, "float32"), axis=-1)


def leaky_relu(x, negative_slope):
    """Leaky ReLU whose gradient at exactly 0 is `negative_slope` on every backend.

    `ops.leaky_relu`'s is not: TensorFlow's kernel takes the slope there, JAX's `x >= 0` takes
    1. Zeros reach the activations whenever DiffAugment pads or cuts out, so the two backends'
    steps would differ.
    """
    return ops.where(x > 0, x, negative_slope * x)
