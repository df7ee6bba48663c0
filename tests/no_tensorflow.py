"""Makes TensorFlow unimportable in this process, as on a machine with JAX and no TensorFlow.

`import tensorflow` then raises ModuleNotFoundError and importlib.util.find_spec finds nothing
(etils.epath, which JAX's compilation cache uses, asks find_spec; a finder that raised instead
would switch the cache off). Call `hide()` before anything imports Keras; a subprocess script
starts with PRELUDE (it needs this folder's path in `TESTS_DIR`).
"""

import os
import sys

MODULES = ("tensorflow", "tensorflow_datasets", "tensorboard")
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def prelude(modules=MODULES):
    """The first line of a script that hides `modules` in the process that runs it."""
    return (f"import sys; sys.path.insert(0, {TESTS_DIR!r}); import no_tensorflow; "
            f"no_tensorflow.hide({tuple(modules)!r})\n")


PRELUDE = prelude()


def hide(modules=MODULES):
    """Makes `modules` (default: MODULES) unimportable."""
    sys.modules.update(dict.fromkeys(modules))


def imported():
    """Whether TensorFlow was really imported (a hidden module is None in sys.modules)."""
    return sys.modules.get("tensorflow") is not None


def command(script, *args, modules=MODULES):
    """The argv that runs the Python file `script` with `args` in a process where `modules`
    (default: MODULES) cannot be imported."""
    return [sys.executable, "-c", prelude(modules) + f"import runpy; sys.argv = "
            f"{[script, *args]!r}; runpy.run_path({script!r}, run_name='__main__')"]


def site_folder(path):
    """Writes into the folder `path` a sitecustomize.py that hides MODULES in every Python
    process started with `path` on PYTHONPATH (a whole tree of processes, as on a machine
    without them); returns `path`."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "sitecustomize.py"), "w") as f:
        f.write(PRELUDE)
    return str(path)
