"""Exported generators on disk: SavedModel for sampling, a `.keras` copy and a JSON record.

Training exports the best generator (by FID) to `<workdir>/export/best` and the generator of a
finished run to `<workdir>/export/final` (see `run_dir.RunDir`), both with `export_model`, and
publishes a copy of the best one to `<save_dir>/<model>/best` with `publish`. An export holds
`<dir>/saved_model` (a SavedModel whose `serving_default` signature takes `z` float32
[N, z_dim] and `labels` int32 [N] and returns `images` in [-1, 1], N x 32 x 32 x 3, and whose
`sample` signature returns uint8 images and takes `labels` only for a conditional generator),
`<dir>/generator.keras`, `<dir>/best.json` (the record: step, FID when known, config), a model
card `<dir>/README.md` (model_card.py) and, for
a discriminator with a classifier head, `<dir>/discriminator.keras` (used to sort
unconditional samples by class). The whole directory is written beside the old one and
swapped in by renames, so a crash or a kill leaves the previous export loadable.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

from absl import logging

from tfgan_cifar.errors import UserError, one_line
from tfgan_cifar.model_card import model_card

SAVED_MODEL = "saved_model"
KERAS_FILE = "generator.keras"
DISCRIMINATOR_FILE = "discriminator.keras"
INFO_FILE = "best.json"
CARD_FILE = "README.md"
PREVIOUS_SUFFIX = ".previous"


def _recover(path):
    """Puts back an exported model left aside by an export that was killed between its renames."""
    previous = path + PREVIOUS_SUFFIX
    if not os.path.exists(path) and os.path.exists(previous):
        os.rename(previous, path)
        logging.warning("restored %s from an interrupted export", path)


def _write_saved_model(generator, path):
    """The SavedModel of `generator`: `serving_default` (z, labels -> float images in
    [-1, 1]) and `sample` (uint8 images; it takes labels only when the generator is
    conditional)."""
    import tensorflow as tf

    z_spec = tf.TensorSpec([None, generator.z_dim], tf.float32, name="z")
    labels_spec = tf.TensorSpec([None], tf.int32, name="labels")

    @tf.function(input_signature=[z_spec, labels_spec])
    def serve(z, labels):
        return {"images": generator(z, labels, training=False)}

    def to_uint8(images):  # as viz.grids.to_uint8: round half to even, clip
        return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8)

    # `sample` calls `serve`'s graph rather than tracing the generator a second time.
    if generator.conditional:
        @tf.function(input_signature=[z_spec, labels_spec])
        def sample(z, labels):
            return {"images": to_uint8(serve(z, labels)["images"])}
    else:
        @tf.function(input_signature=[z_spec])
        def sample(z):
            return {"images": to_uint8(serve(z, tf.zeros(tf.shape(z)[:1], tf.int32))["images"])}

    # The Keras model itself is kept out of the SavedModel's object graph (its default
    # signature would take one input); its variables are tracked directly instead.
    root = tf.Module()
    root.variables_by_position = list(generator.variables)
    root.serve = serve
    root.sample = sample
    tf.saved_model.save(root, path, signatures={"serving_default": serve, "sample": sample})


def _write_saved_model_any_backend(generator, directory):
    """SavedModel beside the .keras file: directly on TensorFlow, through a TensorFlow
    subprocess on another backend, or not at all (with a notice) without TensorFlow."""
    import keras

    target = os.path.join(directory, SAVED_MODEL)
    if keras.backend.backend() == "tensorflow":
        _write_saved_model(generator, target)
    elif tensorflow_available():
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": "",
               "PYTHONPATH": os.pathsep.join(filter(None, [package_root,
                                                           os.environ.get("PYTHONPATH")]))}
        subprocess.run([sys.executable, "-m", "tfgan_cifar.export",
                        os.path.join(directory, KERAS_FILE), target], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    else:
        _notice_once("TensorFlow is not installed: generators are exported as "
                     f"{KERAS_FILE} only (no SavedModel)")


_NOTICES = set()


def _notice_once(message):
    if message not in _NOTICES:
        _NOTICES.add(message)
        print(message, flush=True)


def tensorflow_available():
    """Whether TensorFlow is installed, found without importing it: a JAX run converts its
    exports in a TensorFlow subprocess and has no use for TensorFlow itself."""
    if "tensorflow" in sys.modules:  # imported, or made unimportable (None)
        return sys.modules["tensorflow"] is not None
    return importlib.util.find_spec("tensorflow") is not None


def _swap_in(staging, path):
    """Renames the finished directory `staging` onto `path`, keeping the old one aside until
    the new one is in place (see `_recover`)."""
    previous = path + PREVIOUS_SUFFIX
    if os.path.exists(previous):
        shutil.rmtree(previous)
    if os.path.exists(path):
        os.rename(path, previous)
    os.rename(staging, path)
    shutil.rmtree(previous, ignore_errors=True)


def _staging_dir(path):
    """A new staging folder beside `path`; those left by dead processes are removed first."""
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    _recover(path)
    prefix = f".{os.path.basename(path)}.tmp-"
    for name in os.listdir(parent):
        if name.startswith(prefix) and not _process_alive(name[len(prefix):].split("-")[0]):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    return os.path.join(parent, f"{prefix}{os.getpid()}-{time.time_ns()}")


def _process_alive(pid):
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def export_model(generator, path, info, discriminator=None):
    """Atomically replaces the exported model at `path` with `generator`, its record `info`
    and `discriminator` (a multi-task D of the same step) when given. Returns the path."""
    path = os.path.abspath(path)
    staging = _staging_dir(path)
    try:
        os.makedirs(staging)
        generator.save(os.path.join(staging, KERAS_FILE))
        if discriminator is not None:
            discriminator.save(os.path.join(staging, DISCRIMINATOR_FILE))
        _write_saved_model_any_backend(generator, staging)
        with open(os.path.join(staging, INFO_FILE), "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
        with open(os.path.join(staging, CARD_FILE), "w", encoding="utf-8") as f:
            f.write(model_card(info))
        _swap_in(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def publish(source, target):
    """Atomically replaces the export at `target` with a copy of the export at `source`."""
    target = os.path.abspath(target)
    staging = _staging_dir(target)
    try:
        shutil.copytree(source, staging)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def exists(path):
    """Whether an export is at `path` (or left aside there by an interrupted export)."""
    return os.path.exists(path) or os.path.exists(path + PREVIOUS_SUFFIX)


def is_export(path):
    """Whether `path` is an export directory (it holds a record), or one left aside there by
    an interrupted export."""
    return any(os.path.isfile(os.path.join(folder, INFO_FILE))
               for folder in (path, path + PREVIOUS_SUFFIX))


def read_info(path):
    """The JSON record of an exported model (step, FID, KID, sample count, config)."""
    _recover(path)
    with open(os.path.join(path, INFO_FILE)) as f:
        return json.load(f)


def load_sampler(path):
    """Loads a best-model directory (or a bare SavedModel) for sampling: the low-level loader
    under `tfgan_cifar.load_generator` (sampling.py), which adds the noise, the labels and
    uint8 images; evaluate.py scores the float images it returns.

    Returns a function `sample(z, labels) -> images` (numpy float32 in [-1, 1]) and the z
    dimension. Uses `tf.saved_model.load` when TensorFlow is installed, so it needs only
    TensorFlow, not this package's code; without TensorFlow (a JAX-only machine) it loads the
    directory's `generator.keras` on the backend Keras runs.
    """
    if not tensorflow_available():
        return _load_keras_sampler(path)
    import numpy as np
    import tensorflow as tf

    _recover(path)
    saved_model = os.path.join(path, SAVED_MODEL)
    if not os.path.isdir(saved_model):
        saved_model = path
    if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel at {path}")
    loaded = tf.saved_model.load(saved_model)
    signature = loaded.signatures["serving_default"]
    z_dim = signature.structured_input_signature[1]["z"].shape[-1]

    def sample(z, labels):
        outputs = signature(z=tf.constant(z, tf.float32), labels=tf.constant(labels, tf.int32))
        return np.asarray(outputs["images"])

    sample.saved_model = loaded
    return sample, z_dim


def load_keras_generator(path):
    """The generator of an export directory, from its `.keras` copy (FileNotFoundError when
    it has none)."""
    import keras

    import tfgan_cifar.nn  # noqa: F401  (registers this package's layers for deserialisation)

    _recover(path)
    keras_file = os.path.join(path, KERAS_FILE)
    if not os.path.isfile(keras_file):
        raise FileNotFoundError(f"no {KERAS_FILE} at {path}")
    return keras.saving.load_model(keras_file)


def load_keras_discriminator(path):
    """The discriminator with a class head saved beside an exported generator, or None when
    the export has none."""
    keras_file = os.path.join(path, DISCRIMINATOR_FILE)
    if not os.path.exists(keras_file):
        return None
    import keras

    import tfgan_cifar.nn  # noqa: F401  (registers this package's layers for deserialisation)

    return keras.saving.load_model(keras_file)


# What to pass instead of a path that holds no export.
EXPORT_HINT = ("pass --saved_model=DIR naming a best-model directory (DIR/saved_model/, "
               "DIR/best.json, as train.py exports) or a SavedModel directory "
               "(DIR/saved_model.pb)")


def read_record(path, where=None):
    """The best.json record of the exported model at `path` ({} when it has none); a path
    that is not a folder, or a damaged record, raises UserError naming `where` (default:
    path)."""
    where = where or path
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{where} is not a folder: {EXPORT_HINT}")
    try:
        info = read_info(path)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise UserError(f"{where}: {INFO_FILE} cannot be read ({one_line(error)}): the export "
                        "is damaged; pass another --saved_model") from None
    if not isinstance(info, dict):
        raise UserError(f"{where}: {INFO_FILE} holds no record (a JSON object): the export is "
                        "damaged; pass another --saved_model")
    return info


def load_checked_sampler(path, where=None):
    """`load_sampler(path)`; a path that holds no SavedModel (without TensorFlow: no
    generator.keras), or a damaged one (a truncated or garbage saved_model.pb, missing
    variables, no serving signature), raises UserError naming `where` (default: path)."""
    where = where or path
    if not os.path.isdir(path):
        raise UserError(f"{where} is not a folder: {EXPORT_HINT}")
    if not tensorflow_available():
        if not os.path.isfile(os.path.join(path, KERAS_FILE)):
            raise UserError(f"{where} holds no {KERAS_FILE}, and without TensorFlow its "
                            "SavedModel cannot be read: install tensorflow, or pass a directory "
                            "that train.py exported (they hold both)")
    elif not any(os.path.isfile(os.path.join(folder, "saved_model.pb"))
                 for folder in (os.path.join(path, SAVED_MODEL), path)):
        raise UserError(f"{where} holds no SavedModel (neither saved_model/saved_model.pb nor "
                        f"saved_model.pb): {EXPORT_HINT}")
    try:
        return load_sampler(path)
    except Exception as error:  # TensorFlow raises OSError, ValueError, KeyError, its own errors
        kind = "SavedModel" if tensorflow_available() else KERAS_FILE
        raise UserError(f"{where}: the {kind} cannot be loaded ({type(error).__name__}: "
                        f"{one_line(error)}): it is damaged or not a generator exported by "
                        "train.py; pass another --saved_model") from None


def _load_keras_sampler(path):
    import keras
    import numpy as np

    generator = load_keras_generator(path)

    def forward(z, labels):
        return generator(z, labels, training=False)

    if keras.backend.backend() == "jax":  # op by op, JAX would compile every layer on its own
        import jax

        forward = jax.jit(forward)

    def sample(z, labels):
        images = forward(np.asarray(z, np.float32), np.asarray(labels, np.int32))
        return np.asarray(keras.ops.convert_to_numpy(images), np.float32)

    return sample, generator.z_dim


def _convert(keras_file, saved_model_dir):
    """`python -m tfgan_cifar.export MODEL.keras OUT_DIR`: SavedModel from a .keras generator."""
    import keras

    import tfgan_cifar.nn  # noqa: F401  (registers the model classes)

    _write_saved_model(keras.saving.load_model(keras_file), saved_model_dir)


if __name__ == "__main__":
    _convert(*sys.argv[1:3])
