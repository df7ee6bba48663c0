"""The JAX backend (KERAS_BACKEND=jax): one jit-compiled, stateless step; no TensorFlow needed.

The whole state (see `objective`), plus the random key, is one pytree threaded through
`jax.jit` and donated to it. CIFAR-10 lives on the device as uint8; each step gathers its
batches there, in an order fixed by (seed, epoch) like the TensorFlow pipeline, and flips them.
Checkpoints are `.npz` files of the state's leaves named by their path in the state ("d/3" is
D's fourth trainable value), written atomically.
"""

import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from tfgan_cifar.atomic import replacing
from tfgan_cifar.training import objective
from tfgan_cifar.training.trainer import Trainer

def _apply(part, optimizer, grads, params, optimizer_values):
    params, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, params)
    return params, optimizer_values


def _named_leaves(state):
    """[("d/3", array), ("replay/images", array), ...]: the state's leaves by path, the names a
    checkpoint stores them under (D's i-th trainable value is "d/i")."""
    return [("/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path), leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]]


class JaxTrainer(Trainer):
    """A run on JAX; see `trainer.Trainer`."""

    backend = "jax"

    def __init__(self, config, data):
        super().__init__(config, objective.BackendOps(
            lambda f: jax.value_and_grad(f, has_aux=True),
            lambda f: jax.grad(f, has_aux=True), _apply))
        self.images = jnp.asarray(data.images)
        self.labels = jnp.asarray(data.labels, jnp.int32)
        self.state = {**self.objective.initial_state(self.ema_generator),
                      "key": jax.random.key_data(jax.random.key(config.seed))}
        self._train_step = jax.jit(self._step, donate_argnums=0)

    def compile(self, function):
        return jax.jit(function)

    def read(self, part):
        return self.state[part]

    def reset_metrics(self):
        self.state = {**self.state, "sums": jax.tree.map(jnp.zeros_like, self.state["sums"]),
                      "count": jnp.zeros((), jnp.float32)}

    @property
    def device(self):
        device = jax.devices()[0]
        return f"{device.platform.upper()} ({device.device_kind})"

    # ---- checkpoints -----------------------------------------------------------------------

    def save(self):
        """Writes checkpoints/ckpt-<step>.npz atomically and keeps the newest few."""
        path = os.path.join(self.run.checkpoints, f"ckpt-{self.step}.npz")
        with replacing(path, "wb") as f:
            np.savez(f, **{name: np.asarray(leaf) for name, leaf in _named_leaves(self.state)})
        for _, old in self.run.npz_checkpoints()[:-self.config.keep_checkpoints]:
            os.remove(old)
        return path

    checkpoint_errors = Trainer.checkpoint_errors + (zipfile.BadZipFile,)

    def _load_checkpoint(self, path):
        named = _named_leaves(self.state)
        with np.load(path) as saved:
            missing = [name for name, _ in named if name not in saved.files]
            if missing:
                raise KeyError(f"it lacks {', '.join(missing[:3])}: written by another version "
                               "or model")
            restored = [saved[name] for name, _ in named]
        for (name, old), new in zip(named, restored):
            if np.shape(old) != np.shape(new):
                raise ValueError(f"it does not match this model ({name}: {np.shape(new)} vs "
                                 f"{np.shape(old)})")
        self.state = jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(self.state),
            [jnp.asarray(new, old.dtype) for (_, old), new in zip(named, restored)])

    # ---- the step --------------------------------------------------------------------------

    def start(self):
        """Nothing to prepare: batches are gathered inside the step."""

    def _batch(self, all_images, all_labels, batch_index):
        """Batch `batch_index` of the endless stream of per-epoch permutations, flipped."""
        config, n = self.config, all_images.shape[0]
        positions = batch_index * config.batch_size + jnp.arange(config.batch_size)
        epoch = positions // n
        first = epoch[0]
        data_key = jax.random.key(config.seed)
        orders = [jax.random.permutation(jax.random.fold_in(data_key, first + k), n)
                  for k in range(2)]  # a batch spans at most two epochs
        indices = jnp.where(epoch == first, orders[0][positions % n], orders[1][positions % n])
        images = all_images[indices].astype(jnp.float32) / 127.5 - 1.0
        if config.flip:
            flip_key = jax.random.fold_in(jax.random.key(config.seed + 1), batch_index)
            flips = jax.random.bernoulli(flip_key, 0.5, (config.batch_size,))
            images = jnp.where(flips[:, None, None, None], images[:, :, ::-1], images)
        return images, all_labels[indices]

    def _step(self, state, all_images, all_labels):
        key, draws_key = jax.random.split(jax.random.wrap_key_data(state["key"]))
        first = state["step"] * self.config.n_critic
        batches = [self._batch(all_images, all_labels, first + i)
                   for i in range(self.config.n_critic)]
        keys = iter(jax.random.split(draws_key, len(objective.draw_specs(self.config))))
        draws = objective.draw(
            self.config, lambda shape: jax.random.normal(next(keys), shape),
            lambda shape: jax.random.uniform(next(keys), shape),
            lambda shape, high: jax.random.randint(next(keys), shape, 0, high, jnp.int32))
        state = self.objective.step(state, jnp.stack([b[0] for b in batches]),
                                    jnp.stack([b[1] for b in batches]), draws)
        return {**state, "key": jax.random.key_data(key)}

    def train_step(self):
        self.state = self._train_step(self.state, self.images, self.labels)
