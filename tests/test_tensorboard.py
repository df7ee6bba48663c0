"""TensorBoard: the run's settings as hparams with its final and best metrics, and as text;
and the live progress bar when stderr is a terminal (a tiny run, read back from the events)."""

import glob
import io
import json
import sys

import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import metadata as hparams_metadata

from tfgan_cifar.config import TrainConfig
from tfgan_cifar.run_dir import RunDir
from tiny_runs import train_eagerly


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def read_events(workdir):
    """{tag: [(step, summary value)]} of every event file in `workdir`."""
    found = {}
    for path in sorted(glob.glob(f"{workdir}/events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value))
    return found


def hparams_value(value):
    kind = value.WhichOneof("kind")
    return {"string_value": value.string_value, "number_value": value.number_value,
            "bool_value": value.bool_value}[kind]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cifar_like_dir, inception_weights_file):
    """A 4-step DCGAN with FID at steps 2 and 4, trained with stderr a (fake) terminal;
    returns (config, what reached stderr, what reached stdout)."""
    tmp = tmp_path_factory.mktemp("tensorboard")
    config = TrainConfig(
        model="dcgan", conditional=True, image_dir=str(cifar_like_dir / "train"),
        workdir=str(tmp / "run"), save_dir=str(tmp / "saved"), width=4, z_dim=8, batch_size=4,
        steps=4, log_every=2, sample_every=0, checkpoint_every=0, num_classes=3, seed=0,
        eval_every=2, fid_samples=6, inception_weights=inception_weights_file,
        fid_reference_dir=str(cifar_like_dir / "test"), fid_cache_dir=str(tmp / "cache"),
        attention_res=(8, 16)).resolved()
    terminal, out = FakeTerminal(), io.StringIO()
    stderr, stdout = sys.stderr, sys.stdout
    sys.stderr, sys.stdout = terminal, out
    try:
        config = train_eagerly(config)
    finally:
        sys.stderr, sys.stdout = stderr, stdout
    return config, terminal.getvalue(), out.getvalue()


def test_the_config_is_the_runs_hparams_with_final_and_best_metrics(tiny_run):
    config, _, _ = tiny_run
    events = read_events(config.workdir)
    plugin = [value for values in events.values() for _, value in values
              if value.metadata.plugin_data.plugin_name == hparams_metadata.PLUGIN_NAME]
    experiment = [hparams_metadata.parse_experiment_plugin_data(v.metadata.plugin_data.content)
                  for v in plugin if v.tag == hparams_metadata.EXPERIMENT_TAG]
    start = [hparams_metadata.parse_session_start_info_plugin_data(
        v.metadata.plugin_data.content) for v in plugin
        if v.tag == hparams_metadata.SESSION_START_INFO_TAG]
    assert len(experiment) == 1 and len(start) == 1

    hparams = {name: hparams_value(value) for name, value in start[0].hparams.items()}
    assert hparams["model"] == "dcgan" and hparams["conditional"] is True
    assert hparams["steps"] == 4 and hparams["lr_g"] == pytest.approx(config.lr_g)
    assert hparams["attention_res"] == "8,16"  # a sequence, joined
    recorded = json.loads(config.to_json())
    assert {name for name, value in recorded.items() if value is not None} == set(hparams)
    assert {info.name for info in experiment[0].hparam_infos} == set(hparams)

    tags = {info.name.tag for info in experiment[0].metric_infos}
    assert {"loss/generator", "loss/discriminator", "eval/fid", "eval/kid", "best/fid",
            "best/kid"} <= tags
    assert "best/fd_classifier" not in tags  # no --classifier
    # Every metric the dashboard lists was written, its last value the final one.
    for tag in tags:
        assert tag in events, tag
    evals = RunDir(config.workdir).metrics.records("eval")
    assert [r["step"] for r in evals] == [2, 4]
    (step, best), = events["best/fid"]
    assert step == 4
    assert tf.make_ndarray(best.tensor) == pytest.approx(min(r["fid"] for r in evals), rel=1e-6)
    last_step, last = events["loss/generator"][-1]
    assert last_step == 4
    assert tf.make_ndarray(last.tensor) == pytest.approx(
        RunDir(config.workdir).metrics.records("train")[-1]["g_loss"], rel=1e-6)


def test_the_config_as_text(tiny_run):
    config, _, _ = tiny_run
    (step, value), = read_events(config.workdir)["config"]
    text = tf.make_ndarray(value.tensor).item().decode()
    assert text.startswith("```json\n") and text.endswith("\n```")
    assert json.loads(text[len("```json\n"):-len("\n```")]) == json.loads(config.to_json())


def test_a_live_bar_on_a_terminal_instead_of_log_lines(tiny_run):
    _, terminal, out = tiny_run
    assert "4/4" in terminal and "img/s:" in terminal and "g_loss:" in terminal
    assert "step 2/4 |" not in out and "step 4/4 |" not in out
    assert "eval step 2:" in out and "finished 4 steps" in out
