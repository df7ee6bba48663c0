"""Checks on the folders a command writes into, made before it writes anything."""

import os

from tfgan_cifar.errors import UserError

# The default folder of cached reference statistics and of the reference classifier.
CACHE_DIR = os.path.join("~", ".cache", "tfgan_cifar")


def _nearest_existing(path):
    """`path` itself, else its nearest ancestor that exists (a broken link counts)."""
    current = path
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            return current
        current = parent
    return current


def check_writable(path, flag_name):
    """Raises UserError (one line naming `flag_name`, e.g. "--workdir") unless `path` is a
    folder this process can write into, or can be created as one. Creates nothing.

    Refused: a path that is a file, or a broken symbolic link; a path under a regular file
    (e.g. `somefile/run`); a folder (or the nearest existing ancestor of a missing one) that
    this process may not write into, e.g. mode 0o555 for a user other than root, or on a
    read-only file system.

    Returns the absolute path.
    """
    name = "--" + flag_name.lstrip("-")
    flag = f"{name}={path}"
    absolute = os.path.abspath(os.path.expanduser(str(path)))
    if os.path.lexists(absolute) and not os.path.exists(absolute):
        raise UserError(f"{flag} is a broken symbolic link: remove it, or pass another "
                        f"{name}")
    if os.path.exists(absolute) and not os.path.isdir(absolute):
        raise UserError(f"{flag} is a file, not a folder: pass a folder path (it is created "
                        "if missing)")
    existing = _nearest_existing(absolute)
    if not os.path.isdir(existing):
        raise UserError(f"{flag} lies under {existing}, which is not a folder: pass a path "
                        "whose parents are folders")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "it" if existing == absolute else f"{existing}, where it would be created,"
        raise UserError(f"{flag} is not writable ({what} is read-only for this user): pass "
                        "a folder you can write to, or change its permissions")
    return absolute
