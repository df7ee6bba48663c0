"""Shared fixtures: a tiny CIFAR-like image folder and a local InceptionV3 weights file; and
the environment every test and its subprocesses run in."""

import os

# One OpenBLAS thread, set before NumPy loads it: with its default of a thread a core (two
# here), the eigh of FID's 2048 x 2048 covariances takes ten times as long (20 s, not 2), and
# the pytest-xdist workers keep both cores busy anyway.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

# XLA's CPU code generation at LLVM optimisation level 0, for every JAX step the tests compile
# (the JAX worker, JAX training processes) and TensorFlow's --jit_compile: they compile in about
# a third of the time. The HLO (fusion, sharding, collectives) is the same; only the machine
# code of a few steps of tiny networks is slower. Subprocesses inherit it.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_backend_optimization_level=0").strip()


@pytest.fixture(scope="session")
def cifar_like_dir(tmp_path_factory):
    """<root>/train and <root>/test, three classes of eight random 32x32 images each."""
    root = tmp_path_factory.mktemp("cifar_like")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b", "c"):
            os.makedirs(root / split / name)
            for i in range(8):
                pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def inception_weights_file(tmp_path_factory):
    """A randomly initialised InceptionV3 (no top) saved the way a user's local file would be."""
    import keras

    path = tmp_path_factory.mktemp("inception") / "inception_v3_notop.weights.h5"
    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg",
                                           input_shape=(299, 299, 3))
    model.save_weights(str(path))
    return str(path)


@pytest.fixture(scope="session")
def untrained_classifier_file(tmp_path_factory):
    """An untrained 3-class reference classifier file (for cifar_like_dir): enough to check
    the plumbing of the metrics."""
    import keras

    from tfgan_cifar import reference_classifier

    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("untrained") / "c3.keras")
    return reference_classifier.save(reference_classifier.build_classifier(3, width=4), path, {})
