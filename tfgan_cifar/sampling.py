"""The public way to use a trained generator: `load_generator(path).sample(n)`.

`path` is a run directory (train.py's --workdir: its best export, else its final one) or an
export directory (`<workdir>/export/best`, `<workdir>/export/final`, `<save_dir>/<model>/best`).
The generator runs through the export's SavedModel when TensorFlow is installed, else through
its `generator.keras` on the active Keras backend (`export.load_sampler`).
"""

import os

import numpy as np

from tfgan_cifar import export
from tfgan_cifar.errors import UserError
from tfgan_cifar.run_dir import RunDir

# Images generated per call of the network: bounds the memory a large `n` takes.
BATCH = 256


def find_export(path):
    """The export directory `path` names: `path` itself when it is one, else the best export
    of the run directory `path`, else its final one. Raises UserError (one line) otherwise."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isdir(path):
        raise UserError(f"{path} is not a folder: pass a run directory (train.py's --workdir) "
                        "or an export directory")
    if export.is_export(path):
        return path
    run = RunDir(path)
    found = run.model_to_evaluate()
    if found:
        return found
    if os.path.exists(run.config_path):
        raise UserError(f"{path} is a run directory with no exported generator yet (one is "
                        "exported when FID improves and when training ends): train longer, or "
                        "pass an export directory")
    raise UserError(f"{path} is neither a run directory (train.py's --workdir) nor an export "
                    f"directory (one holding {export.INFO_FILE} and {export.SAVED_MODEL})")


def load_generator(path):
    """Loads the trained generator of a run or export directory for sampling; returns a
    `TrainedGenerator`. Raises UserError when `path` holds none."""
    return TrainedGenerator(find_export(path))


def truncated_normal(rng, shape, truncation=None):
    """Standard normal draws of `shape` (float32); with `truncation` t > 0, every value beyond
    [-t, t] is drawn again (the truncation trick: fewer, more typical images)."""
    z = rng.standard_normal(shape).astype(np.float32)
    if truncation is None:
        return z
    if not truncation > 0:
        raise UserError(f"truncation must be positive, got {truncation}")
    outside = np.abs(z) > truncation
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > truncation
    return z


def slerp(z0, z1, fractions):
    """Points along the great circle from z0 to z1 ([D] each) at `fractions` in [0, 1]:
    [len(fractions), D]. Gaussian noise lies near a sphere, so a walk along it stays typical."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    cosine = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    angle = np.arccos(np.clip(cosine, -1.0, 1.0))
    t = np.asarray(fractions, np.float64)[:, None]
    if angle < 1e-6:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return ((np.sin((1 - t) * angle) * z0 + np.sin(t * angle) * z1)
            / np.sin(angle)).astype(np.float32)


class TrainedGenerator:
    """A trained generator loaded for sampling (see `load_generator`).

    Attributes: `path` (the export directory), `z_dim`, `num_classes`, `conditional`, `ema`
    (whether its weights are the exponential moving average), `model` ("dcgan" or "sagan"),
    `step` and `info` (the export's record: metrics and training settings).
    """

    def __init__(self, path):
        self.path = path
        self.info = export.read_info(path)
        config = self.info.get("config", {})
        self.model = config.get("model")
        self.step = self.info.get("step")
        self.conditional = bool(config.get("conditional"))
        self.num_classes = int(config.get("num_classes", 10))
        self.ema = bool(config.get("ema_decay"))
        try:
            self._forward, self.z_dim = export.load_sampler(path)
        except FileNotFoundError as error:
            raise UserError(f"{path} cannot be sampled: {error}") from None
        self.z_dim = int(self.z_dim)

    def __repr__(self):
        kind = "conditional" if self.conditional else "unconditional"
        return (f"<TrainedGenerator {self.model} ({kind}, z_dim={self.z_dim}, step "
                f"{self.step}) from {self.path}>")

    def noise(self, n, seed=None, truncation=None):
        """`n` noise vectors [n, z_dim] (float32), seeded; see `truncated_normal`."""
        return truncated_normal(np.random.default_rng(seed), (n, self.z_dim), truncation)

    def sample(self, n, labels=None, seed=None, truncation=None):
        """`n` generated images, uint8 [n, 32, 32, 3].

        Args:
            n: how many images.
            labels: conditional generators only: one class (an int) for all images, or one
                per image; default: classes drawn uniformly.
            seed: seed of the noise (and of the drawn classes); the same seed gives the same
                images.
            truncation: redraw noise values beyond [-truncation, truncation].
        """
        n = int(n)
        if n < 1:
            raise UserError(f"the number of images must be at least 1, got {n}")
        rng = np.random.default_rng(seed)
        z = truncated_normal(rng, (n, self.z_dim), truncation)
        if labels is None and self.conditional:
            labels = rng.integers(0, self.num_classes, n)
        return self.generate(z, labels)

    def generate(self, z, labels=None):
        """The images, uint8 [N, 32, 32, 3], of the noise `z` [N, z_dim] and, for a
        conditional generator, `labels` (an int or N ints)."""
        from tfgan_cifar.viz.grids import to_uint8

        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise UserError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        labels = self._labels(labels, len(z))
        images = [to_uint8(self._forward(z[i:i + BATCH], labels[i:i + BATCH]))
                  for i in range(0, len(z), BATCH)]
        return np.concatenate(images) if images else np.zeros((0, 32, 32, 3), np.uint8)

    def _labels(self, labels, n):
        if labels is None:
            if self.conditional:
                raise UserError("this generator is conditional: pass labels (class numbers "
                                f"0..{self.num_classes - 1})")
            return np.zeros(n, np.int32)
        if not self.conditional:
            raise UserError("this generator is unconditional: it takes no labels")
        try:
            labels = np.broadcast_to(np.asarray(labels), (n,)).astype(np.int64)
        except ValueError:
            raise UserError(f"pass one class or {n} of them, got {np.shape(labels)[0]}") from None
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if bad.size:
            raise UserError(f"class {bad[0]} is out of range: this generator has classes "
                            f"0..{self.num_classes - 1}")
        return labels.astype(np.int32)
