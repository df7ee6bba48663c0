"""Atomic file replacement: all or nothing, with ordinary permissions."""

import os
import stat

import pytest

from tfgan_cifar import atomic


def test_replacing_writes_the_whole_file_with_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "sub" / "a.json", "{}\n")
    finally:
        os.umask(old)
    path = tmp_path / "sub" / "a.json"
    assert path.read_text() == "{}\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # readable by others, unlike mkstemp's
    assert os.listdir(tmp_path / "sub") == ["a.json"]


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.replacing(path, "wb") as f:
            f.write(b"half")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]
