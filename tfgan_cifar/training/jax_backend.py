"""The JAX backend (KERAS_BACKEND=jax): one jit-compiled, stateless step; no TensorFlow needed.

The whole state (an `objective.TrainState`) and the random key are threaded through `jax.jit`
and donated to it; with --steps_per_call=K one call loops over K steps (`jax.lax.fori_loop`).
CIFAR-10 lives on the device as uint8; each step gathers its batches there, in an order fixed
by (seed, epoch) like the TensorFlow pipeline, and flips them.
Checkpoints are `.npz` files of the state's leaves named by their path in the state ("d/3" is
D's fourth trainable value, "replay/images" the replay buffer's images) and the key ("key"),
written atomically.

With --distribute (`jax_distribute`) the state and the data set are replicated over a device
mesh and each step's batch is sharded along it; the step itself is unchanged.
"""

import collections
import os
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from tfgan_cifar.atomic import replacing
from tfgan_cifar.pixels import to_float
from tfgan_cifar.training import jax_distribute, objective
from tfgan_cifar.training.trainer import MAX_IN_FLIGHT, Trainer


def _apply(part, optimizer, grads, params, optimizer_values):
    params, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, params)
    return params, optimizer_values


def _checkpointed(state, key):
    """{part: value} of everything a checkpoint holds: the `TrainState`'s parts and "key"."""
    return {**state._asdict(), "key": key}


def _from_checkpointed(tree):
    """(state, key) of a `_checkpointed` tree."""
    tree = dict(tree)
    key = tree.pop("key")
    return objective.TrainState(**tree), key


