"""Bad input ends every entry point with one `error: ...` line and exit code 2, before it
writes anything (or, where it can carry on, with one warning): a decompression-bomb image, a
garbage --inception_weights file, a folder that is no SavedModel or a damaged one, an --out or
--workdir or --save_dir that cannot be a folder, a batch larger than the data. And TensorFlow's
C++ log lines (E0000 ... cuInit, CUDA driver notes) stay out of the output."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from typing import Callable, Tuple

import numpy as np
import pytest
from PIL import Image

from tfgan_cifar import data as data_lib, tf_log_filter
from tfgan_cifar.errors import UserError
from tfgan_cifar.paths import check_writable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOMB_SIDE = 14000  # 196 Mpixels: over twice PIL's limit, so Image.open raises


@pytest.fixture(scope="session")
def folders(tmp_path_factory, cifar_like_dir):
    """The tiny image folder (three classes of eight 32x32 images), a copy of it with a
    decompression bomb in class `a`, a regular file, and garbage files users might pass."""
    root = tmp_path_factory.mktemp("faults")
    bombs = root / "with_bomb"
    shutil.copytree(cifar_like_dir / "train", bombs / "train")
    shutil.copytree(cifar_like_dir / "test", bombs / "test")
    Image.new("1", (BOMB_SIDE, BOMB_SIDE)).save(bombs / "train" / "a" / "bomb.png")
    (root / "somefile").write_text("a regular file\n")
    (root / "w.h5").write_text("not weights\n")
    os.makedirs(root / "not_a_model")
    (root / "not_a_model" / "notes.txt").write_text("nothing exported here\n")
    os.makedirs(root / "garbage_model" / "saved_model")
    (root / "garbage_model" / "saved_model" / "saved_model.pb").write_bytes(
        np.random.default_rng(0).bytes(300))
    _truncated_saved_model(root / "truncated_model")
    return {"root": root, "train": str(cifar_like_dir / "train"),
            "bomb_train": str(bombs / "train")}


def _truncated_saved_model(path):
    """A real SavedModel with a serving signature, its saved_model.pb cut in half."""
    import tensorflow as tf

    module = tf.Module()
    module.v = tf.Variable(1.0)
    module.serve = tf.function(lambda z, labels: {"images": z * module.v}, input_signature=[
        tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32)])
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    pb = path / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])


def _env():
    """The test process's environment with TensorFlow's logging left at this package's default."""
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    env.pop(tf_log_filter.VARIABLE, None)
    env.pop(tf_log_filter.MARKER, None)
    return env


def _tiny_train(f, *extra, workdir="run", image_dir=None):
    root = f["root"]
    return ["train.py", "--model=dcgan", "--width=4", "--batch_size=4", "--steps=1",
            "--log_every=1", "--sample_every=0", "--checkpoint_every=0", "--num_classes=3",
            "--eval_every=0", f"--image_dir={image_dir or f['train']}",
            f"--workdir={root / workdir}", f"--save_dir={root / workdir}-saved", *extra]


@dataclasses.dataclass
class Case:
    """One bad command line: what it runs, how it must end, and what it must not write."""

    argv: Callable  # folders -> [script or -m module, args...]
    code: int  # expected exit status
    says: str  # substring of the one `error:` line (or, with code 0, of a warning line)
    not_written: Tuple[str, ...] = ()  # paths under the fixture's root that must not exist
    unchanged: Tuple[str, ...] = ("somefile",)  # files under root whose content must not change
    setup: Callable = None  # folders -> None, or a reason to skip the case
    backend: str = None  # KERAS_BACKEND, when not the default (a process of its own)
    # Run as a process of its own: its exit status, and TensorFlow's C++ log lines at its
    # import, are those of the real command. The other cases call train.py's or evaluate.py's
    # main in this process: the same checks, without importing TensorFlow again.
    process: bool = False


def _read_only_workdir(f):
    folder = f["root"] / "read_only"
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o555)
    if os.access(folder, os.W_OK):
        return ("this process may write into a mode 0o555 folder (it runs as root), so a "
                "read-only --workdir cannot be made here; --workdir under a file covers the "
                "same check")
    return None


