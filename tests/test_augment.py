"""DiffAugment: each operation against NumPy, its gradients, JAX against TensorFlow, and where
the training step applies it (tiny models, CPU)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfgan_cifar import data
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.training import augment as augment_lib
from tfgan_cifar.training import loop, objective
from tfgan_cifar.training.augment import augment
from tfgan_cifar.training.tf_backend import TFTrainer
from tiny_runs import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVERY = ("color", "translation", "cutout")
NEUTRAL = 0.5  # the uniform that leaves brightness, saturation and contrast as they are
BELOW_ONE = np.nextafter(np.float32(1), np.float32(0))  # the largest uniform a sampler gives


def uniform_for(value, low, high):
    """The uniform in [0, 1) that `augment` maps to the integer `value` of [low, high)."""
    return (value - low + 0.5) / (high - low)


def np_integers(uniforms, low, high):
    """What `augment_lib.integers` computes, in NumPy."""
    return np.minimum(np.floor(uniforms * (high - low)), high - low - 1).astype(int) + low


def np_translate(images, dy, dx):
    """out[b, i, j] = images[b, i + dy[b], j + dx[b]], zero where that is outside."""
    out = np.zeros_like(images)
    batch, height, width, _ = images.shape
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                if 0 <= i + dy[b] < height and 0 <= j + dx[b] < width:
                    out[b, i, j] = images[b, i + dy[b], j + dx[b]]
    return out


def np_cut_square(cy, cx, size=32):
    """[B, size, size] booleans, True on the half-size square centred at (cy, cx)."""
    rows = np.arange(size)
    in_rows = (rows[None] >= cy[:, None] - size // 4) & (rows[None] < cy[:, None] + size // 4)
    in_cols = (rows[None] >= cx[:, None] - size // 4) & (rows[None] < cx[:, None] + size // 4)
    return in_rows[:, :, None] & in_cols[:, None, :]


def zeroed_by_augment(uniforms):
    """Where every channel of `augment(x, EVERY, uniforms)` is zero for an x without zeros:
    the translation's fill, then the cutout square ([B, 32, 32] booleans)."""
    dy, dx = (np_integers(uniforms[:, c], -4, 5) for c in (3, 4))
    filled = np_translate(np.ones((len(uniforms), 32, 32, 1)), dy, dx)[..., 0] == 0
    square = np_cut_square(np_integers(uniforms[:, 5], 0, 33), np_integers(uniforms[:, 6], 0, 33))
    return filled | square


def images_and_uniforms(seed, batch=3, columns=7):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (batch, 32, 32, 3)).astype(np.float32)
    return images, rng.uniform(0, 1, (batch, columns)).astype(np.float32)


# The operations against NumPy.

def test_brightness_saturation_and_contrast_match_numpy():
    images, uniforms = images_and_uniforms(0, columns=3)
    b, s, c = uniforms[:, 0] - 0.5, uniforms[:, 1] * 2, uniforms[:, 2] + 0.5
    alone = lambda column: np.where(np.arange(3) == column, uniforms, NEUTRAL).astype(np.float32)
    brightness = images + b[:, None, None, None]
    pixel_mean = images.mean(axis=3, keepdims=True)
    saturation = pixel_mean + s[:, None, None, None] * (images - pixel_mean)
    image_mean = images.reshape(3, -1).mean(axis=1)[:, None, None, None]
    contrast = image_mean + c[:, None, None, None] * (images - image_mean)
    for column, expected in enumerate((brightness, saturation, contrast)):
        got = np.asarray(augment(images, ("color",), alone(column)))
        np.testing.assert_allclose(got, expected, atol=1e-6)
    chained = brightness
    for factor, axes in ((s, 3), (c, (1, 2, 3))):
        mean = chained.mean(axis=axes, keepdims=True)
        chained = mean + factor[:, None, None, None] * (chained - mean)
    np.testing.assert_allclose(np.asarray(augment(images, ("color",), uniforms)), chained,
                               atol=1e-5)


def test_translation_moves_content_by_an_eighth_with_zero_fill():
    images, _ = images_and_uniforms(1)
    dy, dx = np.array([4, -4, 0]), np.array([-4, 3, 0])
    uniforms = np.stack([uniform_for(dy, -4, 5), uniform_for(dx, -4, 5)], 1).astype(np.float32)
    got = np.asarray(augment(images, ("translation",), uniforms))
    np.testing.assert_allclose(got, np_translate(images, dy, dx), atol=0)
    assert (got[0, -4:] == 0).all() and (got[0, :, :4] == 0).all()  # the uncovered border
    np.testing.assert_array_equal(got[2], images[2])

    marker = np.zeros((1, 32, 32, 3), np.float32)
    marker[0, 16, 16] = 1.0
    moved = np.asarray(augment(marker, ("translation",), uniforms[:1]))
    assert np.argwhere(moved[0, ..., 0]).tolist() == [[16 - 4, 16 + 4]]  # 4 = 32 / 8 pixels

    # Every shift from -32/8 to 32/8 is drawn, equally often, and no other.
    grid = (np.arange(9000, dtype=np.float32) + 0.5) / 9000
    grid = np.concatenate([grid, np.float32([0.0, BELOW_ONE])])
    shifts = np.asarray(augment_lib.translation_shifts(grid, 32))
    assert shifts.min() == -4 and shifts.max() == 4
    assert np.bincount(shifts[:9000] + 4).tolist() == [1000] * 9
    np.testing.assert_array_equal(shifts, np_integers(grid, -4, 5))


