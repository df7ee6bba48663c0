"""--steps_per_call on TensorFlow: K steps in one compiled call are K single steps, and the
cadences fall between calls. (JAX: test_jax_backend; tf.distribute: test_distributed.)"""

import dataclasses
import json
import os

import numpy as np
import pytest

from tfgan_cifar import data
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.training import loop
from tfgan_cifar.training.tf_backend import TFTrainer


def tiny(cifar_like_dir, workdir, **overrides):
    values = dict(model="dcgan", image_dir=str(cifar_like_dir / "train"), workdir=str(workdir),
                  width=4, z_dim=8, batch_size=4, steps=4, log_every=1, sample_every=0,
                  checkpoint_every=2, eval_every=0, num_classes=3, seed=0,
                  save_dir=os.path.join(workdir, "saved_models"))
    values.update(overrides)
    return TrainConfig(**values).resolved()


def whole_state(trainer):
    """Every value of the state (weights, optimizer slots, EMA, replay buffer, metric sums,
    step, divergence marker) and the random generator's state, as NumPy arrays."""
    import tensorflow as tf

    leaves = tf.nest.flatten(trainer.read_all())
    return [np.asarray(leaf) for leaf in leaves] + [trainer.rng.state.numpy()]


def test_calls_end_at_multiples_of_steps_per_call():
    assert list(loop.calls(0, 8, 4)) == [(4, 4), (8, 4)]
    assert list(loop.calls(0, 3, 1)) == [(1, 1), (2, 1), (3, 1)]
    # A run stopped at step 5 (or trained with another K) catches up to the next multiple.
    assert list(loop.calls(5, 12, 4)) == [(8, 3), (12, 4)]
    assert list(loop.calls(12, 12, 4)) == []


@pytest.mark.parametrize("flag,value,nearest", [
    ("log_every", 6, "--log_every=4 or 8"), ("steps", 3, "--steps=4"),
    ("checkpoint_every", 10, "--checkpoint_every=8 or 12"),
    ("eval_every", 1001, "--eval_every=1000 or 1004"), ("sample_every", 2, "--sample_every=4")])
def test_a_cadence_between_calls_is_refused_naming_the_nearest_valid_values(flag, value,
                                                                             nearest):
    config = dict(steps=8, log_every=4, checkpoint_every=0, eval_every=0, sample_every=0)
    config[flag] = value
    with pytest.raises(UserError) as error:
        TrainConfig(steps_per_call=4, **config).resolved()
    message = str(error.value)
    assert "\n" not in message and f"--{flag}={value} is not a multiple of " \
        "--steps_per_call=4" in message and message.endswith(nearest)
    # 0 (off) is a multiple of everything; K=1, the default, takes any cadence.
    TrainConfig(steps_per_call=4, steps=8, log_every=4, checkpoint_every=0, eval_every=0,
                sample_every=0).resolved()
    TrainConfig(**config).resolved()


@pytest.mark.parametrize("jit_compile", [False, True])
def test_k_steps_in_one_call_equal_k_single_steps(cifar_like_dir, tmp_path, jit_compile):
    # n_critic 2, EMA and replay: every part of the state changes, and the replay buffer is
    # read from the second D step on.
    config = tiny(cifar_like_dir, tmp_path, n_critic=2, ema_decay=0.5, replay_size=8,
                  jit_compile=jit_compile)
    images = data.load_image_folder(config.image_dir)
    single, one_call = TFTrainer(config, images), TFTrainer(config, images)
    for trainer in (single, one_call):
        trainer.start()
    for _ in range(3):
        single.train_step()
    one_call.train_steps(3)
    assert single.step == one_call.step == 3
    a, b = whole_state(single), whole_state(one_call)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    # The metrics are the means over the three steps, either way.
    means = single.pop_metrics()
    assert one_call.pop_metrics() == pytest.approx(means, rel=1e-5, abs=1e-6)


def test_a_run_of_two_steps_per_call_resumes_into_the_same_state(cifar_like_dir, tmp_path):
    straight = tiny(cifar_like_dir, tmp_path / "straight", n_critic=2)
    loop.train(straight)
    half = tiny(cifar_like_dir, tmp_path / "k2", n_critic=2, steps_per_call=2, log_every=2,
                steps=2)
    loop.train(half)
    loop.train(dataclasses.replace(half, steps=4))

    def final(config):
        trainer = TFTrainer(dataclasses.replace(config, steps=4),
                            data.load_image_folder(config.image_dir))
        assert trainer.restore() == 4
        return whole_state(trainer)

    for x, y in zip(final(straight), final(half)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)

    def logged(config):
        with open(os.path.join(config.workdir, "metrics.jsonl")) as f:
            return [r for r in map(json.loads, f) if r["kind"] == "train"]

    every_step, every_call = logged(straight), logged(half)
    assert [r["step"] for r in every_call] == [2, 4]
    for call in every_call:  # each logged value is the mean over the call's two steps
        pair = [r for r in every_step if call["step"] - 2 < r["step"] <= call["step"]]
        for name in ("d_loss", "g_loss", "d_real_acc"):
            assert call[name] == pytest.approx(np.mean([r[name] for r in pair]), rel=1e-5,
                                               abs=1e-6), name
