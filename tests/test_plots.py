"""metrics.jsonl reading, curves, attention figures and weight images."""

import json
import logging

import keras
import numpy as np
import pytest
from PIL import Image

from tfgan_cifar import run_dir
from tfgan_cifar.run_dir import MetricsLog
from tfgan_cifar.viz import curves, figure_files, internals


def _records():
    train = [{"kind": "train", "step": s, "g_loss": 1 / s, "d_loss": 0.5, "d_real_acc": 0.6,
              "d_fake_acc": 0.7, "gamma/generator/attention16": s / 1000}
             for s in range(10, 160, 10)]
    evals = [{"kind": "eval", "step": s, "fid": f, "kid": 0.03, "kid_std": 0.002,
              "num_samples": 100, "cls_train_loss": 2 / s, "cls_train_acc": 0.5,
              "cls_test_loss": 3 / s, "cls_test_acc": 0.4}
             for s, f in ((50, 80.0), (100, 60.0), (150, 70.0))]
    return train + evals


def _size(path):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


def test_metrics_log_deduplicates_sorts_and_skips_a_truncated_line(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    _write_lines(path, [
        json.dumps({"kind": "train", "step": 20, "g_loss": 2.0}),
        json.dumps({"kind": "eval", "step": 20, "fid": 90.0}),
        json.dumps({"kind": "train", "step": 10, "g_loss": 1.0}),
        '{"kind": "train", "st',  # killed mid-write, then resumed
        json.dumps([1, 2]), json.dumps({"kind": "train", "step": "3"}),  # JSON, not records
        json.dumps({"kind": "train", "step": 20, "g_loss": 3.0}),  # the resumed run's record
    ])
    with open(path, "a") as f:
        f.write('{"kind": "eval", "step": 30, "fi')  # truncated last line, no newline
    with caplog.at_level(logging.WARNING):
        records = MetricsLog(str(path)).records()
    assert [(r["kind"], r["step"]) for r in records] == [("train", 10), ("train", 20),
                                                         ("eval", 20)]
    assert records[1]["g_loss"] == 3.0  # the last record for (train, 20) wins
    assert sum("unreadable line" in m for m in caplog.messages) == 4
    assert MetricsLog(str(tmp_path / "missing.jsonl")).records() == []


def test_metrics_log_reads_what_it_writes(tmp_path):
    log = MetricsLog(str(tmp_path / "metrics.jsonl"))
    log.append("train", 1, {"g_loss": np.float32(0.5), "d_loss": float("nan")})
    with open(log.path, "a") as f:
        f.write('{"kind": "train", "st')  # a kill mid-write
    log.append("train", 2, {"g_loss": 0.25})
    records = log.records()
    assert [r["step"] for r in records] == [1, 2] == [r["step"] for r in log.records("train")]
    assert records[0]["d_loss"] is None and records[0]["g_loss"] == 0.5


def test_best_eval_is_the_lowest_fid_after_deduplication():
    records = _records()
    assert run_dir.best_eval(records)["step"] == 100
    # a resumed run re-evaluated step 100 worse: that last record counts
    records.append({"kind": "eval", "step": 100, "fid": 75.0, "num_samples": 100})
    assert run_dir.best_eval(records)["step"] == 150
    assert run_dir.best_eval(records, key="kid")["kind"] == "eval"
    assert run_dir.best_eval([r for r in records if r["kind"] == "train"]) is None


@pytest.mark.parametrize("plot, name", [
    (curves.plot_fid, "fid.png"), (curves.plot_losses, "losses.png"),
    (curves.plot_classifier, "classifier.png"),
    (lambda records, path: curves.plot_fid_curves({"a": records, "b": records[::2]}, path),
     "runs.png"),
])
def test_curves_are_written_atomically(tmp_path, plot, name):
    assert plot(_records(), tmp_path / name) is True
    width, height = _size(tmp_path / name)
    assert width > 100 and height > 100
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_no_records_means_no_plot(tmp_path):
    train_only = [r for r in _records() if r["kind"] == "train"]
    assert curves.plot_fid(train_only, tmp_path / "fid.png") is False
    assert curves.plot_fid_curves({"a": train_only}, tmp_path / "runs.png") is False
    assert curves.plot_classifier(train_only, tmp_path / "cls.png") is False
    assert curves.plot_losses([], tmp_path / "losses.png") is False
    assert list(tmp_path.iterdir()) == []


def test_fid_axis_label_names_the_sample_count(tmp_path):
    evals = [r for r in _records() if r["kind"] == "eval"]
    assert curves._fid_label(evals) == "FID (Keras InceptionV3), 100 samples vs CIFAR-10 test"
    standard = [{**r, "fid_network": "standard"} for r in evals]
    assert curves._fid_label(standard) == "FID, 100 samples vs CIFAR-10 test"


def test_save_figure_removes_its_temporary_file_when_writing_fails(tmp_path):
    fig = figure_files.new_figure((2, 2))
    fig.add_subplot().plot([0, 1])
    fig.savefig = lambda *args, **kwargs: (_ for _ in ()).throw(OSError("disk full"))
    with pytest.raises(OSError):
        figure_files.save_figure(fig, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_attention_figure(tmp_path):
    rng = np.random.default_rng(0)
    attention = rng.uniform(size=(256, 256))
    attention /= attention.sum(axis=1, keepdims=True)
    image = rng.uniform(-1, 1, (32, 32, 3))
    queries = [(4, 4), (4, 12), (12, 4), (12, 12)]
    path = internals.plot_attention(image, attention, queries, str(tmp_path / "a.png"))
    width, height = _size(path)
    assert width > 100 and height > 100 and width > 3 * height
    array = internals.attention_figure_array(image, attention, queries)
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    assert min(array.shape[:2]) > 100 and array.std() > 0
    with pytest.raises(ValueError):
        internals.attention_figure_array(image, attention[0], queries)


def test_weight_figures_for_conv_first_and_dense_first_models(tmp_path):
    conv_first = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3),
                                   keras.layers.Flatten(), keras.layers.Dense(2)])
    dense_first = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16),
                                    keras.layers.Reshape((2, 2, 4)),
                                    keras.layers.Conv2DTranspose(5, 3, strides=2)])
    for name, model in (("conv", conv_first), ("dense", dense_first)):
        written = internals.plot_weights(model, str(tmp_path / name))
        assert [p.rsplit("/", 1)[1] for p in written] == [f"{name}_filters.png",
                                                          f"{name}_histograms.png"]
        assert all(min(_size(p)) > 100 for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "conv_filters.png", "conv_histograms.png", "dense_filters.png", "dense_histograms.png"]


