"""The JAX trainer (KERAS_BACKEND=jax): one jit-compiled, stateless step; no TensorFlow needed.

The whole state (variables of G and D, optimizer slots, step, random key, metric sums) is one
pytree threaded through `jax.jit`; the Keras models are called with `stateless_call` and the
optimizers with `stateless_apply`. CIFAR-10 lives on the device as uint8; each step gathers its
batches there, in an order fixed by (seed, epoch) like the TensorFlow pipeline, and flips them.
Checkpoints are `.npz` files of the state, written atomically.
"""

import glob
import os
import re

import jax
import jax.numpy as jnp
import numpy as np

from tfgan_cifar.atomic import replacing
from tfgan_cifar.errors import UserError
from tfgan_cifar.nn.layers import SelfAttention
from tfgan_cifar.run_log import checkpoint_dir
from tfgan_cifar.training import objective, replay
from tfgan_cifar.training.losses import (LOSSES, discriminator_accuracy, gradient_penalty,
                                         interpolate)

_CHECKPOINT = re.compile(r"ckpt-(\d+)\.npz$")


def _values(variables):
    return [v.value for v in variables]


def _assign(pairs):
    """Copies arrays into Keras variables: pairs of (variables, values)."""
    for variables, values in pairs:
        for variable, value in zip(variables, values):
            variable.assign(value)


