"""Registers this package's Keras layers and models as soon as Keras is loaded, so that
`keras.models.load_model` reads an exported `generator.keras` once `tfgan_cifar` is imported.

The package itself does not import Keras (loading it loads TensorFlow or JAX, and the entry
points report a bad flag before that). When Keras is already loaded, the classes are
registered at once; otherwise a one-time import hook registers them right after Keras loads.
"""

import importlib
import sys

from tfgan_cifar.import_hook import on_first_import

# Importing it registers every serializable class (keras.saving.register_keras_serializable).
REGISTERING_MODULE = "tfgan_cifar.nn"


def register_when_keras_loads():
    """Registers the classes now if Keras is loaded, else as soon as it is."""
    if "keras" in sys.modules:
        importlib.import_module(REGISTERING_MODULE)
    else:
        on_first_import("keras", _register_after)


def _register_after(load):
    load()
    importlib.import_module(REGISTERING_MODULE)