def _named_leaves(tree):
    """[("d/3", array), ("replay/images", array), ...]: the leaves of a `_checkpointed` tree by
    path (dict key, list index or field name), the names a checkpoint stores them under (D's
    i-th trainable value is "d/i")."""
    def name(path):
        return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))))
                        for k in path)
    return [(name(path), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def restore_discriminator(discriminator, path):
    """Sets a built `discriminator`'s weights to those of the JAX checkpoint at `path`."""
    with np.load(path) as saved:
        for part, variables in (("d", discriminator.trainable_variables),
                                ("d_nt", discriminator.non_trainable_variables)):
            for index, variable in enumerate(variables):
                variable.assign(saved[f"{part}/{index}"])  # as `_named_leaves` names them


class JaxTrainer(Trainer):
    """A run on JAX; see `trainer.Trainer`."""

    backend = "jax"

    def __init__(self, config, data, cluster=None):
        self.cluster = cluster or jax_distribute.connect(config)
        super().__init__(config, objective.BackendOps(
            lambda f: jax.value_and_grad(f, has_aux=True),
            lambda f: jax.grad(f, has_aux=True), _apply))
        place = self.cluster.place
        self.images = place(data.images)
        self.labels = place(np.asarray(data.labels, np.int32))
        self.state = place(self.objective.initial_state(self.ema_generator))
        self.key = place(jax.random.key_data(jax.random.key(config.seed)))
        self._train_step = self._jit_steps(1)
        self._calls = {1: self._train_step}  # steps per call -> its compiled call
        self._in_flight = collections.deque()
        if config.steps_per_call > 1 and self.cluster.platform == "cpu":
            print(f"warning: --steps_per_call={config.steps_per_call} is slower than single steps "
                  "on JAX's CPU backend, whose convolution gradients run far slower inside a "
                  "loop (jax-ml/jax#12868): on a CPU, leave --steps_per_call at 1",
                  file=sys.stderr, flush=True)

    def compile(self, function):
        return jax.jit(function)

    def read(self, part):
        return self.cluster.local(getattr(self.state, part))

    def reset_metrics(self):
        self.state = self.state._replace(**self.cluster.place(
            {"sums": {name: np.zeros((), np.float32) for name in self.state.sums},
             "count": np.zeros((), np.float32)}))

    @property
    def device(self):
        return self.cluster.describe()

    # ---- checkpoints -----------------------------------------------------------------------

    def save(self):
        """Writes checkpoints/ckpt-<step>.npz atomically and keeps the newest few (process 0
        only; returns None elsewhere)."""
        if not self.cluster.is_writer:
            return None
        path = os.path.join(self.run.checkpoints, f"ckpt-{self.step}.npz")
        tree = self.cluster.local(_checkpointed(self.state, self.key))
        with replacing(path, "wb") as f:
            np.savez(f, **{name: np.asarray(leaf) for name, leaf in _named_leaves(tree)})
        for _, old in self.run.npz_checkpoints()[:-self.config.keep_checkpoints]:
            os.remove(old)
        return path

    checkpoint_errors = Trainer.checkpoint_errors + (zipfile.BadZipFile,)

    def _load_checkpoint(self, path):
        tree = self.cluster.local(_checkpointed(self.state, self.key))
        named = _named_leaves(tree)
        with np.load(path) as saved:
            # Written under another --precision, it lacks the loss scale: that starts afresh.
            missing = [name for name, _ in named if name not in saved.files
                       and not name.startswith("loss_scale/")]
            if missing:
                raise KeyError(f"it lacks {', '.join(missing[:3])}: written by another version "
                               "or model")
            restored = [saved[name] if name in saved.files else old for name, old in named]
        for (name, old), new in zip(named, restored):
            if np.shape(old) != np.shape(new):
                raise ValueError(f"it does not match this model ({name}: {np.shape(new)} vs "
                                 f"{np.shape(old)})")
        self.state, self.key = _from_checkpointed(self.cluster.place(jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(tree),
            [np.asarray(new, old.dtype) for (_, old), new in zip(named, restored)])))

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
        images = to_float(all_images[indices])
        if config.flip:
            flip_key = jax.random.fold_in(jax.random.key(config.seed + 1), batch_index)
            flips = jax.random.bernoulli(flip_key, 0.5, (config.batch_size,))
            images = jnp.where(flips[:, None, None, None], images[:, :, ::-1], images)
        return images, all_labels[indices]

    def _step_batches(self, all_images, all_labels, step):
        """The n_critic batches generator step `step` (counted from 0) trains on."""
        first = step * self.config.n_critic
        return [self._batch(all_images, all_labels, first + i)
                for i in range(self.config.n_critic)]

    def batches(self, step):
        """(images [n_critic, B, 32, 32, 3] in [-1, 1], labels [n_critic, B]) that generator
        step `step` (counted from 0) trains on, drawn on the device as the step draws them."""
        batches = jax.jit(self._step_batches)(self.images, self.labels, np.int32(step))
        return (np.stack([np.asarray(b[0]) for b in batches]),
                np.stack([np.asarray(b[1]) for b in batches]))

    def _step(self, state, key, all_images, all_labels):
        key, draws_key = jax.random.split(jax.random.wrap_key_data(key))
        batches = self._step_batches(all_images, all_labels, state.step)
        keys = iter(jax.random.split(draws_key, len(objective.draw_specs(self.config))))
        draws = objective.draw(
            self.config, lambda shape: jax.random.normal(next(keys), shape),
            lambda shape: jax.random.uniform(next(keys), shape),
            lambda shape, high: jax.random.randint(next(keys), shape, 0, high, jnp.int32))
        images, labels = jax.lax.with_sharding_constraint(
            (jnp.stack([b[0] for b in batches]), jnp.stack([b[1] for b in batches])),
            self.cluster.batch_sharding(batch_axis=1))
        state = self.objective.step(state, images, labels, draws)
        # The step number again, as an output of its own: the state is donated to the next
        # step, so only this copy can be waited on once that step is dispatched.
        return state, jax.random.key_data(key), state.step + 0

    def _steps(self, state, key, all_images, all_labels, count):
        """`count` steps in one loop on the device (`_step` itself for one): (state, key,
        step)."""
        if count == 1:
            return self._step(state, key, all_images, all_labels)
        state, key = jax.lax.fori_loop(
            0, count, lambda _, carry: self._step(*carry, all_images, all_labels)[:2],
            (state, key))
        return state, key, state.step + 0

    def _jit_steps(self, count):
        def steps(state, key, images, labels):
            return self._steps(state, key, images, labels, count)
        return jax.jit(steps, donate_argnums=(0, 1), out_shardings=self.cluster.replicated)

    def train_steps(self, count):
        if count not in self._calls:
            self._calls[count] = self._jit_steps(count)
        self.state, self.key, done = self._calls[count](self.state, self.key, self.images,
                                                        self.labels)
        self._in_flight.append(done)
        if len(self._in_flight) > MAX_IN_FLIGHT:
            self._in_flight.popleft().block_until_ready()
