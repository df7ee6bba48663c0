"""Curves, attention figures and weight images."""

import json

import keras
import numpy as np
from PIL import Image

from tfgan_cifar import plots
from tfgan_cifar.run_log import MetricsLog


def _records():
    train = [{"kind": "train", "step": s, "g_loss": 1 / s, "d_loss": 0.5, "d_real_acc": 0.6,
              "d_fake_acc": 0.7} for s in range(10, 110, 10)]
    evals = [{"kind": "eval", "step": s, "fid": f, "num_samples": 100}
             for s, f in ((50, 80.0), (100, 60.0), (150, 70.0))]
    return train + evals


def _size(path):
    with Image.open(path) as image:
        return image.size


def test_fid_and_loss_curves_are_written(tmp_path):
    assert plots.plot_fid(_records(), tmp_path / "fid.png")
    assert plots.plot_losses(_records(), tmp_path / "losses.png")
    assert min(_size(tmp_path / "fid.png")) > 100 and min(_size(tmp_path / "losses.png")) > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fid.png", "losses.png"]
    assert plots.best_eval(_records())["step"] == 100


def test_no_eval_records_means_no_fid_plot(tmp_path):
    train_only = [r for r in _records() if r["kind"] == "train"]
    assert not plots.plot_fid(train_only, tmp_path / "fid.png")
    assert not (tmp_path / "fid.png").exists()


def test_metrics_log_skips_a_truncated_line_and_appends_after_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(str(path))
    log.append("train", 1, {"g_loss": np.float32(0.5), "d_loss": float("nan")})
    with open(path, "a") as f:
        f.write('{"kind": "train", "st')  # a kill mid-write
    log.append("train", 2, {"g_loss": 0.25})
    records = log.records()
    assert [r["step"] for r in records] == [1, 2]
    assert records[0]["d_loss"] is None and records[0]["g_loss"] == 0.5
    assert log.last_step("train") == 2 and log.last_step("eval") == 0
    json.loads(path.read_text().splitlines()[-1])


def test_attention_figure(tmp_path):
    rng = np.random.default_rng(0)
    attention = rng.uniform(size=(256, 256))
    attention /= attention.sum(axis=1, keepdims=True)
    image = rng.uniform(-1, 1, (32, 32, 3))
    path = plots.plot_attention(image, attention, [(4, 4), (12, 8)], str(tmp_path / "a.png"))
    assert min(_size(path)) > 100
    array = plots.attention_figure_array(image, attention, [(4, 4)])
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3


def test_weight_figures_for_conv_first_and_dense_first_models(tmp_path):
    conv_first = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3),
                                   keras.layers.Flatten(), keras.layers.Dense(2)])
    dense_first = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16),
                                    keras.layers.Reshape((2, 2, 4)),
                                    keras.layers.Conv2DTranspose(3, 4, strides=2)])
    for name, model in (("conv", conv_first), ("dense", dense_first)):
        written = plots.plot_weights(model, str(tmp_path / name))
        assert [p.rsplit("/", 1)[1] for p in written] == [f"{name}_filters.png",
                                                          f"{name}_histograms.png"]
        assert all(min(_size(p)) > 50 for p in written)
