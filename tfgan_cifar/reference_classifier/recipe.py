"""How the reference classifier is trained (airbench's recipe): SGD-Nesterov on a triangular
learning rate, label smoothing, 2-pixel random translations, alternating flips, noise on half
the images and lookahead averaging. Augmentation is drawn in NumPy, one batch at a time, so it
runs on either Keras backend."""

import time

import keras
import numpy as np

from tfgan_cifar.pixels import to_float
from tfgan_cifar.reference_classifier.network import (WHITENING_EPS, build_classifier,
                                                      with_mirror_averaging)

MOMENTUM = 0.85
LEARNING_RATE = 1.5  # peak, for a batch of 1024 images; scaled linearly with the batch size
# Weight decay per unit of learning rate (Keras decays by weight_decay * lr at each step, outside
# the momentum buffer): airbench's 0.0153 per 11.5 of learning rate, applied through momentum.
WEIGHT_DECAY = 0.0153 / 11.5 / (1 - MOMENTUM)
# Gaussian noise on half the training images, sigma uniform in [0, NOISE] on the [-1, 1] scale.
# Without it, whitening (which amplifies the faintest patch directions most) makes the
# classifier put noisy images into one class; docs/studies.md has the sweep that chose 0.05.
NOISE = 0.05
LOOKAHEAD = {"start": 0.3, "every": 5, "decay": 0.95, "power": 3.0}


def augment(images, rng, pad=2, flips=None):
    """Random translations by up to `pad` pixels (the image reflected by `pad`, then cropped
    back) and horizontal flips of uint8 images [N, 32, 32, 3]; returns float32 in [-1, 1].
    `flips` (bool [N]) says which images to flip; by default each one with probability 1/2."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flips = rng.random(n) < 0.5 if flips is None else np.asarray(flips, bool)
    out[flips] = out[flips, :, ::-1]
    return to_float(out)


def add_noise(images, rng, max_sigma):
    """Gaussian noise on a random half of float images in [-1, 1], with a standard deviation
    drawn uniformly from [0, max_sigma] for each image, clipped back to [-1, 1]."""
    n = len(images)
    sigma = rng.uniform(0, max_sigma, n) * (rng.random(n) < 0.5)
    noise = rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(images + sigma[:, None, None, None].astype(np.float32) * noise, -1.0, 1.0)


@keras.saving.register_keras_serializable(package="tfgan_cifar")
class Triangle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear from `start` x `peak` at step 0 to `peak` at `peak_at` of `total_steps`, then
    linear to `end` x `peak` at the last step."""

    def __init__(self, peak, total_steps, peak_at=0.23, start=0.2, end=0.07):
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.peak_at, self.start, self.end = float(peak_at), float(start), float(end)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        top = max(self.peak_at * self.total_steps, 1.0)
        up = self.start + (1.0 - self.start) * step / top
        down = 1.0 - (1.0 - self.end) * (step - top) / max(self.total_steps - top, 1.0)
        return self.peak * keras.ops.maximum(keras.ops.where(step < top, up, down), 0.0)

    def get_config(self):
        """The schedule's arguments."""
        return {"peak": self.peak, "total_steps": self.total_steps, "peak_at": self.peak_at,
                "start": self.start, "end": self.end}


class TrainingBatches:
    """One epoch of augmented training batches, made one batch at a time (`batches[i]` is
    (float32 images in [-1, 1], one-hot labels)). Each epoch shuffles the images and drops the
    last partial batch; images in `flipped` are mirrored in even epochs, the others in odd
    ones. A batch depends only on (seed, epoch, index), not on the order it is asked for."""

    def __init__(self, images, onehot, batch_size, seed, augmentation=True, noise=0.0):
        self.images, self.onehot, self.batch_size = images, onehot, batch_size
        self.seed, self.augmentation, self.noise = seed, augmentation, noise
        self.flipped = np.random.default_rng((seed, 0)).random(len(images)) < 0.5
        self.epoch = 0
        self._shuffle()

    def _shuffle(self):
        self.order = np.random.default_rng((self.seed, 1, self.epoch)).permutation(
            len(self.images))

    def __len__(self):
        return len(self.images) // self.batch_size

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.images[chosen]
        if not self.augmentation:
            return to_float(images), self.onehot[chosen]
        rng = np.random.default_rng((self.seed, 2, self.epoch, index))
        flips = self.flipped[chosen] ^ bool(self.epoch % 2)
        x = augment(images, rng, flips=flips)
        if self.noise:
            x = add_noise(x, rng, self.noise)
        return x, self.onehot[chosen]

    def on_epoch_end(self):
        """Moves to the next epoch: new order, new translations, the other half flipped."""
        self.epoch += 1
        self._shuffle()


class Lookahead(keras.callbacks.Callback):
    """Airbench's lookahead: from `start` of `total_steps` on, every `every` steps the weights
    (batch-norm statistics included) are averaged into a slow copy with decay
    decay**every * (step / total_steps)**power and then replaced by it; at the end of each
    epoch the weights are set to the slow copy."""

    def __init__(self, total_steps, start, every, decay, power):
        super().__init__()
        self.total_steps, self.start, self.every = total_steps, start, every
        self.decay, self.power = decay, power
        self.step, self.slow = 0, None

    def on_train_batch_end(self, batch, logs=None):
        """Counts the step and averages on every `every`-th step after `start`."""
        self.step += 1
        if self.step < self.start * self.total_steps or self.step % self.every:
            return
        weights = self.model.weights
        if self.slow is None:
            self.slow = [keras.ops.convert_to_numpy(v).copy() for v in weights]
            return
        rho = self.decay ** self.every * (self.step / self.total_steps) ** self.power
        # New arrays, never updated in place: JAX may share a NumPy array's memory on assign.
        self.slow = [rho * slow + (1.0 - rho) * keras.ops.convert_to_numpy(variable)
                     for slow, variable in zip(self.slow, weights)]
        for slow, variable in zip(self.slow, weights):
            variable.assign(slow)

    def on_epoch_end(self, epoch, logs=None):
        """Leaves the model at the slow weights."""
        if self.slow is not None:
            for slow, variable in zip(self.slow, self.model.weights):
                variable.assign(slow)


