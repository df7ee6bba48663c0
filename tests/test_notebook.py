"""The tour notebook: committed with its outputs, public API only, and it runs headless."""

import base64
import glob
import os
import re

import nbformat
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "cifar10_gans.ipynb")
MAX_IMAGE_BYTES = 150_000  # an embedded PNG, decoded


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def images(cell):
    return [base64.b64decode(o.data["image/png"]) for o in cell.outputs
            if "image/png" in o.get("data", {})]


def test_committed_with_its_outputs_and_the_public_api_only():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = code_cells(notebook)
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert all(cell.outputs for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    embedded = [png for cell in code for png in images(cell)]
    assert len(embedded) >= 5 and max(map(len, embedded)) < MAX_IMAGE_BYTES
    source = "\n".join(cell.source for cell in code)
    # The package through its public API and its commands' entry points only.
    imported = set(re.findall(r"^\s*(?:from|import) (tfgan_cifar\S*)", source, re.M))
    assert imported == {"tfgan_cifar", "tfgan_cifar.commands.train",
                        "tfgan_cifar.commands.sample"}, imported
    assert "tfgan_cifar.load_generator(" in source
    # No path of the machine it was run on.
    assert not re.search(r"""["'](/|~|[A-Za-z]:\\)""", source)
    assert re.search(r"finished \d+ steps", text(code[2]))


def test_runs_headless_and_samples_through_the_public_api(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # A quarter of the tour's training: what runs is the same, with one grid (every 100 steps).
    settings = code_cells(notebook)[0]
    assert "STEPS = 400 " in settings.source
    settings.source = settings.source.replace("STEPS = 400 ", "STEPS = 100 ")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's tempfile.mkdtemp lands here
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    NotebookClient(notebook, timeout=300, startup_timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}).execute()
    (work,) = glob.glob(str(tmp_path / "tfgan_tour_*"))
    code = code_cells(notebook)
    outputs = "".join(text(cell) for cell in code)

    assert "sample(8, labels=0): uint8 (8, 32, 32, 3)" in outputs
    assert "finished 100 steps" in outputs
    grids = sorted(os.listdir(os.path.join(work, "run", "samples")))
    assert grids and all(re.fullmatch(r"step_\d{6}\.png", name) for name in grids)
    pngs = sorted(glob.glob(os.path.join(work, "pngs", "*.png")))
    assert len(pngs) == 16
    for path in pngs:
        with Image.open(path) as image:
            assert image.size == (32, 32) and image.mode == "RGB"
    for name in ("sweep.png", "walk.png", "walk.gif"):
        assert os.path.getsize(os.path.join(work, name)) > 0
    # Every figure is shown; their size is checked on the committed run (400 steps): the
    # noisier images of a quarter of the training compress less.
    assert sum(len(images(cell)) for cell in code) == len(
        [png for cell in code_cells(nbformat.read(NOTEBOOK, as_version=4)) for png in images(cell)])