CASES = {
    # Item 1 (and 7): the bomb is skipped and named, training carries on, no C++ log noise.
    "decompression_bomb_is_skipped": Case(
        lambda f: _tiny_train(f, workdir="bomb_run", image_dir=f["bomb_train"]), 0,
        "bomb.png (Image size (196000000 pixels) exceeds limit", process=True),
    # Item 2: a text file named like weights. Detected when evaluation is built, after the
    # data; nothing is trained or exported.
    "garbage_inception_weights": Case(
        lambda f: _tiny_train(f, "--eval_every=1", "--fid_samples=8",
                              f"--inception_weights={f['root'] / 'w.h5'}",
                              f"--fid_cache_dir={f['root'] / 'fid_cache'}", workdir="w_run"),
        2, "w.h5 is not loadable InceptionV3 notop weights",
        not_written=("w_run/checkpoints", "w_run/export", "w_run-saved")),
    # Item 3: evaluate.py on a folder that is no export, and on damaged SavedModels.
    "evaluate_not_a_saved_model": Case(
        lambda f: ["evaluate.py", f"--saved_model={f['root'] / 'not_a_model'}", "--nofid",
                   f"--output_dir={f['root'] / 'eval_a'}"],
        2, "not_a_model holds no SavedModel", not_written=("eval_a",)),
    "evaluate_garbage_saved_model_pb": Case(
        lambda f: ["evaluate.py", f"--saved_model={f['root'] / 'garbage_model'}", "--nofid",
                   f"--output_dir={f['root'] / 'eval_b'}"],
        2, "garbage_model: the SavedModel cannot be loaded", not_written=("eval_b",)),
    "evaluate_truncated_saved_model_pb": Case(
        lambda f: ["evaluate.py", f"--saved_model={f['root'] / 'truncated_model'}", "--nofid",
                   f"--output_dir={f['root'] / 'eval_c'}"],
        2, "truncated_model: the SavedModel cannot be loaded", not_written=("eval_c",),
        process=True),
    # Item 4: the report's --out under a regular file.
    "report_out_under_a_file": Case(
        lambda f: ["-m", "tfgan_cifar.report", str(f["root"] / "no_run"),
                   f"--out={f['root'] / 'somefile' / 'report'}"],
        2, "somefile/report lies under", not_written=("no_run",), process=True),
    # Item 5: --workdir a file, under a file, read-only; --save_dir under a file.
    "workdir_is_a_file": Case(
        lambda f: _tiny_train(f, workdir="somefile"), 2,
        "--workdir=", not_written=("somefile-saved",)),
    "workdir_under_a_file": Case(
        lambda f: _tiny_train(f, workdir="somefile/run"), 2,
        "lies under", not_written=("somefile-saved",)),
    "workdir_read_only": Case(
        lambda f: _tiny_train(f, workdir="read_only/run"), 2,
        "--workdir=", not_written=("read_only/run",), setup=_read_only_workdir),
    "save_dir_under_a_file": Case(
        lambda f: _tiny_train(f, f"--save_dir={f['root'] / 'somefile' / 'saved'}",
                              workdir="s_run"),
        2, "--save_dir=", not_written=("s_run",)),
    # Empty paths: the current directory, or silently the default, unless refused.
    "empty_save_dir": Case(lambda f: _tiny_train(f, "--save_dir=", workdir="e_run"), 2,
                           "--save_dir= is empty", not_written=("e_run",)),
    "empty_workdir": Case(lambda f: _tiny_train(f, "--workdir="), 2, "--workdir= is empty"),
    # The sweep checks every run's flags before the first one starts.
    "sweep_unknown_flag": Case(
        lambda f: ["-m", "tfgan_cifar.sweep", "--grid", "loss=hinge,lsgan", "--stepz=3",
                   "--model=dcgan", f"--image_dir={f['train']}", f"--workdir={f['root'] / 'sw'}"],
        2, "--stepz=3: train.py has no --stepz; did you mean --steps?",
        not_written=("sw_losshinge", "sw_losslsgan"), process=True),
    # bench.py checks its flags and its output folder before any worker runs.
    "bench_negative_steps": Case(
        lambda f: ["bench/bench.py", "--steps=-1", f"--out={f['root'] / 'bench_a' / 'r.json'}"],
        2, "--steps=-1 must be at least 1", not_written=("bench_a",), process=True),
    "bench_out_under_a_file": Case(
        lambda f: ["bench/bench.py", f"--out={f['root'] / 'somefile' / 'r.json'}"],
        2, "somefile is a file, not a folder", process=True),
    # A multi-machine start checks its addresses before connecting.
    "coordinator_without_port": Case(
        lambda f: _tiny_train(f, "--distribute=multi_worker", "--coordinator_address=127.0.0.1",
                              "--num_processes=2", "--process_id=1", workdir="c_run"),
        2, "--coordinator_address=127.0.0.1 is not an address: pass HOST:PORT",
        not_written=("c_run", "c_run-saved"), backend="jax", process=True),
    # Item 6: 24 images, batch 64: refused after loading the data, before anything is written.
    "batch_larger_than_the_data": Case(
        lambda f: _tiny_train(f, "--batch_size=64", workdir="b_run"), 2,
        "--batch_size=64 is larger than the data set (24 images",
        not_written=("b_run-saved", "b_run")),  # the workdir it created is removed
}


