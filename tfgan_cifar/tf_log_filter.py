"""Keeps TensorFlow's C++ log lines out of the entry points' output, unless asked for.

Without this, every TensorFlow run prints lines such as `E0000 ... cuda_platform.cc:52] failed
call to cuInit` and `I0000 ... cudart_stub.cc] Could not find cuda drivers on your machine`
(harmless: there is no GPU), on CPUs with AVX-512 `I0000 ... port.cc:153] oneDNN custom
operations are on` (printed before absl logging starts, so no log level hides it; setting
TF_ENABLE_ONEDNN_OPTS=0 would hide it by turning oneDNN's CPU speed-ups off), and on some machines `E0000 ... remapper failed: INVALID_ARGUMENT`
(harmless too: grappler skips a graph rewrite and runs the graph as written); next to the one
`error:` line of a real failure they read like a crash. `quiet_tensorflow()`, called by
`tfgan_cifar.cli`, which every entry point imports before anything imports TensorFlow:

- sets TF_CPP_MIN_LOG_LEVEL=3 (only FATAL C++ messages; "2" still shows the E0000 lines),
- filters the lines TensorFlow's libraries write while they load (before its logging is set
  up, so no level hides them) out of stderr during `import tensorflow`; other lines written
  then are passed on.

Nothing changes when the user set TF_CPP_MIN_LOG_LEVEL in the environment the process started
with (`TF_CPP_MIN_LOG_LEVEL=0 python train.py ...` shows everything), or when TensorFlow is
already imported. Child processes inherit the quiet level, marked as this module's default.
"""

import os
import sys
import tempfile

from tfgan_cifar.import_hook import on_first_import

VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
LEVEL = "3"
MARKER = "TFGAN_CIFAR_QUIET_TF"  # set beside VARIABLE: "this level is our default"
# Lines TensorFlow's shared libraries print while they load, at any TF_CPP_MIN_LOG_LEVEL.
LOAD_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "cuInit",
    "Could not find cuda drivers",
    "oneDNN custom operations are on",
)


def _initial_environment():
    """The environment this process started with: os.environ may already hold defaults an
    entry point set before importing this package (train.py's TF_CPP_MIN_LOG_LEVEL=2)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return dict(os.environ)
    pairs = (entry.decode(errors="replace").partition("=") for entry in entries if entry)
    return {name: value for name, _, value in pairs}


def user_set_level():
    """Whether the user chose TF_CPP_MIN_LOG_LEVEL (not this module in a parent process)."""
    initial = _initial_environment()
    if VARIABLE not in initial:
        return False
    return initial.get(MARKER) != initial[VARIABLE]


def quiet_tensorflow():
    """Quiets TensorFlow's C++ logging as the module docstring says; returns whether it did."""
    if "tensorflow" in sys.modules or user_set_level():
        return False
    os.environ[VARIABLE] = LEVEL
    os.environ[MARKER] = LEVEL
    on_first_import("tensorflow", _load_filtered)
    return True


def _load_filtered(load):
    with filtered_stderr(LOAD_NOISE):
        load()


class filtered_stderr:
    """Context manager: what is written to file descriptor 2 inside it (by Python or C++) is
    held in a temporary file and written out at the end, less the lines containing any of
    `noise`. Does nothing when descriptor 2 cannot be duplicated."""

    def __init__(self, noise):
        self.noise = tuple(noise)
        self._saved = self._held = None

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            return self
        self._held = tempfile.TemporaryFile()
        os.dup2(self._held.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._held.seek(0)
        kept = [line for line in self._held.read().splitlines(keepends=True)
                if not any(n.encode() in line for n in self.noise)]
        self._held.close()
        data = b"".join(kept)
        while data:
            data = data[os.write(2, data):]
        return False
