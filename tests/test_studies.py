"""The study flags on the TensorFlow trainer: multi-task D, experience replay, gradient penalty,
and the class rows evaluate.py draws with a classifier head (tiny models, CPU)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgan_cifar import data, evaluate_model, evaluation_samples, export, metric_schema
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.metrics.evaluator import Evaluator, classifier_metrics
from tfgan_cifar.nn.base import nested_layers
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.training import loop, objective, replay
from tfgan_cifar.training.tf_backend import TFTrainer
from tiny_runs import tiny_config

# Six classes, so that an untrained head is all but never right on every one of them by chance.
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 70, 230),
           "yellow": (230, 220, 50), "magenta": (210, 50, 210), "gray": (128, 128, 128)}


@pytest.fixture(scope="session")
def separable_dir(tmp_path_factory):
    """train/ and test/ with three classes told apart by colour, with pixel noise."""
    root = tmp_path_factory.mktemp("separable")
    rng = np.random.default_rng(1)
    for split, count in (("train", 16), ("test", 10)):
        for name, colour in COLOURS.items():
            os.makedirs(root / split / name)
            for i in range(count):
                pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (32, 32, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i}.png")
    return root


def tiny(model, image_dir, workdir, **overrides):
    """A tiny run on the separable classes."""
    return tiny_config(model, image_dir, workdir, **{"num_classes": len(COLOURS), **overrides})

# Multi-task discriminator.

def test_classifier_head_learns_separable_classes_and_is_logged(separable_dir, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setattr(Evaluator, "create", classmethod(lambda cls, config: None))  # no FID
    config = tiny("dcgan", separable_dir / "train", tmp_path / "run", class_head=True,
                  steps=40, log_every=10, eval_every=20, batch_size=12)
    test_set = data.load_image_folder(str(separable_dir / "test"))
    untrained = TFTrainer(config, data.load_image_folder(config.image_dir))
    loss_before, accuracy_before = classifier_metrics(untrained.class_logits, test_set.images,
                                                      test_set.labels)
    loop.train(config)

    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [20, 40]
    assert "fid" not in evals[0]  # FID was off; the head was still evaluated
    last = evals[-1]
    assert accuracy_before < 0.9  # untrained: near chance (1/6)
    assert last["cls_test_acc"] >= 0.95
    assert last["cls_test_loss"] < loss_before / 3
    assert 0 <= last["cls_train_acc"] <= 1 and np.isfinite(last["cls_train_loss"])
    trains = [r for r in records if r["kind"] == "train"]
    assert all({"cls_loss", "cls_acc"} <= set(r) for r in trains)
    assert all(metric_schema.lookup(key) for r in records for key in r
               if key not in ("kind", "step"))  # every logged value is declared
    assert os.path.getsize(tmp_path / "run" / "classifier.png") > 0


def test_head_adds_weighted_cross_entropy_to_d_loss():
    config = TrainConfig(model="dcgan", class_head=True, aux_weight=0.5).resolved()
    from tfgan_cifar.training.losses import LOSSES

    real, fake = tf.constant([1.0, -2.0]), tf.constant([0.5, -1.0])
    class_logits, labels = tf.constant([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), tf.constant([0, 1])
    total, metrics = objective.discriminator_total(config, LOSSES["bce"], real, fake,
                                                   class_logits, labels)
    log_p = tf.nn.log_softmax(class_logits).numpy()
    cross_entropy = -(log_p[0, 0] + log_p[1, 1]) / 2
    assert float(metrics["cls_loss"]) == pytest.approx(cross_entropy, rel=1e-6)
    assert float(metrics["cls_acc"]) == 0.5
    assert float(total) == pytest.approx(float(metrics["d_loss"]) + 0.5 * cross_entropy,
                                         rel=1e-6)


def test_exported_head_sorts_unconditional_samples(separable_dir, tmp_path, capsys):
    config = tiny("dcgan", separable_dir / "train", tmp_path / "run", class_head=True)
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    info = {"step": 0, "workdir": config.workdir, "config": json.loads(config.to_json())}
    path = export.export_model(trainer.export_generator(), str(tmp_path / "best"), info,
                               discriminator=trainer.export_discriminator())
    probabilities = evaluation_samples.class_head(path)
    images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    expected = tf.nn.softmax(trainer.class_logits(images)).numpy()
    np.testing.assert_allclose(probabilities(images), expected, rtol=1e-5, atol=1e-6)
    assert evaluation_samples.class_head(str(tmp_path)) is None  # no discriminator.keras

    outputs = evaluate_model.run(evaluate_model.EvaluateOptions(
        model="dcgan", saved_model=path, output_dir=str(tmp_path / "out"), fid=False))
    assert "sorted by the discriminator's classifier head" in capsys.readouterr().out
    with Image.open(outputs["class_grid"]) as grid:  # a labelled row of 34-pixel cells per class
        assert grid.size[1] == 2 * (len(COLOURS) * 34 + 2)


def test_class_rows_pick_the_most_confident_samples_of_each_class():
    config = TrainConfig(model="dcgan", num_classes=3).resolved()

    def sample(z, labels):  # the first noise value, as the image's brightness
        return np.broadcast_to(np.tanh(z[:, :1, None, None]), (len(z), 32, 32, 3))

    def classifier(images):  # dark -> class 0, middle -> 1, bright -> 2
        value = images[:, 0, 0, 0]
        scores = np.stack([-value, -np.abs(value) + 0.2, value], axis=1) * 10
        return np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)

    images, names = evaluation_samples.class_rows(sample, config.z_dim, config,
                                                  np.random.default_rng(0), classifier,
                                                  per_class=4)
    assert images.shape == (12, 32, 32, 3) and names == ["0", "1", "2"]
    brightness = images[:, 0, 0, 0].reshape(3, 4)
    assert (brightness[0] < -0.5).all() and (np.abs(brightness[1]) < 0.1).all()
    assert (brightness[2] > 0.5).all()
    rows, labels = evaluation_samples.class_rows(sample, config.z_dim, config,
                                                 np.random.default_rng(0), None, per_class=4)
    assert rows.shape == (12, 32, 32, 3) and labels == ["unsorted"] * 3


# Experience replay.

def test_mix_takes_the_configured_rows_from_the_filled_part_of_the_buffer():
    buffer = np.arange(8, dtype=np.float32)[:, None, None, None] * np.ones((8, 2, 2, 3))
    buffer_labels = np.arange(8, dtype=np.int32) + 100
    fresh = -np.ones((4, 2, 2, 3), np.float32)
    position = np.array([0.999, 0.3, 0.5, 0.1], np.float32)
    images, labels, replayed = (np.asarray(a) for a in replay.mix(
        fresh, np.zeros(4, np.int32), buffer, buffer_labels, 5, position, 2))
    np.testing.assert_array_equal(replayed, [1, 1, 0, 0])
    np.testing.assert_array_equal(images[:2, 0, 0, 0], [4, 1])  # floor(position x 5 filled)
    np.testing.assert_array_equal(labels, [104, 101, 0, 0])
    assert (images[2:] == -1).all()
    _, _, none = replay.mix(fresh, np.zeros(4, np.int32), buffer, buffer_labels, 0, position, 2)
    assert float(np.sum(none)) == 0  # an empty buffer replays nothing
    np.testing.assert_array_equal(np.asarray(replay.write_rows(6, 4, 8)), [6, 7, 0, 1])


def test_replay_draws_uniformly_from_the_filled_rows():
    size, filled, draws = 8, 5, 1000
    buffer = np.arange(size, dtype=np.float32)[:, None, None, None] * np.ones((size, 1, 1, 1))
    position = (np.arange(draws, dtype=np.float32) + 0.5) / draws  # evenly spread in [0, 1)
    images, _, _ = replay.mix(np.zeros((draws, 1, 1, 1), np.float32), np.zeros(draws, np.int32),
                              buffer, np.zeros(size, np.int32), filled, position, draws)
    counts = np.bincount(np.asarray(images).astype(int).ravel(), minlength=size)
    np.testing.assert_array_equal(counts, [200] * filled + [0] * (size - filled))


@pytest.mark.parametrize("fraction,expected", [(0.25, 1), (1.0, 4)])
def test_replay_draws_the_configured_fraction_from_the_buffer(separable_dir, tmp_path, fraction,
                                                             expected):
    config = tiny("dcgan", separable_dir / "train", tmp_path, replay_size=8,
                  replay_fraction=fraction, conditional=True)
    assert replay.replay_count(config.replay_fraction, config.batch_size) == expected
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    trainer.start()
    seen, buffers = [], []
    for _ in range(3):
        trainer.train_step()
        seen.append(trainer.pop_metrics()["replayed"])
        buffers.append(trainer.read("replay").images.numpy().copy())
    assert seen == [0.0, expected / 4, expected / 4]  # nothing to replay before the first write
    buffer = trainer.read("replay")
    assert int(buffer.filled.numpy()) == 8 and int(buffer.position.numpy()) == 4
    assert np.abs(buffers[0][:4]).sum() > 0 and not buffers[0][4:].any()
    np.testing.assert_array_equal(buffers[2][4:], buffers[1][4:])  # step 3 overwrote rows 0-3
    assert not np.array_equal(buffers[2][:4], buffers[1][:4])


def test_replay_buffer_is_checkpointed(separable_dir, tmp_path):
    config = tiny("dcgan", separable_dir / "train", tmp_path, replay_size=8, class_head=True)
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    trainer.start()
    trainer.train_step()
    trainer.save()
    resumed = TFTrainer(config, data.load_image_folder(config.image_dir))
    assert resumed.restore() == 1
    for saved, restored in zip(trainer.read("replay"), resumed.read("replay")):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy())


# Gradient penalty.

def test_gradient_penalty_matches_finite_differences(separable_dir, tmp_path):
    # The tape code is the same for every model. DCGAN's D (layer norm under the penalty) is not
    # piecewise linear: float32 central differences agree to about 0.4% at h = 1e-3 (measured
    # 0.4% at h = 1e-3, 2% at 1e-2; float32 rounding dominates below 1e-3).
    config = tiny("dcgan", separable_dir / "train", tmp_path, loss="wasserstein", gp_weight=10.0,
                  batch_size=2)
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    rng = np.random.default_rng(0)
    real, fake = (rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32) for _ in range(2))
    labels, epsilon = np.array([0, 2], np.int32), np.array([0.3, 0.8], np.float32)
    penalty = float(trainer.objective.gradient_penalty(
        trainer.read("d"), trainer.read("d_nt"), real, fake, labels, epsilon, training=False))

    x_hat = epsilon[:, None, None, None] * real + (1 - epsilon[:, None, None, None]) * fake
    h, norms = 1e-3, []
    for i in range(2):  # central differences of D(x_hat_i) along every pixel, in one batch
        steps = np.eye(x_hat[i].size, dtype=np.float32).reshape(-1, 32, 32, 3) * h
        batch = np.concatenate([x_hat[i] + steps, x_hat[i] - steps])
        outputs = trainer.discriminator(batch, np.full(len(batch), labels[i]),
                                        training=False).numpy().astype(np.float64)
        gradient = (outputs[:len(steps)] - outputs[len(steps):]) / (2 * h)
        norms.append(np.linalg.norm(gradient))
    expected = np.mean((np.array(norms) - 1.0) ** 2)
    assert penalty == pytest.approx(expected, rel=1e-2)
    assert penalty > 1e-3  # a random critic is far from 1-Lipschitz: the check has teeth


def test_gradient_penalty_is_part_of_the_step(separable_dir, tmp_path, capsys):
    config = tiny("dcgan", separable_dir / "train", tmp_path, loss="wasserstein", gp_weight=10.0,
                  steps=1)
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    assert not any(isinstance(layer, tf.keras.layers.BatchNormalization)
                   for layer in nested_layers(trainer.discriminator))  # layer norm instead
    trainer.start()
    trainer.train_step()
    metrics = trainer.pop_metrics()
    assert metrics["gp"] > 0 and np.isfinite(metrics["d_loss"])
    loop.train(config)
    assert "DCGAN's D uses layer norm instead of batch norm" in capsys.readouterr().out


@pytest.mark.parametrize("overrides,message", [
    (dict(gp_weight=10.0), "--gp_weight is the WGAN-GP penalty: it needs --loss=wasserstein"),
    (dict(replay_size=10), "--replay_size=10 must hold at least one batch"),
    (dict(replay_size=256, replay_fraction=1.5), "--replay_fraction must be in (0, 1]"),
    (dict(aux_weight=-1.0), "--aux_weight must be >= 0"),
    (dict(loss="wasserstein"), "--loss=wasserstein needs a Lipschitz critic, and dcgan's D has "
                               "no spectral norm: add --gp_weight=10, or use --model=sagan"),
])
def test_bad_study_flags_are_refused_with_one_line(overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        TrainConfig(model="dcgan", **overrides).resolved()


def test_resuming_with_another_head_or_buffer_is_refused(separable_dir, tmp_path):
    config = tiny("dcgan", separable_dir / "train", tmp_path, class_head=True, replay_size=8)
    loop.prepare_workdir(config)
    RunDir(config.workdir).metrics.append("train", 1, {})
    for change in (dict(class_head=False), dict(replay_size=16)):
        other = tiny("dcgan", separable_dir / "train", tmp_path,
                     **{**dict(class_head=True, replay_size=8), **change})
        with pytest.raises(UserError, match=f"holds a run with {next(iter(change))}="):
            loop.prepare_workdir(other)
