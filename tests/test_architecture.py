"""ARCHITECTURE.md names only modules that exist."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "tfgan_cifar")
SUBPACKAGES = ("training", "metrics", "nn", "viz", "report", "reference_classifier")


FOLDERS = (PACKAGE, ROOT, *(os.path.join(PACKAGE, name) for name in SUBPACKAGES),
           os.path.join(PACKAGE, "commands"), os.path.join(ROOT, "bench"),
           os.path.join(ROOT, "tests"))


def _exists(path):
    """A path named in the document: a file or package under the package or the repository,
    or a bare file name in one of their folders (the tables list a folder's files by name)."""
    bases = FOLDERS if "/" not in path else (PACKAGE, ROOT)
    return any(os.path.exists(os.path.join(base, path)) or
               os.path.exists(os.path.join(base, path + ".py")) for base in bases)


def test_every_module_architecture_md_names_exists():
    text = open(os.path.join(ROOT, "ARCHITECTURE.md"), encoding="utf-8").read()
    files = set(re.findall(r"(?<![\w>])[\w/]+\.py\b", text))  # not nn/<name>.py
    modules = set(re.findall(rf"\b(?:{'|'.join(SUBPACKAGES)})/\w+", text))
    assert len(files) > 20 and len(modules) > 20  # the document names its modules
    missing = sorted(path for path in files | modules if not _exists(path))
    assert not missing, f"ARCHITECTURE.md names modules that do not exist: {missing}"


def test_the_finder_notices_a_missing_module():
    assert _exists("metric_schema.py") and _exists("training/objective")
    assert not _exists("metrics/classifier") and not _exists("evaluate_helpers.py")
    assert _exists("resnet.py") and not _exists("sagan.py")  # a bare name, in nn/ or not
