"""The kernel initialisers of --init, drawn with NumPy.

Keras's initialisers draw with backend ops. Under JAX each of those ops compiles on its own for
every kernel shape, so building a network took seconds of compilation before its first step
(docs/performance.md). These draw the same distributions as Keras's namesakes from a NumPy
generator seeded with the initialiser's integer seed: no compilation, and the same values on
every backend for the same seed.
"""

import math

import keras
import numpy as np
from keras import ops

_SERIALIZABLE = "tfgan_cifar"


def _fans(shape):
    """Keras's fan-in and fan-out of a kernel of `shape` (receptive field times channels)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class _DrawnWithNumPy:
    """Mixin: `__call__` draws with NumPy (see the module docstring); `draw(rng, shape)` says
    what. A `keras.random.SeedGenerator` seed (a stream, not one draw) keeps Keras's own."""

    def __call__(self, shape, dtype=None):
        if not isinstance(self.seed, int):
            return super().__call__(shape, dtype=dtype)
        values = self.draw(np.random.default_rng(self.seed), tuple(int(d) for d in shape))
        return ops.convert_to_tensor(values.astype(dtype or keras.config.floatx()))


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class Orthogonal(_DrawnWithNumPy, keras.initializers.Orthogonal):
    """Keras's `Orthogonal`: the Q of a Gaussian matrix's QR, signs fixed by R's diagonal."""

    def draw(self, rng, shape):
        if len(shape) < 2:
            raise ValueError(f"an orthogonal kernel needs two dimensions or more, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
        q *= np.sign(np.diag(r))
        return self.gain * (q.T if rows < cols else q).reshape(shape)


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class GlorotUniform(_DrawnWithNumPy, keras.initializers.GlorotUniform):
    """Keras's `GlorotUniform`: uniform in ±sqrt(6 / (fan_in + fan_out))."""

    def draw(self, rng, shape):
        limit = math.sqrt(6.0 / sum(_fans(shape)))
        return rng.uniform(-limit, limit, shape)


@keras.saving.register_keras_serializable(_SERIALIZABLE)
class RandomNormal(_DrawnWithNumPy, keras.initializers.RandomNormal):
    """Keras's `RandomNormal(mean, stddev)`."""

    def draw(self, rng, shape):
        return rng.normal(self.mean, self.stddev, shape)


# By --init. A seeded initialiser draws the same values at every call, so each layer gets a
# new one (made after `keras.utils.set_random_seed`: --seed fixes them).
INITIALIZERS = {
    "orthogonal": Orthogonal,  # BigGAN, StudioGAN
    "glorot": GlorotUniform,  # Keras's default
    "normal": lambda: RandomNormal(stddev=0.02),  # the DCGAN paper's
}


def initializer(name):
    """A new kernel initialiser of kind `name` (a key of INITIALIZERS)."""
    if name not in INITIALIZERS:
        raise ValueError(f"init must be one of {tuple(INITIALIZERS)}, got {name!r}")
    return INITIALIZERS[name]()