def test_cutout_zeroes_a_half_size_square_at_the_drawn_place():
    images, _ = images_and_uniforms(2)
    images = np.abs(images) + 0.1  # no zeros of its own
    cy, cx = np.array([16, 8, 0]), np.array([10, 32, 20])
    uniforms = np.stack([uniform_for(cy, 0, 33), uniform_for(cx, 0, 33)], 1).astype(np.float32)
    got = np.asarray(augment(images, ("cutout",), uniforms))
    zero = (got == 0).all(axis=-1)
    np.testing.assert_array_equal(zero, np_cut_square(cy, cx))
    assert zero[0].sum() == 16 * 16 and zero[0, 8:24, 2:18].all()  # inside the image
    assert zero[1].sum() == 16 * 8 and zero[1, 0:16, 24:32].all()  # clipped at the border
    assert zero[2].sum() == 8 * 16 and zero[2, 0:8, 12:28].all()
    np.testing.assert_array_equal(got, np.where(zero[..., None], 0, images))
    offsets = np.asarray(augment_lib.cutout_offsets(np.float32([0, BELOW_ONE]), 32))
    assert offsets.tolist() == [0, 32]


def test_policy_order_and_draw_columns():
    images, uniforms = images_and_uniforms(3)
    assert augment_lib.draw_count(EVERY) == 7 == uniforms.shape[1]
    step_by_step = augment(images, ("color",), uniforms[:, :3])
    step_by_step = augment(step_by_step, ("translation",), uniforms[:, 3:5])
    step_by_step = augment(step_by_step, ("cutout",), uniforms[:, 5:])
    np.testing.assert_allclose(np.asarray(augment(images, EVERY, uniforms)), step_by_step,
                               atol=1e-6)
    np.testing.assert_array_equal(  # translation before cutout, whatever the tuple's order
        augment(images, ("cutout", "translation"), uniforms[:, 3:]),
        augment(images, ("translation", "cutout"), uniforms[:, 3:]))
    assert TrainConfig(augment=("cutout", "color", "cutout")).resolved().augment == (
        "color", "cutout")


# Gradients and compilation.

def gradient(images, policy, uniforms, upstream):
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(upstream * augment(x, policy, uniforms))
    return tape.gradient(loss, x).numpy()


def test_gradients_flow_to_the_images():
    images, uniforms = images_and_uniforms(4)
    upstream = np.random.default_rng(5).standard_normal(images.shape).astype(np.float32)
    every = gradient(images, EVERY, uniforms, upstream)
    assert np.isfinite(every).all()
    assert (np.abs(every).reshape(3, -1).max(axis=1) > 0).all()

    dy, dx = (np_integers(uniforms[:, c], -4, 5) for c in (3, 4))
    np.testing.assert_allclose(gradient(images, ("translation",), uniforms[:, 3:5], upstream),
                               np_translate(upstream, -dy, -dx), atol=0)
    square = np_cut_square(np_integers(uniforms[:, 5], 0, 33), np_integers(uniforms[:, 6], 0, 33))
    np.testing.assert_allclose(gradient(images, ("cutout",), uniforms[:, 5:], upstream),
                               np.where(square[..., None], 0, upstream), atol=0)


def test_xla_compiled_augment_matches_eager():
    images, uniforms = images_and_uniforms(6)
    compiled = tf.function(lambda x, u: augment(x, EVERY, u), jit_compile=True)
    np.testing.assert_allclose(compiled(images, uniforms).numpy(),
                               np.asarray(augment(images, EVERY, uniforms)), atol=1e-6)


JAX_SCRIPT = """
import json, sys
import jax, keras, numpy as np
from tfgan_cifar.training.augment import augment
assert keras.backend.backend() == "jax"
saved, results = np.load(sys.argv[1]), {}
for policy in json.loads(sys.argv[3]):
    key = ",".join(policy)
    forward = jax.jit(lambda x, u: augment(x, tuple(policy), u))
    loss = lambda x, u: (saved["upstream"] * augment(x, tuple(policy), u)).sum()
    results["images " + key] = np.asarray(forward(saved["images"], saved["uniforms " + key]))
    results["grad " + key] = np.asarray(jax.jit(jax.grad(loss))(saved["images"],
                                                                saved["uniforms " + key]))
np.savez(sys.argv[2], **results)
"""