class JaxTrainer:
    """Holds G, D, their optimizers and the step state of one run, on the JAX backend."""

    backend = "jax"

    def __init__(self, config, data):
        self.config = config
        self.loss = LOSSES[config.loss]
        # The EMA generator lives in the state, as arrays; its Keras copy is not needed.
        (self.generator, self.discriminator, self.g_optimizer, self.d_optimizer,
         _) = objective.build_networks(config)
        self.metric_names = objective.metric_names(config)
        self.images = jnp.asarray(data.images)
        self.labels = jnp.asarray(data.labels, jnp.int32)
        if len(data) < config.batch_size:
            raise UserError(f"--batch_size={config.batch_size} is larger than the data set "
                            f"({len(data)} images)")
        self.state = self._initial_state()
        self._train_step = jax.jit(self._step, donate_argnums=0)
        self._generate = jax.jit(self._generate_pure)
        self._class_logits = jax.jit(self._class_logits_pure)
        self.checkpoint_dir = checkpoint_dir(config.workdir)

    # ---- state -------------------------------------------------------------------------------

    def _initial_state(self):
        G, D = self.generator, self.discriminator
        return {
            "g": _values(G.trainable_variables), "g_nt": _values(G.non_trainable_variables),
            "d": _values(D.trainable_variables), "d_nt": _values(D.non_trainable_variables),
            "g_opt": _values(self.g_optimizer.variables),
            "d_opt": _values(self.d_optimizer.variables),
            "key": jax.random.key_data(jax.random.key(self.config.seed)),
            "step": jnp.zeros((), jnp.int32),
            "sums": {name: jnp.zeros((), jnp.float32) for name in self.metric_names},
            "count": jnp.zeros((), jnp.float32),
            # A copy: donated state must not hold the same buffer twice.
            "ema": [jnp.array(v) for v in _values(G.trainable_variables)]
            if self.config.ema_decay else [],
            "replay": {"images": jnp.zeros((self.config.replay_size, 32, 32, 3)),
                       "labels": jnp.zeros((self.config.replay_size,), jnp.int32),
                       "position": jnp.zeros((), jnp.int32),
                       "filled": jnp.zeros((), jnp.int32)} if self.config.replay_size else {},
        }

    def sync_to_models(self):
        """Copies the state's values into the Keras variables (for export and inspection)."""
        s = self.state
        _assign([(self.generator.trainable_variables, s["g"]),
                 (self.generator.non_trainable_variables, s["g_nt"]),
                 (self.g_optimizer.variables, s["g_opt"]),
                 (self.d_optimizer.variables, s["d_opt"])])
        self._sync_discriminator()

    def _sync_discriminator(self):
        _assign([(self.discriminator.trainable_variables, self.state["d"]),
                 (self.discriminator.non_trainable_variables, self.state["d_nt"])])

    @property
    def step(self):
        return int(self.state["step"])

    @property
    def device(self):
        device = jax.devices()[0]
        return f"{device.platform.upper()} ({device.device_kind})"

    # ---- checkpoints -------------------------------------------------------------------------

    def _checkpoints(self):
        found = []
        for path in glob.glob(os.path.join(self.checkpoint_dir, "ckpt-*.npz")):
            match = _CHECKPOINT.search(path)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def save(self):
        """Writes checkpoints/ckpt-<step>.npz atomically and keeps the newest few."""
        leaves, _ = jax.tree_util.tree_flatten(self.state)
        path = os.path.join(self.checkpoint_dir, f"ckpt-{self.step}.npz")
        with replacing(path, "wb") as f:
            np.savez(f, **{f"leaf{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
        for _, old in self._checkpoints()[:-self.config.keep_checkpoints]:
            os.remove(old)
        return path

    def restore(self):
        """Restores the newest checkpoint, if any; returns its step."""
        checkpoints = self._checkpoints()
        if not checkpoints:
            return 0
        _, path = checkpoints[-1]
        leaves, treedef = jax.tree_util.tree_flatten(self.state)
        with np.load(path) as saved:
            restored = [saved[f"leaf{i:05d}"] for i in range(len(leaves))]
        for old, new in zip(leaves, restored):
            if np.shape(old) != np.shape(new):
                raise ValueError(f"{path} does not match this model ({np.shape(new)} vs "
                                 f"{np.shape(old)}); use another --workdir")
        self.state = jax.tree_util.tree_unflatten(
            treedef, [jnp.asarray(v, dtype=jnp.asarray(o).dtype) for o, v in zip(leaves, restored)])
        print(f"resumed from {path} at step {self.step}", flush=True)
        return self.step

    # ---- the step ----------------------------------------------------------------------------

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

    def _draws(self, key):
        draws = {}
        specs = objective.draw_specs(self.config)
        for (name, (shape, distribution, high)), k in zip(
                specs.items(), jax.random.split(key, len(specs))):
            if distribution == "normal":
                draws[name] = jax.random.normal(k, shape)
            elif distribution == "uniform":
                draws[name] = jax.random.uniform(k, shape)
            else:
                draws[name] = jax.random.randint(k, shape, 0, high, jnp.int32)
        return draws

    def update(self, state, images, labels, draws):
        """One G step after n_critic D steps, on given batches and random draws (pure).

        images/labels: [n_critic, B, ...]; draws: see `objective.draw_specs`.
        Returns (new state, {metric: value}).
        """
        config, G, D, loss = self.config, self.generator, self.discriminator, self.loss
        g, g_nt, d, d_nt = state["g"], state["g_nt"], state["d"], state["d_nt"]
        d_opt, g_opt, buffer = state["d_opt"], state["g_opt"], state["replay"]
        z, fake_labels = draws["z"], draws["fake_labels"]

        def d_objective(d, d_nt, g_nt, x, y, i):
            fake, g_nt = G.stateless_call(g, g_nt, z[i], fake_labels[i], training=True)
            shown, shown_labels, replayed = fake, fake_labels[i], None
            if config.replay_size:
                shown, shown_labels, replayed = replay.mix(
                    fake, fake_labels[i], buffer["images"], buffer["labels"], buffer["filled"],
                    draws["replay_index"][i], replay.replay_count(config))
            class_logits = None
            if config.aux_classifier:
                (real_logits, class_logits), d_nt = D.stateless_call(
                    d, d_nt, x, y, training=True, return_class_logits=True)
            else:
                real_logits, d_nt = D.stateless_call(d, d_nt, x, y, training=True)
            fake_logits, d_nt = D.stateless_call(d, d_nt, shown, shown_labels, training=True)
            penalty = None
            if config.gp_weight:
                def critic_sum(x_hat, d_nt):
                    critic, d_nt = D.stateless_call(d, d_nt, x_hat, y, training=True)
                    return jnp.sum(critic), d_nt

                x_hat = interpolate(x, shown, draws["gp_epsilon"][i])
                gradients, d_nt = jax.grad(critic_sum, has_aux=True)(x_hat, d_nt)
                penalty = gradient_penalty(gradients)
            total, metrics = objective.discriminator_objective(
                config, loss, real_logits, fake_logits, class_logits, y, penalty)
            if replayed is not None:
                metrics["replayed"] = jnp.mean(replayed)
            return total, (d_nt, g_nt, real_logits, fake_logits, metrics, fake)

        for i in range(config.n_critic):
            (_, (d_nt, g_nt, real_logits, fake_logits, d_metrics, fake)), grads = \
                jax.value_and_grad(d_objective, has_aux=True)(d, d_nt, g_nt, images[i],
                                                              labels[i], i)
            d, d_opt = self.d_optimizer.stateless_apply(d_opt, grads, d)
            if config.replay_size:
                rows = replay.write_rows(buffer["position"], fake.shape[0], config.replay_size)
                position, filled = replay.advance(buffer["position"], buffer["filled"],
                                                  fake.shape[0], config.replay_size)
                buffer = {"images": buffer["images"].at[rows].set(jax.lax.stop_gradient(fake)),
                          "labels": buffer["labels"].at[rows].set(fake_labels[i]),
                          "position": position, "filled": filled}

        def g_objective(g, g_nt, d_nt, z, fy):
            fake, g_nt = G.stateless_call(g, g_nt, z, fy, training=True)
            fake_logits, d_nt = D.stateless_call(d, d_nt, fake, fy, training=True)
            return loss.g_loss(fake_logits), (g_nt, d_nt)

        (g_loss, (g_nt, d_nt)), grads = jax.value_and_grad(g_objective, has_aux=True)(
            g, g_nt, d_nt, z[-1], fake_labels[-1])
        g, g_opt = self.g_optimizer.stateless_apply(g_opt, grads, g)
        real_acc, fake_acc = discriminator_accuracy(loss, real_logits, fake_logits)
        metrics = {**d_metrics, "g_loss": g_loss, "d_real_acc": real_acc, "d_fake_acc": fake_acc}
        new_state = {**state, "g": g, "g_nt": g_nt, "d": d, "d_nt": d_nt, "g_opt": g_opt,
                     "d_opt": d_opt, "replay": buffer}
        return new_state, metrics

    def _step(self, state, all_images, all_labels):
        key, draws_key = jax.random.split(jax.random.wrap_key_data(state["key"]))
        first = state["step"] * self.config.n_critic
        batches = [self._batch(all_images, all_labels, first + i)
                   for i in range(self.config.n_critic)]
        images = jnp.stack([b[0] for b in batches])
        labels = jnp.stack([b[1] for b in batches])
        state, metrics = self.update(state, images, labels, self._draws(draws_key))
        if self.config.ema_decay:
            decay = self.config.ema_decay
            state = {**state, "ema": [
                decay * e + (1.0 - decay) * w for e, w in zip(state["ema"], state["g"])]}
        sums = {k: state["sums"][k] + metrics[k].astype(jnp.float32) for k in self.metric_names}
        return {**state, "key": jax.random.key_data(key), "step": state["step"] + 1,
                "sums": sums, "count": state["count"] + 1}

    def train_step(self):
        """Runs one generator step (and its n_critic discriminator steps)."""
        self.state = self._train_step(self.state, self.images, self.labels)

    # ---- what the loop reads -----------------------------------------------------------------

    def pop_metrics(self):
        """Means of the step metrics since the last call, then resets them."""
        count = max(float(self.state["count"]), 1.0)
        means = {k: float(v) / count for k, v in self.state["sums"].items()}
        self.state = {**self.state, "sums": {k: jnp.zeros((), jnp.float32)
                                             for k in self.metric_names},
                      "count": jnp.zeros((), jnp.float32)}
        return means

    def learning_rates(self):
        return {"lr_g": float(self.config.lr_g), "lr_d": float(self.config.lr_d)}

    def attention_gains(self):
        gains = {}
        for model, key in ((self.generator, "g"), (self.discriminator, "d")):
            positions = {id(v): i for i, v in enumerate(model.trainable_variables)}
            for layer in model._flatten_layers():
                if isinstance(layer, SelfAttention):
                    value = self.state[key][positions[id(layer.gamma)]]
                    gains[f"gamma/{model.name}/{layer.name}"] = float(value)
        return gains

    def _generate_pure(self, g, g_nt, z, labels):
        return self.generator.stateless_call(g, g_nt, z, labels, training=False)[0]

    def generate(self, z, labels, batch_size=500):
        """Images in [-1, 1] (numpy) from G in inference mode, computed in chunks."""
        g, g_nt = self._sampling_weights()
        return np.concatenate([
            np.asarray(self._generate(g, g_nt, jnp.asarray(z[i:i + batch_size]),
                                      jnp.asarray(labels[i:i + batch_size])))
            for i in range(0, len(z), batch_size)])

    def _sampling_weights(self):
        """(trainable, non-trainable) weights of the G that samples: the EMA weights when
        --ema_decay is set, with G's own batch-norm statistics and spectral-norm vectors."""
        if self.config.ema_decay:
            return self.state["ema"], self.state["g_nt"]
        return self.state["g"], self.state["g_nt"]

    def _class_logits_pure(self, d, d_nt, images):
        labels = jnp.zeros(images.shape[:1], jnp.int32)
        return self.discriminator.stateless_call(d, d_nt, images, labels, training=False,
                                                 return_class_logits=True)[0][1]

    def class_logits(self, images, batch_size=500):
        """The classifier head's logits (numpy [N, num_classes]) for images in [-1, 1]."""
        return np.concatenate([
            np.asarray(self._class_logits(self.state["d"], self.state["d_nt"],
                                          jnp.asarray(images[i:i + batch_size])))
            for i in range(0, len(images), batch_size)])

    def export_discriminator(self):
        """D (synced from the state) when it has a classifier head, to export; else None."""
        if not self.config.aux_classifier:
            return None
        self._sync_discriminator()  # D only: G may hold the EMA weights being exported
        return self.discriminator

    def generate_with_attention(self, z, labels):
        images, maps = self.export_generator()(z, labels, training=False, return_attention=True)
        return np.asarray(images), {r: np.asarray(m) for r, m in maps.items()}

    def export_generator(self):
        """G with the weights to sample and export (the EMA ones when --ema_decay is set)."""
        self.sync_to_models()
        g, g_nt = self._sampling_weights()
        _assign([(self.generator.trainable_variables, g),
                 (self.generator.non_trainable_variables, g_nt)])
        return self.generator
