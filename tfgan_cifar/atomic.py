"""Files written whole or not at all: a crash or a kill never leaves half a file behind."""

import contextlib
import os
import uuid


@contextlib.contextmanager
def replacing(path, mode="w"):
    """Opens a temporary file beside `path` for writing (`mode` "w" or "wb") and renames it onto
    `path` when the block ends. On an error the temporary file is removed and `path` is left as
    it was. The file gets the usual umask-based permissions (not mkstemp's owner-only 0600)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, mode) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Replaces `path` with `text` atomically."""
    with replacing(path) as f:
        f.write(text)
