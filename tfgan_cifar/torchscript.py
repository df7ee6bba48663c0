"""The tensors of a TorchScript archive, read with `zipfile` and `pickle` alone (no torch).

A TorchScript archive is a zip holding `<root>/data.pkl`, a pickle of the module tree in which
each tensor is a `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` call and
each storage a persistent id `("storage", <type>, <key>, <device>, <numel>)` naming the raw
little-endian bytes in `<root>/data/<key>`.
"""

import pickle
import zipfile

import numpy as np

# torch storage types -> NumPy dtypes (little-endian, as TorchScript writes them).
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?",
}

# Module attributes typed List[int] etc. are pickled as calls of these.
LIST_BUILDERS = ("build_intlist", "build_doublelist", "build_boollist")


class ArchiveError(ValueError):
    """The file is not a TorchScript archive this reader understands."""


class _Module:
    """Stands for any scripted module class: keeps the attributes the pickle sets."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {})


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *unused):
    itemsize = storage.dtype.itemsize
    if not size:
        return storage[offset].copy()
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride))
    return np.array(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, root):
        super().__init__(file)
        self._archive, self._root = archive, root

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch.jit._pickle" and name in LIST_BUILDERS:
            return list
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module.startswith("__torch__"):
            return _Module
        raise ArchiveError(f"unexpected object {module}.{name} in the archive")

    def persistent_load(self, pid):
        kind, storage_type, key, _device, numel = pid
        if kind != "storage":
            raise ArchiveError(f"unexpected persistent id {pid!r}")
        raw = self._archive.read(f"{self._root}/data/{key}")
        return np.frombuffer(raw, storage_type.dtype, count=numel)


def read_tensors(path):
    """Reads every tensor of a TorchScript archive.

    Args:
        path: the archive (a `.pt` file written by `torch.jit.save`) or an open binary file.

    Returns:
        dict of dotted module path (e.g. "net.layers.conv.weight") -> NumPy array, in the order
        the module tree lists them.

    Raises:
        ArchiveError (a ValueError): not a zip, no `data.pkl`, or objects this reader does not
            know.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ArchiveError(f"not a zip archive ({error})") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ArchiveError("no <root>/data.pkl inside: not a TorchScript archive")
        root = pickles[0].split("/")[0]
        with archive.open(pickles[0]) as file:
            try:
                tree = _Unpickler(file, archive, root).load()
            except (pickle.UnpicklingError, KeyError, EOFError, TypeError) as error:
                raise ArchiveError(f"unreadable data.pkl ({error})") from None
    tensors = {}
    _collect(tree, "", tensors)
    return tensors


def _collect(node, prefix, out):
    for name, value in vars(node).items():
        if isinstance(value, np.ndarray):
            out[prefix + name] = value
        elif isinstance(value, _Module):
            _collect(value, f"{prefix}{name}.", out)
