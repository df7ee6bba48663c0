"""Spectral normalisation, self-attention and conditional batch norm against NumPy references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan_cifar.nn.layers import (ConditionalBatchNorm, SelfAttention, SNConv2D, SNConv2DTranspose,
                                   SNDense, SNEmbedding)

SN_LAYERS = {
    "dense": (lambda: SNDense(6), lambda: np.random.randn(4, 5).astype("float32")),
    "conv": (lambda: SNConv2D(6, 3), lambda: np.random.randn(2, 8, 8, 5).astype("float32")),
    "conv_transpose": (
        lambda: SNConv2DTranspose(6, 4, strides=2),
        lambda: np.random.randn(2, 4, 4, 5).astype("float32"),
    ),
    "embedding": (lambda: SNEmbedding(10, 6), lambda: np.array([0, 3, 9, 3], np.int32)),
}


def _built(name):
    keras.utils.set_random_seed(0)
    make_layer, make_input = SN_LAYERS[name]
    layer = make_layer()
    x = make_input()
    layer(x, training=False)
    return layer, x


@pytest.mark.parametrize("name", sorted(SN_LAYERS))
def test_power_iteration_drives_top_singular_value_to_one(name):
    layer, x = _built(name)
    raw = np.linalg.svd(keras.ops.convert_to_numpy(layer.kernel_matrix()), compute_uv=False)[0]
    assert abs(raw - 1.0) > 0.05  # the test would be vacuous if W were already normalised
    for _ in range(100):  # power iteration converges at the rate (sigma_2 / sigma_1)^k
        layer(x, training=True)
    kernel = keras.ops.convert_to_numpy(layer.normalized_kernel(training=False))
    top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    assert top == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", sorted(SN_LAYERS))
def test_u_changes_only_in_training(name):
    layer, x = _built(name)
    u0 = layer.u.numpy().copy()
    layer(x, training=False)
    np.testing.assert_array_equal(layer.u.numpy(), u0)
    layer(x, training=True)
    assert not np.allclose(layer.u.numpy(), u0)
    assert all(v is not layer.u for v in layer.trainable_variables)
    assert layer.kernel in [v for v in layer.trainable_variables]


@pytest.mark.parametrize("name", sorted(SN_LAYERS))
def test_gradient_flows_through_sigma_like_float64_reference(name):
    """d<G, W/sigma(W)>/dW = G/sigma - <G, W>/sigma^2 * v u^T, with u, v the held vectors."""
    layer, _ = _built(name)
    w = layer.kernel
    probe = np.random.RandomState(1).randn(*w.shape).astype("float32")
    with tf.GradientTape() as tape:
        objective = tf.reduce_sum(layer.normalized_kernel(training=False) * probe)
    grad = tape.gradient(objective, w).numpy()

    w64 = w.numpy().astype(np.float64).reshape(-1, w.shape[-1])
    g64 = probe.astype(np.float64).reshape(w64.shape)
    u = layer.u.numpy().astype(np.float64)[0]
    u /= np.linalg.norm(u)
    v = w64 @ u
    v /= np.linalg.norm(v)
    sigma = v @ w64 @ u
    expected = g64 / sigma - (np.sum(g64 * w64) / sigma**2) * np.outer(v, u)
    np.testing.assert_allclose(grad.reshape(w64.shape), expected, rtol=1e-4, atol=1e-5)
    # Keras's SpectralNormalization would give G/sigma alone: make sure we are not doing that.
    assert not np.allclose(grad.reshape(w64.shape), g64 / sigma, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 3, 17])
def test_sn_embedding_returns_floats_for_int_labels_at_any_batch_size(batch):
    layer = SNEmbedding(10, 4)
    labels = np.arange(batch, dtype=np.int32) % 10
    out = layer(labels, training=True)
    assert out.dtype == tf.float32 and out.shape == (batch, 4)
    assert np.abs(out.numpy()).sum() > 0
    table = layer.normalized_kernel(training=False).numpy()
    np.testing.assert_allclose(layer(labels).numpy(), table[labels], rtol=1e-6)


def _max_pool_2x2(t):
    b, h, w, c = t.shape
    return t.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _attention_reference(x, wf, wg, wh, wo, gamma):
    """SAGAN/BigGAN attention in float64: pooled keys and values, an output projection."""
    b, h, w, c = x.shape
    x = x.astype(np.float64)
    f = (x @ wf).reshape(b, h * w, -1)
    g = _max_pool_2x2(x @ wg).reshape(b, h * w // 4, -1)
    v = _max_pool_2x2(x @ wh).reshape(b, h * w // 4, -1)
    scores = f @ g.transpose(0, 2, 1)
    scores -= scores.max(axis=-1, keepdims=True)
    attention = np.exp(scores)
    attention /= attention.sum(axis=-1, keepdims=True)
    return (gamma * (attention @ v) @ wo).reshape(x.shape) + x, attention


def _attention_kernels(layer, spectral_norm=True):
    def kernel(conv):
        k = conv.normalized_kernel() if spectral_norm else conv.kernel
        return keras.ops.convert_to_numpy(k)[0, 0].astype(np.float64)
    return [kernel(conv) for conv in (layer.f, layer.g, layer.h, layer.out)]


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_self_attention_matches_numpy(spectral_norm):
    x = np.random.RandomState(0).randn(2, 4, 4, 16).astype("float32")
    layer = SelfAttention(spectral_norm=spectral_norm)
    layer(x)
    layer.gamma.assign(0.7)
    out, attention = layer(x, return_attention=True)
    expected, expected_attention = _attention_reference(
        x, *_attention_kernels(layer, spectral_norm), 0.7)
    np.testing.assert_allclose(attention.numpy(), expected_attention, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(attention.numpy().sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("channels", [16, 64])
def test_self_attention_has_biggans_shapes_and_parameter_count(channels):
    """f, g at C/8, h at C/2, out from C/2 to C, all without bias and spectrally normalised;
    trainable parameters 2 C^2/8 + C^2/2 + C^2/2 + gamma; keys and values 2x2 max-pooled."""
    x = np.random.RandomState(1).randn(2, 8, 8, channels).astype("float32")
    layer = SelfAttention()
    out, attention = layer(x, return_attention=True)
    kernels = {conv.name: tuple(conv.kernel.shape)
               for conv in (layer.f, layer.g, layer.h, layer.out)}
    assert kernels == {"f": (1, 1, channels, channels // 8), "g": (1, 1, channels, channels // 8),
                       "h": (1, 1, channels, channels // 2), "out": (1, 1, channels // 2, channels)}
    assert all(isinstance(conv, SNConv2D) and not conv.use_bias
               for conv in (layer.f, layer.g, layer.h, layer.out))
    trainable = sum(int(np.prod(v.shape)) for v in layer.trainable_weights)
    assert trainable == 2 * channels * channels // 8 + 2 * channels * channels // 2 + 1
    assert tuple(out.shape) == x.shape
    assert tuple(attention.shape) == (2, 64, 16)  # N queries over N/4 pooled keys
    assert attention.dtype == "float32"
    np.testing.assert_allclose(attention.numpy().sum(-1), 1.0, rtol=1e-5)


def test_self_attention_is_identity_at_gamma_zero():
    x = np.random.RandomState(0).randn(2, 8, 8, 8).astype("float32")
    layer = SelfAttention()
    assert float(layer(x, training=True).numpy().std()) > 0
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x)
    assert float(layer.gamma.numpy()) == 0.0


def test_self_attention_softmax_is_float32_under_mixed_bfloat16():
    x = np.random.RandomState(2).randn(2, 8, 8, 16).astype("float32")
    layer = SelfAttention(dtype="mixed_bfloat16")
    layer(x)
    layer.gamma.assign(0.5)
    out, attention = layer(x, return_attention=True)
    assert out.dtype == "bfloat16" and attention.dtype == "float32"
    np.testing.assert_allclose(attention.numpy().sum(-1), 1.0, rtol=1e-5)
    _, expected = _attention_reference(x, *_attention_kernels(layer), 0.5)
    np.testing.assert_allclose(attention.numpy(), expected, atol=0.05)


def test_conditional_batch_norm_scales_and_shifts_per_class():
    x = np.random.RandomState(0).randn(6, 4, 4, 3).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2], np.int32)
    layer = ConditionalBatchNorm(num_classes=3)
    layer(x, labels)
    layer.scale.embeddings.assign(np.array([[1, 1, 1], [2, 2, 2], [0, 0, 0]], np.float32))
    layer.offset.embeddings.assign(np.array([[0, 0, 0], [0, 0, 0], [5, 5, 5]], np.float32))
    out = layer(x, labels, training=True).numpy()
    normalised = (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(out[0], normalised[0], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(out[1], 2 * normalised[1], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(out[2], 5.0, rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 3, 4, 8), (8, 32), (32, 8)])
def test_orthogonal_kernels_are_orthogonal_seeded_and_reloadable(shape):
    from tfgan_cifar.nn.initializers import Orthogonal

    values = np.asarray(Orthogonal(seed=7)(shape))
    flat = values.reshape(-1, shape[-1])
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(Orthogonal(seed=7)(shape)), values)
    assert not np.allclose(np.asarray(Orthogonal(seed=8)(shape)), values)
    copy = keras.initializers.deserialize(keras.initializers.serialize(Orthogonal(seed=7)))
    assert type(copy) is Orthogonal
    np.testing.assert_array_equal(np.asarray(copy(shape)), values)
    assert np.asarray(Orthogonal(seed=7, gain=2.0)(shape)) == pytest.approx(2 * values)


def test_glorot_and_normal_kernels_have_keras_scales():
    from tfgan_cifar.nn.initializers import GlorotUniform, RandomNormal

    shape = (3, 3, 64, 96)  # fan_in 576, fan_out 864: limit sqrt(6 / 1440)
    glorot = np.asarray(GlorotUniform(seed=1)(shape))
    limit = np.sqrt(6 / 1440)
    assert glorot.dtype == np.float32 and np.abs(glorot).max() <= limit
    assert glorot.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)
    normal = np.asarray(RandomNormal(stddev=0.02, seed=1)(shape, dtype="float32"))
    assert abs(normal.mean()) < 1e-3 and normal.std() == pytest.approx(0.02, rel=0.01)


def test_a_seed_generator_keeps_keras_drawing():
    from tfgan_cifar.nn.initializers import RandomNormal

    initializer = RandomNormal(stddev=1.0, seed=keras.random.SeedGenerator(3))
    first, second = (np.asarray(initializer((64, 64))) for _ in range(2))
    assert not np.array_equal(first, second)  # a stream: a new draw at each call
