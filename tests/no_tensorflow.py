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
PRELUDE = (f"import sys; sys.path.insert(0, {TESTS_DIR!r}); import no_tensorflow; "
           "no_tensorflow.hide()\n")


def hide():
    """Makes the MODULES unimportable."""
    sys.modules.update(dict.fromkeys(MODULES))


def imported():
    """Whether TensorFlow was really imported (a hidden module is None in sys.modules)."""
    return sys.modules.get("tensorflow") is not None
