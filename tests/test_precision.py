"""--precision: mixed bfloat16/float16 steps, what stays float32, loss scaling, exports and
checkpoints across precisions (TensorFlow; the JAX backend's cases are in test_jax_backend)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_cifar import data, export
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.nn.base import nested_layers
from tfgan_cifar.nn.layers import SelfAttention, _SpectralNorm
from tfgan_cifar.training import loop
from tfgan_cifar.training.tf_backend import TFTrainer
from tiny_runs import tiny_config

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# The compiled half-precision step: test_float16_scales_the_loss_... here (loss scaling), and
# the JAX backend's in test_jax_backend. The other tests' subject is dtypes, checkpoints and
# exports, the same op by op: they step with run_eagerly=True, which spares them the tracing.
HALF = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def trained(config, cifar_like_dir, steps=3):
    trainer = TFTrainer(config, data.load_image_folder(str(cifar_like_dir / "train")))
    trainer.start()
    for _ in range(steps):
        trainer.train_step()
    return trainer


def spectral_layers(model):
    return [layer for layer in nested_layers(model) if isinstance(layer, _SpectralNorm)]


# float32 training, spectral norm and exports: test_training, test_layers and test_export.
@pytest.mark.parametrize("precision", ("mixed_bfloat16", "mixed_float16"))
def test_each_half_precision_trains_in_its_dtype_and_keeps_sn_and_exports_float32(
        cifar_like_dir, tmp_path, precision):
    config = tiny_config("sagan", cifar_like_dir / "train", tmp_path, steps=3,
                         precision=precision, ema_decay=0.9, run_eagerly=True)
    trainer = trained(config, cifar_like_dir)
    metrics = trainer.pop_metrics()
    assert all(np.isfinite(value) for value in metrics.values()), metrics
    assert trainer.step == 3

    # The layers compute in the half type; every variable, the SN state and the EMA stay float32.
    convs = spectral_layers(trainer.generator)
    assert convs and all(layer.compute_dtype == HALF[precision] for layer in convs)
    for model in (trainer.generator, trainer.discriminator, trainer.ema_generator):
        assert {v.dtype for v in model.variables} == {"float32"}
    assert all(v.dtype == "float32" for v in trainer.read("ema"))

    # sigma(W / sigma(W)) is 1, to float32 accuracy before the cast to the compute type.
    layers = spectral_layers(trainer.generator) + spectral_layers(trainer.discriminator)
    assert len(layers) >= 8
    for layer in layers:
        w = keras.ops.convert_to_numpy(layer.kernel_matrix())
        assert w.dtype == np.float32 and layer.u.dtype == "float32"
        # Power iteration through the layer's own code, from the top right singular vector: the
        # ResNet's square 1x1 kernels can have top singular values too close to converge from
        # where training left u.
        layer.u.assign(np.linalg.svd(w)[2][:1])
        for _ in range(10):
            layer.normalized_kernel(training=True)
        normalized = keras.ops.convert_to_numpy(keras.ops.cast(
            layer.normalized_kernel(training=False), "float32")).reshape(w.shape)
        tolerance = 1e-2  # float32 accuracy, then the cast to the half type
        assert np.linalg.norm(normalized, 2) == pytest.approx(1.0, abs=tolerance), layer.path

    # Samples and exports are float32, computed by a float32 generator.
    z = np.random.default_rng(0).normal(size=(5, config.z_dim)).astype(np.float32)
    labels = np.arange(5) % 3
    images = trainer.generate(z, labels)
    assert images.dtype == np.float32 and np.isfinite(images).all()
    generator = trainer.export_generator()
    assert generator.dtype_policy.name == "float32"
    assert all(layer.compute_dtype == "float32" for layer in nested_layers(generator))
    path = export.export_model(generator, str(tmp_path / "best"), {"step": 3})
    sample, z_dim = export.load_sampler(path)
    signature = sample.saved_model.signatures["serving_default"]
    assert signature.structured_input_signature[1]["z"].dtype == tf.float32
    assert signature.structured_outputs["images"].dtype == tf.float32
    np.testing.assert_allclose(sample(z, labels), images, atol=1e-5)
    reloaded = keras.saving.load_model(os.path.join(path, export.KERAS_FILE))
    assert reloaded.dtype_policy.name == "float32"


def test_attention_softmax_is_float32_under_bfloat16():
    layer = SelfAttention(dtype="mixed_bfloat16")
    x = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(2, 4, 4, 16)),
                                    "float32")
    outputs, attention = layer(x, return_attention=True)
    assert outputs.dtype == "bfloat16" and attention.dtype == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.sum(attention, -1)), 1.0,
                               atol=1e-6)


def test_float16_scales_the_loss_and_skips_steps_whose_gradients_overflow(cifar_like_dir,
                                                                          tmp_path):
    config = tiny_config("dcgan", cifar_like_dir / "train", tmp_path, steps=3,
                         precision="mixed_float16")
    trainer = TFTrainer(config, data.load_image_folder(str(cifar_like_dir / "train")))
    assert isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(trainer.d_optimizer, keras.optimizers.LossScaleOptimizer)
    initial = float(trainer.g_optimizer.initial_scale)
    trainer.start()
    for _ in range(4):
        trainer.train_step()
    scales = {part: float(trainer.read("loss_scale")[part][-1]) for part in ("g", "d")}
    counters = {part: int(trainer.read("loss_scale")[part][-2]) for part in ("g", "d")}
    for part in ("g", "d"):
        # Each overflow halves the scale and skips the update; the others count up.
        halvings = round(np.log2(initial / scales[part]))
        assert 0 <= halvings <= 4 and counters[part] <= 4 - halvings
    applied = int(trainer.g_optimizer.inner_optimizer.iterations)
    assert applied == 4 - round(np.log2(initial / scales["g"]))


@pytest.mark.parametrize("first,second", [("float32", "mixed_float16"),
                                          ("mixed_float16", "mixed_bfloat16")])
def test_a_checkpoint_restores_under_another_precision(cifar_like_dir, tmp_path, first, second):
    config = tiny_config("dcgan", cifar_like_dir / "train", tmp_path, steps=3, precision=first,
                         ema_decay=0.5, run_eagerly=True)
    before = trained(config, cifar_like_dir, steps=2)
    before.save()
    after = TFTrainer(tiny_config("dcgan", cifar_like_dir / "train", tmp_path, steps=3,
                                  precision=second, ema_decay=0.5, run_eagerly=True),
                      data.load_image_folder(str(cifar_like_dir / "train")))
    assert after.restore() == 2
    for part in ("g", "g_nt", "d", "d_nt", "g_opt", "d_opt", "ema"):
        for a, b in zip(before.read(part), after.read(part)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    after.start()
    after.train_step()
    assert all(np.isfinite(v) for v in after.pop_metrics().values())


def test_a_run_resumes_with_another_precision(cifar_like_dir, tmp_path):
    loop.train(tiny_config("dcgan", cifar_like_dir / "train", tmp_path, steps=2,
                           checkpoint_every=2, run_eagerly=True))
    loop.train(tiny_config("dcgan", cifar_like_dir / "train", tmp_path, steps=4,
                           checkpoint_every=2, precision="mixed_bfloat16", run_eagerly=True))
    with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
        steps = [record["step"] for record in map(json.loads, f) if record["kind"] == "train"]
    assert steps == [1, 2, 3, 4]
    with open(os.path.join(tmp_path, "config.json")) as f:
        assert json.load(f)["precision"] == "mixed_bfloat16"


def _end_of_discriminator(discriminator, images, labels):
    """D's logits recomputed in float64 from its last feature map: sum pooling, the linear
    logit and the projection (or, for DCGAN, the flattened features)."""
    def weights(layer):
        kernel = (layer.normalized_kernel() if isinstance(layer, _SpectralNorm)
                  else getattr(layer, "kernel", None))
        if kernel is None:
            kernel = layer.embeddings
        return keras.ops.convert_to_numpy(kernel).astype(np.float64)

    if hasattr(discriminator, "feature_maps"):
        last = discriminator.feature_maps(images)[-1]
        last = keras.ops.convert_to_numpy(keras.ops.cast(last, "float32")).astype(np.float64)
        if discriminator.__class__.__name__ == "ResNetDiscriminator":
            last = np.maximum(last, 0)
        h = last.sum(axis=(1, 2))
    else:
        h = keras.ops.convert_to_numpy(keras.ops.cast(
            discriminator.features(images), "float32")).astype(np.float64)
    logits = (h @ weights(discriminator.head))[:, 0]
    bias = getattr(discriminator.head, "bias", None)
    if bias is not None:
        logits += keras.ops.convert_to_numpy(bias)
    if discriminator.conditional:
        logits += (weights(discriminator.label_embedding)[labels] * h).sum(-1)
    return logits


@pytest.mark.parametrize("model,arch", [("sagan", "resnet"), ("sagan", "cnn"), ("dcgan", None)])
def test_the_end_of_each_discriminator_computes_in_float32_under_mixed_bfloat16(model, arch):
    """Sum pooling, the final logit and the projection run in float32 under mixed_bfloat16:
    the logits are float32 and equal a float64 computation from D's (bfloat16) last map."""
    from tfgan_cifar.nn import build_models
    from tfgan_cifar.precision import dtype_policy

    config = TrainConfig(model=model, arch=arch, conditional=True, width=4, z_dim=8,
                         num_classes=3, precision="mixed_bfloat16").resolved()
    keras.utils.set_random_seed(0)
    with dtype_policy("mixed_bfloat16"):
        discriminator = build_models(config)[1].build_weights()
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (6, 32, 32, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2], np.int32)
    logits = discriminator(images, labels)
    assert logits.dtype == "float32"
    assert discriminator.head.compute_dtype == "float32"
    assert discriminator.label_embedding.compute_dtype == "float32"
    expected = _end_of_discriminator(discriminator, images, labels)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logits), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())