def _run_process(argv, backend):
    """(exit status, stdout, stderr) of `argv` (a script or `-m module`, then its arguments)
    run by this Python from the checkout."""
    command = [sys.executable, *([os.path.join(ROOT, argv[0])] if argv[0].endswith(".py")
                                 else argv[:1]), *argv[1:]]
    env = {**_env(), **({"KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"} if backend else {})}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    return result.returncode, result.stdout, result.stderr


def _run_in_process(argv, capfd):
    """(exit status, stdout, stderr) of train.py's or evaluate.py's main called with `argv`."""
    from tfgan_cifar.commands import evaluate, train

    main = {"train.py": train.main, "evaluate.py": evaluate.main}[argv[0]]
    capfd.readouterr()
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    out, err = capfd.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_ends_with_one_line_and_writes_nothing(case, folders, capfd):
    root = folders["root"]
    if case.setup is not None:
        reason = case.setup(folders)
        if reason:
            pytest.skip(reason)
    before = {name: (root / name).read_bytes() for name in case.unchanged}
    argv = case.argv(folders)
    assert case.process or case.backend is None, "another backend needs a process of its own"
    code, stdout, stderr = (_run_process(argv, case.backend) if case.process
                            else _run_in_process(argv, capfd))
    output = stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == case.code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    if case.code:
        assert len(errors) == 1 and case.says in errors[0], stderr[-3000:]
    else:
        assert not errors, stderr[-3000:]
        assert any(case.says in line and "skipped 1 unreadable" in line
                   for line in stderr.splitlines()), stderr[-3000:]
        assert "step 1/1" in stdout
    if case.process:
        # Item 7: no C++ log line of TensorFlow in a default run (here, from TensorFlow's
        # import, first op and graph functions). TensorFlow prints most of them as it loads,
        # so only a fresh process shows them.
        noise = [line for line in output.splitlines()
                 if line.startswith(("E0000", "I0000", "W0000")) or "cuInit" in line
                 or "Could not find cuda drivers" in line or "absl::InitializeLog" in line]
        assert not noise, noise
    for name in case.not_written:
        assert not os.path.exists(root / name), name
    for name, content in before.items():
        assert (root / name).read_bytes() == content, name


# In-process checks of the pieces the matrix runs through.

def test_a_decompression_bomb_is_named_and_skipped(folders, caplog):
    images = data_lib.load_image_folder(folders["bomb_train"])
    assert len(images) == 24 and images.images.shape[1:] == (32, 32, 3)
    assert "bomb.png" in caplog.text and "decompression bomb" in caplog.text


