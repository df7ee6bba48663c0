"""Shapes, dtypes and ranges of every generator and discriminator; the SAGAN architectures'
layouts, sizes, attention positions and serialisation."""

import keras
import numpy as np
import pytest

from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.nn import build_models, resnet, sagan_cnn
from tfgan_cifar.nn.base import nested_layers
from tfgan_cifar.nn.layers import ConditionalBatchNorm, SelfAttention, SNConv2D

# (model, arch, conditional, attention_res)
CASES = [
    ("dcgan", None, False, (16,)),
    ("dcgan", None, True, (16,)),
    ("sagan", "resnet", True, (16,)),
    ("sagan", "resnet", False, (16,)),
    ("sagan", "resnet", True, (8, 16)),
    ("sagan", "resnet", True, ()),
    ("sagan", "cnn", True, (16,)),
    ("sagan", "cnn", False, (16,)),
    ("sagan", "cnn", True, (32,)),
    ("sagan", "cnn", True, (8, 16, 32)),
    ("sagan", "cnn", False, ()),
]


def _tiny(model="sagan", width=8, **values):
    return TrainConfig(model=model, width=width, **values).resolved()


def _attention_inputs(model):
    """{layer path: the input shape it was built for} of every SelfAttention in `model`."""
    return {layer.path: tuple(layer.get_build_config()["input_shape"])
            for layer in nested_layers(model) if isinstance(layer, SelfAttention)}


@pytest.mark.parametrize("model,arch,conditional,attention_res", CASES)
def test_shapes_dtypes_and_ranges(model, arch, conditional, attention_res):
    config = _tiny(model, arch=arch, conditional=conditional, attention_res=attention_res)
    generator, discriminator = build_models(config)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, config.z_dim)).astype(np.float32) * 3
    labels = np.arange(5, dtype=np.int32)
    for training in (True, False):
        images = generator(z, labels, training=training).numpy()
        assert images.shape == (5, 32, 32, 3) and images.dtype == np.float32
        assert images.min() >= -1.0 and images.max() <= 1.0 and images.std() > 0
        logits = discriminator(images, labels, training=training).numpy()
        assert logits.shape == (5,) and logits.dtype == np.float32
        assert np.all(np.isfinite(logits))
    if model == "sagan":
        assert len(_attention_inputs(generator)) == len(attention_res)
        assert len(_attention_inputs(discriminator)) == len(attention_res)


@pytest.mark.parametrize("arch", ["resnet", "cnn"])
@pytest.mark.parametrize("conditional", [False, True])
def test_labels_matter_only_for_conditional_models(arch, conditional):
    config = _tiny(arch=arch, conditional=conditional)
    generator, discriminator = build_models(config)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, config.z_dim)).astype(np.float32)
    images = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    zeros, threes = np.zeros(4, np.int32), np.full(4, 3, np.int32)
    generator(z, zeros)
    for layer in nested_layers(generator):
        if isinstance(layer, ConditionalBatchNorm):  # starts as plain BN (scale 1, offset 0)
            layer.scale.embeddings.assign(rng.uniform(0.5, 1.5, layer.scale.embeddings.shape))
    g_changed = not np.allclose(generator(z, zeros).numpy(), generator(z, threes).numpy())
    d_changed = not np.allclose(discriminator(images, zeros).numpy(),
                                discriminator(images, threes).numpy())
    assert g_changed == conditional and d_changed == conditional