def test_filter_mosaic_places_each_normalised_filter_in_its_tile():
    rng = np.random.default_rng(0)
    filters = rng.normal(size=(5, 3, 2, 3)) * np.arange(1, 6)[:, None, None, None]
    mosaic = internals.filter_mosaic(filters, cols=2, border=1)
    assert mosaic.shape == (3 * 4 - 1, 2 * 3 - 1, 3)
    for i in range(5):
        top, left = (i // 2) * 4, (i % 2) * 3
        tile = mosaic[top:top + 3, left:left + 2]
        np.testing.assert_allclose(tile, (filters[i] - filters[i].min()) / np.ptp(filters[i]),
                                   atol=1e-9)
    np.testing.assert_array_equal(mosaic[3], 1.0)  # the border row between tile rows
    np.testing.assert_array_equal(mosaic[8:, 3:], 1.0)  # the sixth tile is empty


def test_first_layer_filters_orientation():
    conv = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3)])
    path, shape, filters = internals.first_layer_filters(conv)
    assert shape == (3, 3, 3, 8) and filters.shape == (8, 3, 3, 3) and path.endswith("kernel")
    kernel = keras.ops.convert_to_numpy(conv.weights[0])
    np.testing.assert_allclose(filters[2], kernel[..., 2])
    deconv = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16),
                               keras.layers.Reshape((2, 2, 4)),
                               keras.layers.Conv2DTranspose(5, 3, strides=2)])
    _, shape, filters = internals.first_layer_filters(deconv)  # the Dense kernel is 2-D: skipped
    assert shape == (3, 3, 5, 4) and filters.shape == (5, 3, 3, 1)
    kernel = keras.ops.convert_to_numpy(deconv.layers[-1].kernel)
    np.testing.assert_allclose(filters[1, ..., 0], kernel[:, :, 1, :].mean(axis=-1), rtol=1e-6)
    assert internals.first_layer_filters(keras.Sequential([keras.Input((4,)),
                                                       keras.layers.Dense(2)])) is None
