"""Registers this package's Keras layers and models as soon as Keras is loaded, so that
`keras.models.load_model` reads an exported `generator.keras` once `tfgan_cifar` is imported.

The package itself does not import Keras (loading it loads TensorFlow or JAX, and the entry
points report a bad flag before that). When Keras is already loaded, the classes are
registered at once; otherwise a one-time import hook registers them right after Keras loads.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# Importing it registers every serializable class (keras.saving.register_keras_serializable).
REGISTERING_MODULE = "tfgan_cifar.nn"


def register_when_keras_loads():
    """Registers the classes now if Keras is loaded, else as soon as it is."""
    if "keras" in sys.modules:
        importlib.import_module(REGISTERING_MODULE)
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds `keras` as the other finders do, and registers the classes once it is loaded."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # once: the real finders locate the package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """Keras's own loader, followed by the import of REGISTERING_MODULE."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # resource readers and the like: Keras's loader's own
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        importlib.import_module(REGISTERING_MODULE)