@pytest.mark.parametrize("arch,attention_res,g_channels,d_inputs", [
    # ResNet: G's blocks have 4w channels; D's first block outputs 16x16, the second 8x8 (2w).
    ("resnet", (8, 16), {8: 32, 16: 32}, {16: 16, 8: 16}),
    # CNN: G's deconvolutions have 4w, 2w, w channels at 8, 16, 32; D reaches 32 at its first
    # convolution (w), 16 at its second (w), 8 at its fourth (2w).
    ("cnn", (8, 16, 32), {8: 32, 16: 16, 32: 8}, {32: 8, 16: 8, 8: 16}),
])
def test_attention_blocks_sit_at_the_requested_resolutions(arch, attention_res, g_channels,
                                                           d_inputs):
    config = _tiny(arch=arch, attention_res=attention_res)
    generator, discriminator = build_models(config)
    z = np.zeros((2, config.z_dim), np.float32)
    _, maps = generator(z, np.zeros(2, np.int32), return_attention=True)
    assert {r: tuple(m.shape) for r, m in maps.items()} == {
        r: (2, r * r, r * r // 4) for r in attention_res}  # keys and values 2x2 pooled
    discriminator(np.zeros((2, 32, 32, 3), np.float32), np.zeros(2, np.int32))
    assert _attention_inputs(generator) == {
        f"generator/attention{r}": (2, r, r, c) for r, c in g_channels.items()}
    assert _attention_inputs(discriminator) == {
        f"discriminator/attention{r}": (2, r, r, c) for r, c in d_inputs.items()}


def _parameters(model):
    """Trainable parameters of `model` outside its self-attention layers. Like PyTorch's
    `parameters()`, this leaves out the SN vectors u and the BN moving statistics."""
    attention = {id(v) for layer in nested_layers(model) if isinstance(layer, SelfAttention)
                 for v in layer.weights}
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights if id(v) not in attention)


def test_resnet_at_the_defaults_has_the_published_size():
    """SNGAN's CIFAR-10 ResNet: G about 4.3M parameters, D about 1.0M (its projection
    embedding included), conditional on 10 classes, attention left out."""
    config = TrainConfig(model="sagan").resolved()
    assert (config.arch, config.width, config.conditional, config.num_classes) == (
        "resnet", 64, True, 10)
    generator, discriminator = (m.build_weights() for m in build_models(config))
    assert isinstance(generator, resnet.ResNetGenerator)
    assert isinstance(discriminator, resnet.ResNetDiscriminator)
    assert generator.dense.kernel.shape == (128, 4 * 4 * 256)
    assert discriminator.label_embedding.kernel.shape == (10, 128)
    assert _parameters(generator) == pytest.approx(4.3e6, rel=0.1)
    assert _parameters(discriminator) == pytest.approx(1.0e6, rel=0.1)
    assert _attention_inputs(generator) and _attention_inputs(discriminator)


def test_cnn_discriminator_is_sngans_seven_convolutions():
    config = TrainConfig(model="sagan", arch="cnn").resolved()
    _, discriminator = build_models(config)
    assert isinstance(discriminator, sagan_cnn.SAGANDiscriminator)
    assert [(c.filters, c.kernel_size, c.strides) for c in discriminator.convs] == [
        (64, (3, 3), (1, 1)), (64, (4, 4), (2, 2)), (128, (3, 3), (1, 1)), (128, (4, 4), (2, 2)),
        (256, (3, 3), (1, 1)), (256, (4, 4), (2, 2)), (512, (3, 3), (1, 1))]
    _, tiny = build_models(_tiny(arch="cnn", attention_res=()))
    maps = tiny.feature_maps(np.zeros((2, 32, 32, 3), np.float32))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (32, 32, 8), (16, 16, 8), (16, 16, 16), (8, 8, 16), (8, 8, 32), (4, 4, 32), (4, 4, 64)]
    assert sum(isinstance(layer, SNConv2D) for layer in nested_layers(tiny)) == 7


@pytest.mark.parametrize("arch", ["resnet", "cnn"])
def test_keras_file_round_trip_gives_identical_outputs(arch, tmp_path):
    config = _tiny(arch=arch, width=4, attention_res=(8, 16), class_head=True)
    generator, discriminator = (m.build_weights() for m in build_models(config))
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, config.z_dim)).astype(np.float32)
    labels = np.array([0, 4, 9], np.int32)
    for variable in generator.trainable_variables + discriminator.trainable_variables:
        variable.assign(rng.normal(0, 0.1, variable.shape).astype(np.float32))  # gamma != 0
    generator(z, labels, training=True)  # moves the BN statistics and the SN vectors
    images = generator(z, labels).numpy()
    outputs = [o.numpy() for o in discriminator(images, labels, return_class_logits=True)]
    for model, path in ((generator, tmp_path / "g.keras"), (discriminator, tmp_path / "d.keras")):
        model.save(str(path))
    loaded_g = keras.saving.load_model(str(tmp_path / "g.keras"))
    loaded_d = keras.saving.load_model(str(tmp_path / "d.keras"))
    assert type(loaded_g) is type(generator) and type(loaded_d) is type(discriminator)
    np.testing.assert_array_equal(loaded_g(z, labels).numpy(), images)
    for a, b in zip(loaded_d(images, labels, return_class_logits=True), outputs):
        np.testing.assert_array_equal(a.numpy(), b)


