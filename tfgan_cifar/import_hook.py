"""One-time hooks on the import of a package: run something around, or right after, the
package's own loading, without importing it early.

`tf_log_filter` filters TensorFlow's load-time log lines this way, and `serializables`
registers the package's Keras classes as soon as Keras loads.
"""

import importlib.abc
import importlib.util
import sys


def on_first_import(name, around):
    """Makes the next `import name` call `around(load)`, where `load()` executes the package as
    its own loader would; `around` must call it. Installed once per (name, around)."""
    if not any(isinstance(finder, _OneShotFinder) and finder.name == name
               and finder.around is around for finder in sys.meta_path):
        sys.meta_path.insert(0, _OneShotFinder(name, around))


class _OneShotFinder(importlib.abc.MetaPathFinder):
    """Finds package `name` as the other finders do, and wraps its loader; then steps aside."""

    def __init__(self, name, around):
        self.name, self.around = name, around

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)  # once: the real finders locate the package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _WrappedLoader(spec.loader, self.around)
        return spec


class _WrappedLoader(importlib.abc.Loader):
    """The package's own loader, its exec_module called through `around`."""

    def __init__(self, loader, around):
        self._loader, self._around = loader, around

    def __getattr__(self, name):  # resource readers and the like: the package loader's own
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._around(lambda: self._loader.exec_module(module))
