"""Shared fixtures: a tiny CIFAR-like image folder and a local InceptionV3 weights file; and
the environment every test and its subprocesses run in."""

import os
import sys

# One OpenBLAS thread, set before NumPy loads it: with its default of a thread a core (two
# here), the eigh of FID's 2048 x 2048 covariances takes ten times as long (20 s, not 2), and
# the pytest-xdist workers keep both cores busy anyway.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from tfgan_cifar.import_hook import on_first_import  # noqa: E402

# XLA's CPU code generation at LLVM optimisation level 0 and without LLVM's expensive passes,
# for every JAX step the tests compile (the JAX worker, JAX training processes) and
# TensorFlow's --jit_compile: they compile in about a quarter of the time. The HLO (fusion,
# sharding, collectives) is the same; only the machine code of a few steps of tiny networks is
# slower. Subprocesses inherit it.
for _flag in ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()


def _without_grappler(load):
    """Loads TensorFlow with Grappler's graph rewrites off, in the test processes: a tiny
    step's graph then runs as traced, sooner, since its first call skips the rewrites. What the
    graph computes is the same; only its CPU kernels are not fused."""
    load()
    sys.modules["tensorflow"].config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": True})


on_first_import("tensorflow", _without_grappler)


@pytest.fixture(scope="session", autouse=True)
def one_jax_compilation_cache(tmp_path_factory):
    """One persistent XLA cache for the JAX processes the tests start, shared by the pytest-xdist
    workers of this run and new for each run: a run, its resumptions and its kill -9 restarts
    compile their step once."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base
    os.environ.update(JAX_COMPILATION_CACHE_DIR=str(shared / "xla_cache"),
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


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
# its own, taken by whichever worker is free. Units start longest first (UNIT_SECONDS), so
# that the two workers finish together: no long unit starts while the other worker runs out
# of work. Only where and when tests run changes, never what runs.
SPREAD = ("test_faults.py", "test_training.py", "test_studies.py", "test_augment.py",
          "test_precision.py", "test_cli.py", "test_models.py", "test_bench_quality.py",
          "test_fid_standard.py", "test_steps_per_call.py")
# The longest units (a file, or a test of a SPREAD file: its longest parameter) and their
# seconds in a full run (at 4f1b1e0, on idle cores): only their order
# matters. The units not named here are shorter and start last, in file order.
UNIT_SECONDS = {
    "test_run_integrity.py": 162,
    "test_jax_backend.py": 158,
    "test_distributed.py": 104,
    "test_gpu_run.py": 84,
    "test_evaluation.py": 83,
    "test_packaging.py": 50,
    "test_report.py": 45,
    "test_classifier.py": 40,
    "test_bench.py": 30,
    "test_training.py::test_train_py_leaves_config_checkpoint_events_and_samples": 28,
    "test_precision.py::test_each_half_precision_trains_in_its_dtype_and_keeps_sn_"
    "and_exports_float32": 24,
    "test_steps_per_call.py::test_a_run_of_two_steps_per_call_resumes_into_the_same_state": 24,
    "test_training.py::test_steps_give_finite_losses_and_update_both_networks": 22,
    "test_notebook.py": 21,
    "test_fid.py": 21,
    "test_bench_quality.py::test_quality_trains_a_preset_scores_it_and_names_its_extra_flags": 20,
    "test_steps_per_call.py::test_k_steps_in_one_call_equal_k_single_steps": 19,
    "test_sampling.py": 17,
    "test_fid_standard.py::test_standard_fid_in_a_tiny_training_run_and_in_evaluate": 17,
    "test_training.py::test_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes": 17,
    "test_training.py::test_resume_matches_an_uninterrupted_run": 16,
    "test_fid_standard.py::test_standard_network_reproduces_the_reference_features_on_jax": 14,
    "test_tensorboard.py": 13,
    "test_bench_quality.py::test_calibration_adds_fid_and_inception_precision_recall_"
    "given_inception_weights": 11,
    "test_bench_quality.py::test_calibration_uses_the_standard_network_once_its_"
    "weights_are_made": 11,
    "test_export.py": 11,
    "test_faults.py::test_bad_input_ends_with_one_line_and_writes_nothing": 10,
    "test_studies.py::test_gradient_penalty_is_part_of_the_step": 9,
    "test_training.py::test_checkpoint_restores_every_variable": 7,
    "test_faults.py::test_an_unreachable_process_ends_the_start_with_one_line_after_"
    "connect_timeout": 7,
    "test_studies.py::test_replay_buffer_is_checkpointed": 7,
    "test_training.py::test_the_ema_generator_samples_with_the_sigma_of_its_own_weights": 6,
    "test_studies.py::test_classifier_head_learns_separable_classes_and_is_logged": 6,
    "test_models.py::test_keras_file_round_trip_gives_identical_outputs": 6,
}


def _unit(nodeid):
    """The work unit of a test: its file, or the test itself in a SPREAD file."""
    path = nodeid.split("::", 1)[0]
    return nodeid if os.path.basename(path) in SPREAD else path


def _unit_seconds(nodeid):
    path, _, test = nodeid.partition("::")
    name = os.path.basename(path)
    if name in SPREAD:
        name += "::" + test.split("[", 1)[0]
    return UNIT_SECONDS.get(name, 0)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadFileScheduling

    class SpreadOrFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            return _unit(nodeid)

    return SpreadOrFileScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -_unit_seconds(item.nodeid))