@pytest.mark.parametrize("values,message", [
    (dict(model="sagan", attention_res=(32,)),
     "--attention_res=32 is not available with --arch=resnet: its G and D both have blocks at 8 "
     "and 16 only (none: --attention_res=); --arch=cnn takes 32"),
    (dict(model="sagan", arch="cnn", attention_res=(16, 64)), "--attention_res takes 8, 16, 32, "
     "got 64"),
    (dict(model="dcgan", arch="resnet"), "--arch=resnet picks a network of --model=sagan; "
     "--model=dcgan has one network: leave --arch out"),
    (dict(model="sagan", arch="dcgan"), "--arch takes resnet, cnn, got dcgan"),
])
def test_unsupported_architectures_give_one_line(values, message):
    with pytest.raises(UserError) as error:
        TrainConfig(**values).resolved()
    assert str(error.value) == message


def test_dcgan_generator_starts_at_4x4x128_by_default():
    config = TrainConfig(model="dcgan").resolved()
    generator, _ = build_models(config)
    generator.build_weights()
    assert generator.dense.kernel.shape == (100, 4 * 4 * 128)


def _kernel_matrices(model):
    """{layer path: its kernel as the matrix (fan-in, fan-out)} of every convolution, dense
    and embedding layer of `model`, except the conditional batch norms' gains and offsets."""
    matrices = {}
    for layer in nested_layers(model):
        if isinstance(layer, ConditionalBatchNorm) or layer.path.split("/")[-1] in (
                "scale", "offset"):
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is None and isinstance(layer, keras.layers.Embedding):
            kernel = layer.embeddings
        if kernel is not None and not layer.__class__.__name__.endswith("Normalization"):
            value = keras.ops.convert_to_numpy(kernel).astype(np.float64)
            matrices[layer.path] = value.reshape(-1, value.shape[-1])
    return matrices


def _is_orthogonal(matrix):
    """W^T W = I when W has at least as many rows as columns, else W W^T = I."""
    gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
    return np.allclose(gram, np.eye(len(gram)), atol=1e-5)


@pytest.mark.parametrize("arch", ["resnet", "cnn"])
def test_sagan_kernels_start_orthogonal_by_default_and_glorot_on_request(arch):
    config = _tiny(arch=arch, attention_res=(8, 16) if arch == "resnet" else (16,))
    assert config.init == "orthogonal"
    for network in build_models(config):
        matrices = _kernel_matrices(network.build_weights())
        assert len(matrices) > 8
        assert any(name.endswith("attention16/out") for name in matrices)
        assert all(_is_orthogonal(m) for m in matrices.values()), network.name
    keras.utils.set_random_seed(0)
    for network in build_models(_tiny(arch=arch, init="glorot")):
        matrices = _kernel_matrices(network.build_weights())
        assert not any(_is_orthogonal(m) for m in matrices.values() if min(m.shape) > 1)


def test_dcgan_keeps_its_normal_init_and_takes_orthogonal_on_request():
    config = _tiny(model="dcgan", conditional=True)
    assert config.init == "normal"
    for network in build_models(config):
        matrices = _kernel_matrices(network.build_weights())
        kernels = [m for name, m in matrices.items() if "embedding" not in name]
        assert np.concatenate([k.ravel() for k in kernels]).std() == pytest.approx(0.02, rel=0.05)
    for network in build_models(_tiny(model="dcgan", init="orthogonal")):
        matrices = _kernel_matrices(network.build_weights())
        assert matrices and all(_is_orthogonal(m) for m in matrices.values())