def test_jax_gives_the_same_images_and_gradients_for_the_same_draws(tmp_path):
    images, uniforms = images_and_uniforms(7, batch=4)
    upstream = np.random.default_rng(8).standard_normal(images.shape).astype(np.float32)
    policies = [("color",), ("translation",), ("cutout",), EVERY]
    inputs = {"images": images, "upstream": upstream}
    for policy in policies:
        columns = augment_lib.draw_count(policy)
        inputs["uniforms " + ",".join(policy)] = uniforms[:, :columns]
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "inputs.npz"),
         str(tmp_path / "jax.npz"), json.dumps(policies)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "jax.npz") as jax_results:
        for policy in policies:
            key, u = ",".join(policy), inputs["uniforms " + ",".join(policy)]
            np.testing.assert_allclose(jax_results["images " + key],
                                       np.asarray(augment(images, policy, u)), atol=1e-5,
                                       err_msg=key)
            np.testing.assert_allclose(jax_results["grad " + key],
                                       gradient(images, policy, u, upstream), atol=1e-5,
                                       err_msg=key)


# In the training step.

def tiny(model, image_dir, workdir, **overrides):
    """A tiny run with every augmentation."""
    return tiny_config(model, image_dir, workdir, **{"augment": EVERY, **overrides})

def test_compiled_steps_with_every_augmentation_are_finite(cifar_like_dir, tmp_path,
                                                           monkeypatch):
    config = tiny("dcgan", cifar_like_dir / "train", tmp_path, class_head=True)
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    trainer.start()
    for _ in range(3):
        trainer.train_step()
    metrics = trainer.pop_metrics()
    assert all(np.isfinite(value) for value in metrics.values()), metrics
    assert trainer.step == 3 and trainer.diverged_at() == 0

    def refuse(*args):
        raise AssertionError("augmented outside the training step")

    # Samples, FID and the classifier head see images as they are.
    monkeypatch.setattr(objective, "augment", refuse)
    z = np.random.default_rng(0).standard_normal((2, config.z_dim)).astype(np.float32)
    assert np.isfinite(trainer.generate(z, np.zeros(2, np.int32))).all()
    assert trainer.class_logits(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 3)


def test_discriminator_sees_every_batch_through_draws_of_its_own(cifar_like_dir, tmp_path,
                                                                 monkeypatch):
    """With the gradient penalty, whose interpolates mix augmented reals and fakes."""
    config = tiny("sagan", cifar_like_dir / "train", tmp_path, loss="wasserstein",
                  gp_weight=10.0, n_critic=2)
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    seen, critic = [], trainer.objective.critic

    def recording_critic(d, d_nt, images, labels, **kwargs):
        seen.append(np.asarray(images))
        return critic(d, d_nt, images, labels, **kwargs)

    monkeypatch.setattr(trainer.objective, "critic", recording_critic)
    draws = {name: value.numpy() for name, value in trainer._draws().items()}
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2, 4, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 3, (2, 4)).astype(np.int32)
    _, metrics = trainer.objective.update(trainer.read_all(), images, labels, draws)
    assert all(np.isfinite(float(value)) for value in metrics.values())
    assert float(metrics["gp"]) > 0

    real = [zeroed_by_augment(u) for u in draws["augment_real"]]
    fake = [zeroed_by_augment(u) for u in draws["augment_fake"]]
    expected = [real[0], fake[0], real[0] & fake[0],  # D step 1: reals, fakes, interpolates
                real[1], fake[1], real[1] & fake[1],  # D step 2
                zeroed_by_augment(draws["g_augment"][0])]  # G step
    assert len(seen) == len(expected)
    for call, (images_seen, zeroed) in enumerate(zip(seen, expected)):
        np.testing.assert_array_equal((images_seen == 0).all(axis=-1), zeroed, err_msg=call)


def test_resuming_with_another_augment_is_refused(cifar_like_dir, tmp_path):
    config = tiny("dcgan", cifar_like_dir / "train", tmp_path, augment=("translation", "cutout"))
    loop.prepare_workdir(config)
    RunDir(config.workdir).metrics.append("train", 1, {})
    for other in (("cutout",), ()):
        with pytest.raises(UserError, match=r"holds a run with augment=\('translation', "):
            loop.prepare_workdir(tiny("dcgan", cifar_like_dir / "train", tmp_path,
                                      augment=other))
    loop.prepare_workdir(tiny("dcgan", cifar_like_dir / "train", tmp_path,
                              augment=("cutout", "translation")))  # the same policy


def test_unknown_augmentation_is_refused_with_one_line():
    with pytest.raises(UserError, match="--augment takes color, translation, cutout, got flip"):
        TrainConfig(augment=("flip", "color")).resolved()
