"""The course notebook: committed without outputs, and it runs headless end to end."""

import base64
import io
import json
import math
import os
import re

import nbformat
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "cifar10_gans.ipynb")


def _stream_text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _execute(notebook, env, monkeypatch):
    """Runs `notebook` in a fresh python3 kernel (this interpreter) from the notebooks folder."""
    from nbclient import NotebookClient

    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    client = NotebookClient(notebook, timeout=240, startup_timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}})
    return client.execute()


def test_notebook_is_committed_clean_and_trains_nothing_by_default():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert re.search(r"^TRAIN = False\b", code[0].source, re.M)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "loop.train(" in "".join(cell.source for cell in code)
    assert "export.load_sampler" in code[-1].source


@pytest.fixture(scope="module")
def saved_dcgan(tmp_path_factory):
    """<tmp>/saved_models/dcgan/best (a tiny DCGAN, as training publishes it), <tmp>/logs/sagan/
    export/final (a tiny SAGAN trained without FID: no best model) and a DCGAN run in <tmp>/logs."""
    import keras

    from tfgan_cifar import export
    from tfgan_cifar.config import TrainConfig
    from tfgan_cifar.nn import build_models
    from tfgan_cifar.run_dir import MetricsLog, RunDir

    tmp = tmp_path_factory.mktemp("notebook")
    workdir = tmp / "logs" / "dcgan"
    keras.utils.set_random_seed(0)
    config = TrainConfig(model="dcgan", width=4, z_dim=8, num_classes=3, workdir=str(workdir),
                         save_dir=str(tmp / "saved_models"), fid_samples=10).resolved()
    generator = build_models(config)[0].build_weights()
    info = {"step": 200, "fid": 321.5, "kid": 0.25, "kid_std": 0.01, "num_samples": 10,
            "reference": "folder:/data/cifar10/test", "workdir": str(workdir),
            "config": json.loads(config.to_json())}
    export.export_model(generator, str(tmp / "saved_models" / "dcgan" / "best"), info)
    sagan = TrainConfig(model="sagan", width=4, z_dim=8, num_classes=3,
                        workdir=str(tmp / "logs" / "sagan"), save_dir=str(tmp / "saved_models"),
                        eval_every=0).resolved()
    export.export_model(build_models(sagan)[0].build_weights(),
                        RunDir(sagan.workdir).export_dir("final"),
                        {"step": 50, "final": True, "workdir": sagan.workdir,
                         "config": json.loads(sagan.to_json())})
    os.makedirs(workdir)
    log = MetricsLog(str(workdir / "metrics.jsonl"))
    from tfgan_cifar.metrics import classifier as classifier_lib

    classifier_lib.save(classifier_lib.build_classifier(3, width=4), str(tmp / "c3.keras"), {})
    for step, fid in ((100, 400.0), (200, 321.5)):
        log.append("train", step, {"g_loss": 1.0, "d_loss": 1.2})
        log.append("eval", step, {"fid": fid, "kid": 0.3, "kid_std": 0.01, "num_samples": 10,
                                  "reference": "folder:/data/cifar10/test"})
    return tmp


def test_notebook_shows_and_scores_the_saved_generators(saved_dcgan, cifar_like_dir,
                                                         inception_weights_file, tmp_path,
                                                         monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env = {"TFGAN_SAVE_DIR": str(saved_dcgan / "saved_models"),
           "TFGAN_LOGS": str(saved_dcgan / "logs"),
           "TFGAN_TEST_DIR": str(cifar_like_dir / "test"),
           "TFGAN_INCEPTION_WEIGHTS": inception_weights_file,
           "TFGAN_FID_SAMPLES": "6",
           "TFGAN_FID_CACHE": str(tmp_path / "fid_cache"),
           "TFGAN_CLASSIFIER": str(saved_dcgan / "c3.keras")}
    _execute(notebook, env, monkeypatch)  # raises CellExecutionError if any cell fails

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "nothing is trained" in "".join(_stream_text(cell) for cell in code)
    curves = [cell for cell in code if "plot_fid_curves" in cell.source][0]
    assert "dcgan: 200 steps logged, best FID 321.50 at step 200" in _stream_text(curves)
    assert any("image/png" in o.get("data", {}) for o in curves.outputs)

    last = code[-1]
    text = _stream_text(last)
    assert "DCGAN, best generator of step 200:" in text
    assert "SAGAN, final generator of step 50, row r = class r:" in text
    grids = [o for o in last.outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(grids) == 2
    for output in grids:
        grid = Image.open(io.BytesIO(base64.b64decode(output.data["image/png"])))
        side = 8 * (32 + 2) + 2  # grids.image_grid: 8x8 tiles of 32 pixels, 2-pixel padding
        assert grid.size[0] == grid.size[1] and grid.size[0] % side == 0
    assert "6 generated images vs 6 CIFAR-10 test images" in text
    row = re.search(r"^dcgan\s+(\S+)\s+(\S+)\s+(\S+)\s+6\s+200\s+321\.50", text, re.M)
    assert row, text
    fid, kid = float(row.group(1)), float(row.group(2))
    assert math.isfinite(fid) and math.isfinite(kid)
    row = re.search(r"^sagan\s+(\S+)\s+(\S+)\s+(\S+)\s+6\s+50\s+-$", text, re.M)
    assert row and math.isfinite(float(row.group(1))), text
    # The reference classifier's metrics: class accuracy for the conditional SAGAN only.
    assert "6 generated images vs folder:" in text
    row = re.search(r"^dcgan\s+(\S+)\s+nan\s+(\S+)\s+(\S+)\s+(\S+)$", text, re.M)
    assert row and all(math.isfinite(float(v)) for v in row.groups()), text
    row = re.search(r"^sagan(\s+\S+){5}$", text, re.M)
    assert row and "nan" not in row.group(0), text
    # Reference statistics were cached: Inception's and the classifier's.
    assert len(os.listdir(tmp_path / "fid_cache")) == 2
