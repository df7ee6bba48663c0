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


# How the two pytest-xdist workers share the suite (pytest.ini: -n auto --dist loadfile
# --no-loadscope-reorder). A file is one work unit, so that its module-scoped fixtures (a
# trained run, a worker process's results) are built once, except the files in SPREAD: their
# tests share nothing costly (shared data there is session-scoped), so each test is a unit of
# its own, taken by whichever worker is free. The files in SLOWEST_FIRST start first, in its
# order, so that no long unit starts last while the other worker runs out of work. Only where
# and when tests run changes, never what runs.
SPREAD = ("test_faults.py", "test_training.py", "test_studies.py", "test_augment.py",
          "test_precision.py", "test_cli.py", "test_models.py")
SLOWEST_FIRST = ("test_jax_backend.py", "test_distributed.py", "test_run_integrity.py",
                 "test_packaging.py", "test_evaluation.py", "test_report.py",
                 "test_classifier.py", "test_fid_standard.py", "test_faults.py",
                 "test_tensorboard.py", "test_sampling.py", "test_training.py",
                 "test_bench_quality.py", "test_bench.py", "test_studies.py",
                 "test_augment.py", "test_precision.py", "test_notebook.py", "test_fid.py")


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadFileScheduling

    class SpreadOrFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return nodeid if os.path.basename(path) in SPREAD else path

    return SpreadOrFileScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(item.path), len(rank)))