def test_images_over_the_pixel_limit_but_under_twice_it_are_skipped_too(tmp_path, caplog):
    os.makedirs(tmp_path / "a")
    Image.new("1", (10000, 10000)).save(tmp_path / "a" / "big.png")  # PIL only warns
    Image.new("RGB", (32, 32)).save(tmp_path / "a" / "ok.png")
    assert len(data_lib.load_image_folder(str(tmp_path))) == 1
    assert "big.png (Image size (100000000 pixels)" in caplog.text


def test_check_batch_size_names_the_flag_the_size_and_what_to_do():
    images = data_lib.ImageSet(np.zeros((5, 32, 32, 3), np.uint8), np.zeros(5, np.int32),
                               ["a"], "folder:/x")
    data_lib.check_batch_size(images, 5)
    with pytest.raises(UserError) as error:
        data_lib.check_batch_size(images, 6)
    assert str(error.value) == ("--batch_size=6 is larger than the data set (5 images in "
                                "folder:/x): pass --batch_size=5 or less, or more images")


def test_check_writable(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    os.symlink(tmp_path / "nowhere", tmp_path / "broken")
    expected = {
        "file": "--workdir=%s is a file, not a folder",
        "file/run": "--workdir=%s lies under",
        "file/a/b": "--workdir=%s lies under",
        "broken": "--workdir=%s is a broken symbolic link",
    }
    for name, message in expected.items():
        with pytest.raises(UserError, match="^" + message % (tmp_path / name)):
            check_writable(str(tmp_path / name), "--workdir")
    assert check_writable(str(tmp_path / "new" / "run"), "workdir") == str(tmp_path / "new" / "run")
    assert sorted(os.listdir(tmp_path)) == ["broken", "file"]  # creates nothing

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path)
                        else real_access(p, mode))
    with pytest.raises(UserError, match="--save_dir=.* is not writable .*read-only.*pass a "
                       "folder you can write to"):
        check_writable(str(tmp_path / "new"), "--save_dir")


def test_filtered_stderr_drops_only_the_noise(capfd):
    with tf_log_filter.filtered_stderr(["cudart_stub.cc"]):
        os.write(2, b"I0000 123 cudart_stub.cc:31] Could not find cuda drivers\nkept line\n")
        print("python line", file=sys.stderr, flush=True)
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == ["kept line", "python line"], err


def test_the_onednn_line_is_load_noise(capfd):
    # Printed on AVX-512 CPUs only, so a quiet run elsewhere does not prove it is filtered.
    line = (b"I0000 00:00:1796652184.086549    6006 port.cc:153] oneDNN custom operations are "
            b"on. You may see slightly different numerical results due to floating-point "
            b"round-off errors from different computation orders.\n")
    with tf_log_filter.filtered_stderr(tf_log_filter.LOAD_NOISE):
        os.write(2, line + b"kept line\n")
    assert capfd.readouterr().err == "kept line\n"


@pytest.mark.parametrize("user_level,expected", [(None, "3"), ("0", "0"), ("2", "2")])
def test_the_quiet_level_is_a_default_that_the_user_overrides(user_level, expected):
    env = _env()
    if user_level is not None:
        env[tf_log_filter.VARIABLE] = user_level
    code = ("import os; import tfgan_cifar.cli; "
            f"print(os.environ[{tf_log_filter.VARIABLE!r}])")
    # train.py sets TF_CPP_MIN_LOG_LEVEL=2 itself before importing cli: that is no user choice.
    setdefault = f"import os; os.environ.setdefault({tf_log_filter.VARIABLE!r}, '2'); "
    result = subprocess.run([sys.executable, "-c", setdefault + code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == expected, result.stderr


def _entry_point_configs():
    from tfgan_cifar.classifier import ClassifierOptions
    from tfgan_cifar.config import TrainConfig
    from tfgan_cifar.evaluate_model import EvaluateOptions
    from tfgan_cifar.report.__main__ import ReportOptions

    return (TrainConfig, EvaluateOptions, ReportOptions, ClassifierOptions)


# The string settings that name no file or folder.
NOT_PATHS = {"model", "precision", "distribute", "coordinator_address", "arch", "loss",
             "optimizer", "lr_decay", "init", "fid_network", "fid_reference", "protocol"}


def test_an_empty_path_flag_is_refused_by_every_entry_point():
    from absl import flags

    from tfgan_cifar import cli
    from tfgan_cifar.config import settings, value_type

    refused = 0
    for config_class in _entry_point_configs():
        for field in settings(config_class):
            if value_type(field)[0] is not str or field.name in NOT_PATHS:
                continue
            assert field.name in cli.PATH_SETTINGS, (config_class.__name__, field.name)
            flag_values = flags.FlagValues()
            cli.define_flags(config_class, flag_values)
            cli.parse_flags(["prog", f"--{field.name}="], flag_values)
            with pytest.raises(UserError, match=f"^--{field.name}= is empty: pass a path"):
                cli.config_from_flags(config_class, flag_values, warn=False)
            refused += 1
    assert refused >= 20


def test_bench_exits_non_zero_when_a_worker_fails_and_creates_its_output_folder(folders):
    out = folders["root"] / "bench_new" / "results.json"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "bench.py"), "--backends=jax",
         "--models=dcgan", "--extra=width=0", "--fid_images=0", f"--out={out}"],
        cwd=ROOT, env={**_env(), "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == (
        f"error: the jax worker failed (see above); the other results are in {out}")
    assert out.exists()