def train_epochs(model, batches, epochs, lookahead=None, verbose=False, on_epoch=None):
    """Trains a compiled `model` for `epochs` passes over `batches` (a TrainingBatches), one
    `train_on_batch` per batch, with the `lookahead` callback (if any) after each step.

    Prints (`verbose`) and passes to `on_epoch(epoch, logs)` each epoch's mean loss and
    accuracy."""
    if lookahead is not None:
        lookahead.set_model(model)
    started = time.perf_counter()
    # train_on_batch, not fit: TF 2.21 feeds fit a PyDataset through tf.data's from_generator,
    # which made each CPU step 1.6x slower, and fit on a whole augmented epoch needs 614 MB.
    for epoch in range(epochs):
        sums = {}
        for index in range(len(batches)):
            for name, value in model.train_on_batch(*batches[index], return_dict=True).items():
                sums[name] = sums.get(name, 0.0) + float(value)  # this batch's value alone
            if lookahead is not None:
                lookahead.on_train_batch_end(index)
        if lookahead is not None:
            lookahead.on_epoch_end(epoch)
        batches.on_epoch_end()
        logs = {name: total / len(batches) for name, total in sums.items()}
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.3f}, training accuracy "
                  f"{logs['accuracy']:.3f} ({time.perf_counter() - started:.0f}s)", flush=True)
        if on_epoch is not None:
            on_epoch(epoch, logs)


def train_classifier(train, epochs=4, batch_size=512, width=32, learning_rate=LEARNING_RATE,
                     label_smoothing=0.2, seed=0, mixed_precision=False, augmentation=True,
                     noise=NOISE,
                     mirror_averaging=True, verbose=True, on_epoch=None):
    """Trains the reference classifier on a labelled ImageSet (see tfgan_cifar.data).

    Args:
        train: ImageSet (uint8 images, int labels, class_names).
        epochs, batch_size, width: the run's length, batch and network width.
        learning_rate: the triangular schedule's peak for a batch of 1024 images; the step
            uses learning_rate * batch_size / 1024 (SGD-Nesterov, momentum 0.85).
        label_smoothing: of the cross-entropy targets.
        seed: seeds the weights, the order and the augmentation.
        mixed_precision: build under `mixed_bfloat16` (faster on GPUs; on a CPU without
            bfloat16 instructions TF 2.21's bfloat16 convolution gradients are ~10x slower
            than float32); the previous global policy is restored afterwards.
        augmentation: random translations and alternating flips (off: images as they are).
        noise: with augmentation, Gaussian noise on half the images, its standard deviation
            uniform in [0, noise] (on the [-1, 1] scale): keeps the classifier's predictions
            from collapsing on noisy images.
        mirror_averaging: return `with_mirror_averaging` of the trained network.
        verbose: print one line per epoch.
        on_epoch: optional `on_epoch(epoch, logs)` called after each epoch.

    Returns:
        (keras.Model, settings dict for the record).
    """
    num_classes = len(train.class_names)
    keras.utils.set_random_seed(seed)
    previous = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_classifier(num_classes, width)
    finally:
        keras.config.set_dtype_policy(previous)
    rng = np.random.default_rng(seed)
    whitening_sample = rng.permutation(len(train))[:5000]
    model.get_layer("whitening").adapt(to_float(train.images[whitening_sample]))
    batch_size = min(batch_size, len(train))
    onehot = np.eye(num_classes, dtype=np.float32)[np.asarray(train.labels, np.int64)]
    batches = TrainingBatches(train.images, onehot, batch_size, seed, augmentation, noise)
    total_steps = epochs * len(batches)
    model.compile(
        optimizer=keras.optimizers.SGD(
            Triangle(learning_rate * batch_size / 1024, total_steps), momentum=MOMENTUM,
            nesterov=True, weight_decay=WEIGHT_DECAY),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=label_smoothing),
        metrics=["accuracy"],
        # TF: XLA was no faster on a 2-core CPU. JAX without jit runs op by op (1.3x slower
        # there, and far slower on a GPU).
        jit_compile=keras.backend.backend() == "jax")
    started = time.perf_counter()
    train_epochs(model, batches, epochs, Lookahead(total_steps, **LOOKAHEAD), verbose, on_epoch)
    settings = {"epochs": epochs, "batch_size": batch_size, "width": width,
                "learning_rate": learning_rate, "weight_decay": WEIGHT_DECAY,
                "label_smoothing": label_smoothing, "seed": seed,
                "mixed_precision": bool(mixed_precision), "augmentation": bool(augmentation),
                "noise": float(noise), "whitening_eps": WHITENING_EPS,
                "mirror_averaging": bool(mirror_averaging), "recipe": "airbench",
                "seconds": round(time.perf_counter() - started, 1)}
    return (with_mirror_averaging(model) if mirror_averaging else model), settings