def _closed_port():
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _joining(tmp_path, backend, timeout, missing=1, own_port=None):
    """train.py as one of the two processes of a multi-worker run on `backend` (the JAX
    process 1, or TensorFlow's worker 1 - `missing` at `own_port`, default a free one), the
    other one at a closed loopback port; returns the process, once it said it is joining, and
    that port."""
    port = _closed_port()
    flags = [f"--connect_timeout={timeout}", f"--workdir={tmp_path / 'run'}",
             f"--save_dir={tmp_path / 'saved'}", "--image_dir=/nonexistent"]
    if backend == "jax":
        flags += [f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                  "--process_id=1"]
        env = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    else:
        workers = [f"127.0.0.1:{port}", f"127.0.0.1:{own_port or _closed_port()}"]
        workers = workers if missing == 0 else workers[::-1]
        env = {"KERAS_BACKEND": "tensorflow", "TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 1 - missing}})}
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "train.py"), "--model=dcgan",
         "--distribute=multi_worker", *flags], cwd=ROOT, env={**_env(), **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("joining the other processes")
    return process, port


@pytest.mark.parametrize("backend, missing, unreachable", [
    ("jax", 1, "--coordinator_address=127.0.0.1:{port} did not answer (Connection refused)"),
    ("tensorflow", 0, "worker 0 at 127.0.0.1:{port} (Connection refused) did not answer"),
    ("tensorflow", 1, "worker 1 at 127.0.0.1:{port} (Connection refused) did not answer")],
    ids=["jax", "tensorflow-chief-missing", "tensorflow-worker-missing"])
def test_an_unreachable_process_ends_the_start_with_one_line_after_connect_timeout(
        tmp_path, backend, missing, unreachable):
    import time

    process, port = _joining(tmp_path, backend, 2, missing)
    started = time.monotonic()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert time.monotonic() - started < 30
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"within --connect_timeout=2s: {unreachable.format(port=port)}" in errors[0]
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_wait_for_the_other_processes_at_once(tmp_path, backend, signum):
    import time

    process, _ = _joining(tmp_path, backend, 600)
    process.send_signal(signum)
    started = time.monotonic()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert time.monotonic() - started < 10
    assert f"{signal.Signals(signum).name} received while joining" in err
    assert "Traceback" not in err
    assert not os.path.exists(tmp_path / "run")


def test_a_tensorflow_cluster_that_cannot_start_is_one_line(tmp_path):
    """This worker's own port is taken: TensorFlow cannot start its server."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process, _ = _joining(tmp_path, "tensorflow", 60, missing=1,
                              own_port=taken.getsockname()[1])
        out, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert err.splitlines()[-1] == (
        "error: --distribute=multi_worker could not join TF_CONFIG's cluster (Could not start "
        "gRPC server): check its addresses, that this task's port is free and that every task "
        "is started with the same cluster")
    assert not os.path.exists(tmp_path / "run")
