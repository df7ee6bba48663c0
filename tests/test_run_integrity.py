"""A run survives divergence, a second process, kills, corrupt checkpoints and changed flags.

Most cases start from one tiny trained run directory, copied per case.
"""

import dataclasses
import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import no_tensorflow
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import TrainingDiverged, UserError
from tfgan_cifar.nn.base import nested_layers
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.training import loop, objective
from tiny_runs import event_steps, tiny_config, train_eagerly

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The TensorFlow train.py processes of the signal and kill tests step with --run_eagerly: their
# subject is the process (signals, checkpoints, logs), and an eager tiny step saves each
# process the step's tracing (the compiled step is tested in test_training.py).


def tiny(image_dir, workdir, **overrides):
    """A tiny DCGAN run, checkpointed every 2 steps."""
    return tiny_config("dcgan", image_dir, workdir, **{"checkpoint_every": 2, **overrides})


def logged_steps(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [r["step"] for r in map(json.loads, f) if r["kind"] == "train"]


@pytest.fixture(scope="module")
def trained(cifar_like_dir, tmp_path_factory):
    """A finished 4-step run with checkpoints at steps 2 and 4 and a final export, trained
    with --run_eagerly, as are the tests' resumptions of its copies: their subject is the run's
    files."""
    return train_eagerly(tiny(cifar_like_dir / "train",
                              tmp_path_factory.mktemp("trained") / "run"))


@pytest.fixture
def copy_of(trained, tmp_path):
    """A copy of the trained run in tmp_path, with its config pointing there."""
    workdir = tmp_path / "run"
    shutil.copytree(trained.workdir, workdir)
    return dataclasses.replace(trained, workdir=str(workdir),
                               save_dir=str(tmp_path / "saved_models"))


def _all_finite(checkpoint_prefix):
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    return all(np.isfinite(reader.get_tensor(name)).all()
               for name, dtype in reader.get_variable_to_dtype_map().items()
               if dtype.is_floating)


def test_divergence_stops_with_the_step_and_the_last_good_checkpoint(cifar_like_dir, tmp_path):
    config = tiny(cifar_like_dir / "train", tmp_path / "run", lr_g=1e30, lr_d=1e30, steps=6,
                  checkpoint_every=1)
    with pytest.raises(TrainingDiverged, match=r"not finite at step (\d+)") as raised:
        loop.train(config)
    run = RunDir(config.workdir)
    checkpoints = run.checkpoint_files()["tensorflow"]
    message = str(raised.value)
    step = int(message.split("not finite at step ")[1].split(";")[0])
    assert all(saved < step for saved, _ in checkpoints)
    if checkpoints:
        assert f"last good checkpoint is {checkpoints[-1][1]}" in message
    assert all(_all_finite(prefix) for _, prefix in checkpoints)
    assert run.exported("final") is None and run.exported("best") is None


def test_the_step_flags_a_non_finite_loss_on_the_device(cifar_like_dir, tmp_path):
    from tfgan_cifar import data
    from tfgan_cifar.training.tf_backend import TFTrainer

    config = tiny(cifar_like_dir / "train", tmp_path / "run", lr_g=1e30, lr_d=1e30)
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    trainer.start()
    assert trainer.diverged_at() == 0
    for _ in range(4):
        trainer.train_step()
    assert 1 <= trainer.diverged_at() <= 4
    assert not objective.all_finite([tf.constant([1.0, np.nan])])


@pytest.mark.parametrize("network", ["discriminator", "generator"])
def test_an_infinite_batch_norm_statistic_alone_is_flagged_and_never_checkpointed(
        cifar_like_dir, tmp_path, network):
    """Training-mode batch norm uses the batch's statistics, so an infinite moving variance
    leaves the losses and weights finite: only a flag over the whole state sees it."""
    import keras

    from tfgan_cifar import data
    from tfgan_cifar.training.tf_backend import TFTrainer

    config = tiny(cifar_like_dir / "train", tmp_path / "run")
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    model = trainer.discriminator if network == "discriminator" else trainer.generator
    norm = next(layer for layer in nested_layers(model)
                if isinstance(layer, keras.layers.BatchNormalization))
    norm.moving_variance.assign(np.full(norm.moving_variance.shape, np.inf, np.float32))
    trainer.start()
    trainer.train_step()
    assert all(np.isfinite(w).all() for w in trainer.read("g") + trainer.read("d"))
    assert trainer.diverged_at() == 1
    with pytest.raises(TrainingDiverged, match="not finite at step 1; no checkpoint was "
                       "written before it"):
        loop.check_finite(trainer)


@pytest.mark.parametrize("flags", ["--lr_g=inf", "--aux_weight=nan", "--gp_weight=nan"])
def test_non_finite_flags_are_refused(flags):
    with pytest.raises(UserError, match="finite"):
        TrainConfig(**{flags[2:].split("=")[0]: float(flags.split("=")[1])}).resolved()


def test_a_second_process_on_the_workdir_is_refused_and_a_killed_holder_frees_it(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    with run.lock():
        env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "train.py"), f"--workdir={run.path}",
             "--image_dir=/nonexistent"], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert f"process {os.getpid()}" in errors[0] and "in use" in errors[0]
    assert not os.path.exists(run.config_path)  # refused before anything was written

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
         "from tfgan_cifar.run_dir import RunDir\n"
         "with RunDir(sys.argv[2]).lock():\n print('locked', flush=True); time.sleep(600)",
         ROOT, run.path], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(UserError, match=f"process {holder.pid}"):
        with run.lock():
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with run.lock():  # the dead holder's lock is gone with it
        pass


def test_metrics_without_a_checkpoint_start_again_from_step_0(copy_of, capsys):
    shutil.rmtree(RunDir(copy_of.workdir).checkpoints)
    loop.train(dataclasses.replace(copy_of, steps=3))
    assert ("resuming from step 0 (no checkpoint yet): dropped the metrics and TensorBoard "
            "events of steps 1..4, which are trained again") in capsys.readouterr().out
    assert logged_steps(copy_of.workdir) == [1, 2, 3]


def test_rewinding_drops_records_and_events_past_the_step_atomically(tmp_path):
    from tfgan_cifar.training.summaries import Summaries

    run = RunDir(str(tmp_path))
    for step in (1, 2, 3):
        run.metrics.append("train", step, {"g_loss": 1.0})
    run.metrics.append("eval", 2, {"fid": 3.0})
    with open(run.metrics.path, "a") as f:
        f.write('{"kind": "train", "st')  # cut short by a kill
    summaries = Summaries(str(tmp_path))
    for step in (1, 2, 3):
        summaries.scalars(step, {"loss/generator": step})
    summaries.flush()
    loop.rewind(run, 2)
    assert [(r["kind"], r["step"]) for r in run.metrics.records()] == [
        ("train", 1), ("train", 2), ("eval", 2)]
    assert event_steps(str(tmp_path)) == [1, 2]
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    loop.rewind(run, 0)
    assert run.metrics.records() == [] and event_steps(str(tmp_path)) == []


def test_checkpoints_of_the_other_backend_are_refused_by_name(copy_of):
    checkpoints = RunDir(copy_of.workdir).checkpoints
    for path in glob.glob(os.path.join(checkpoints, "ckpt-*")):
        os.remove(path)
    os.remove(os.path.join(checkpoints, "checkpoint"))
    open(os.path.join(checkpoints, "ckpt-4.npz"), "wb").close()
    with pytest.raises(UserError, match="holds jax checkpoints.*KERAS_BACKEND=jax"):
        loop.train(dataclasses.replace(copy_of, steps=6))


def test_checkpoint_names_are_the_on_disk_format_runs_resume_from(cifar_like_dir, tmp_path):
    # Hard-coded: a change to them stops every earlier run from resuming. Mixed precision,
    # EMA, replay and a class head, so that every part of the state is there.
    from tfgan_cifar import data
    from tfgan_cifar.training.tf_backend import TFTrainer

    config = tiny(cifar_like_dir / "train", tmp_path, ema_decay=0.5, replay_size=8,
                  class_head=True, precision="mixed_float16")
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    value = "/.ATTRIBUTES/VARIABLE_VALUE"
    by_position = {"generator": 17, "discriminator": 20, "ema_generator": 17, "g_optimizer": 24,
                   "d_optimizer": 34, "loss_scale/g": 4, "loss_scale/d": 4}
    expected = ({f"{part}/v{i:04d}{value}" for part, count in by_position.items()
                 for i in range(count)}
                | {name + value for name in ("replay/images", "replay/labels", "replay/position",
                                             "replay/filled", "step", "rng/_state_var",
                                             "save_counter")}
                | {"_CHECKPOINTABLE_OBJECT_GRAPH"})
    assert {name for name, _ in tf.train.list_variables(trainer.save())} == expected


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before(copy_of, capsys):
    run = RunDir(copy_of.workdir)
    data_file = glob.glob(os.path.join(run.checkpoints, "ckpt-4.data-*"))[0]
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 2)
    loop.train(dataclasses.replace(copy_of, steps=6))
    out = capsys.readouterr().out
    assert "ckpt-4 cannot be read" in out and "at step 2" in out and "steps 3..6" in out
    assert logged_steps(copy_of.workdir) == [1, 2, 3, 4, 5, 6]  # 3 and 4 are not logged twice


def test_an_empty_checkpoint_index_is_rebuilt(copy_of, capsys):
    open(os.path.join(RunDir(copy_of.workdir).checkpoints, "checkpoint"), "w").close()
    loop.train(dataclasses.replace(copy_of, steps=5))
    out = capsys.readouterr().out
    assert "is unreadable" in out and "at step 4" in out and "steps 5..5" in out


def test_a_finished_run_without_its_final_export_exports_it_when_rerun(copy_of):
    run = RunDir(copy_of.workdir)
    shutil.rmtree(run.export_dir("final"))
    stale = os.path.join(os.path.dirname(run.export_dir("final")), ".final.tmp-999999999-1")
    os.makedirs(stale)  # left by a process killed mid-export
    loop.train(copy_of)
    assert run.exported("final") and not os.path.exists(stale)
    with open(os.path.join(run.export_dir("final"), "best.json")) as f:
        assert json.load(f)["step"] == 4


@pytest.mark.parametrize("change", [dict(ema_decay=0.9), dict(optimizer="sgd"),
                                    dict(loss="lsgan"), dict(lr_d=1e-3)])
def test_flags_that_would_change_the_saved_state_are_refused(copy_of, change):
    before = open(RunDir(copy_of.workdir).config_path).read()
    with pytest.raises(UserError, match=f"holds a run with {next(iter(change))}="):
        loop.prepare_workdir(dataclasses.replace(copy_of, **change))
    assert open(RunDir(copy_of.workdir).config_path).read() == before


def test_length_cadences_and_evaluation_may_change(copy_of):
    loop.prepare_workdir(dataclasses.replace(copy_of, steps=9, log_every=3, eval_every=5,
                                             fid_samples=50))
    with open(RunDir(copy_of.workdir).config_path) as f:
        assert json.load(f)["steps"] == 9


def test_seed_fixes_dcgan_weights():
    def dense_kernel(seed):
        config = TrainConfig(model="dcgan", width=4, z_dim=8, num_classes=3, seed=seed,
                             ema_decay=0.0).resolved()
        return objective.build_networks(config)[0].dense.kernel.numpy()

    np.testing.assert_array_equal(dense_kernel(0), dense_kernel(0))
    assert not np.array_equal(dense_kernel(0), dense_kernel(1))


def test_sigterm_exits_143_after_its_checkpoint_and_kill_9_loses_nothing_logged(
        cifar_like_dir, tmp_path):
    workdir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}

    def start(steps):
        return subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "train.py"), "--model=dcgan",
             f"--image_dir={cifar_like_dir / 'train'}", f"--workdir={workdir}", "--width=4",
             "--z_dim=8", "--batch_size=4", "--num_classes=3", "--log_every=1",
             "--sample_every=0", "--checkpoint_every=2", "--eval_every=0", f"--steps={steps}",
             f"--save_dir={tmp_path / 'saved'}", "--run_eagerly"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    process = start(100000)
    for line in process.stdout:
        if line.startswith("step 3/"):
            process.send_signal(signal.SIGTERM)
            break
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 128 + signal.SIGTERM, output
    stopped = int(output.split("stopped at step ")[1].split(";")[0])
    run = RunDir(str(workdir))
    assert run.checkpoint_files()["tensorflow"][-1][0] == stopped

    process = start(100000)  # resumes; killed with -9 once its next checkpoint is on disk
    target = stopped + (2 - stopped % 2)
    for line in process.stdout:
        if line.startswith(f"step {target + 1}/"):  # ckpt-<target> was written before this
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert run.checkpoint_files()["tensorflow"][-1][0] == target

    process = start(target + 3)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    assert f"steps {target + 1}..{target + 3}" in output
    assert logged_steps(str(workdir)) == list(range(1, target + 4))


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_kill_9_before_the_first_checkpoint_or_between_two_resumes_without_double_logging(
        backend, cifar_like_dir, tmp_path):
    workdir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": "",
           "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    run = RunDir(str(workdir))

    def command(steps, checkpoint_every):
        args = [os.path.join(ROOT, "train.py"), "--model=dcgan",
                f"--image_dir={cifar_like_dir / 'train'}", f"--workdir={workdir}", "--width=4",
                "--z_dim=8", "--batch_size=4", "--num_classes=3", "--log_every=1",
                "--sample_every=0", f"--checkpoint_every={checkpoint_every}", "--eval_every=0",
                f"--steps={steps}", f"--save_dir={tmp_path / 'saved'}"]
        if backend == "tensorflow":
            return [sys.executable, *args, "--run_eagerly"]
        # JAX as on a machine without TensorFlow (no SavedModel conversion to wait for); its
        # TensorBoard events are written all the same.
        return no_tensorflow.command(*args, modules=("tensorflow", "tensorflow_datasets"))

    def kill_after(step):
        """Trains with no checkpoint due, killed with -9 once `step` is logged; returns the
        last step metrics.jsonl holds."""
        process = subprocess.Popen(command(100000, 100000), cwd=ROOT, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in process.stdout:
            if line.startswith(f"step {step}/"):
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=60)
        return run.metrics.last_logged()

    def finish(steps):
        result = subprocess.run(command(steps, 2), cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    logged = kill_after(3)  # before the first checkpoint
    assert logged >= 3 and not run.checkpoint_files()[backend]
    output = finish(2)
    assert (f"resuming from step 0 (no checkpoint yet): dropped the metrics and TensorBoard "
            f"events of steps 1..{logged}") in output
    assert logged_steps(str(workdir)) == [1, 2] and event_steps(str(workdir)) == [1, 2]

    logged = kill_after(4)  # between checkpoints: ckpt-2 is the newest
    assert logged >= 4 and run.checkpoint_files()[backend][-1][0] == 2
    output = finish(logged + 1)
    assert f"resuming from its checkpoint of step 2: dropped" in output
    assert f"steps 3..{logged + 1}" in output
    expected = list(range(1, logged + 2))
    assert logged_steps(str(workdir)) == expected and event_steps(str(workdir)) == expected


def test_a_refused_resume_changes_no_file(copy_of):
    run = RunDir(copy_of.workdir)
    for path in glob.glob(os.path.join(run.checkpoints, "ckpt-*.data-*")):
        with open(path, "r+b") as f:
            f.truncate(3)
    before = {name: open(os.path.join(run.path, name), "rb").read()
              for name in ("config.json", "metrics.jsonl")}
    with pytest.raises(UserError, match="no readable checkpoint"):
        loop.train(dataclasses.replace(copy_of, steps=9, log_every=3))
    for name, content in before.items():
        assert open(os.path.join(run.path, name), "rb").read() == content, name


@pytest.mark.parametrize("garbage", ['{"model": "dcg', "[1, 2]"])
def test_a_garbage_config_json_is_refused_with_one_line(copy_of, garbage):
    run = RunDir(copy_of.workdir)
    with open(run.config_path, "w") as f:
        f.write(garbage)
    with pytest.raises(UserError, match=r"config.json is not a readable configuration \(.+\): "
                       "restore it, or delete it to resume"):
        loop.train(dataclasses.replace(copy_of, steps=6))
    assert open(run.config_path).read() == garbage
    os.remove(run.config_path)  # as the line says: the run then resumes
    loop.train(dataclasses.replace(copy_of, steps=5))
    assert logged_steps(copy_of.workdir) == [1, 2, 3, 4, 5]


def test_an_unreadable_class_folder_is_refused_and_the_new_workdir_removed(
        cifar_like_dir, tmp_path, monkeypatch):
    # Made unreadable by the test, not by chmod: root reads a mode 000 folder.
    locked = str(cifar_like_dir / "train" / "b")
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": (
        _raise(PermissionError(13, "Permission denied", path)) if str(path) == locked
        else listdir(path)))
    config = tiny(cifar_like_dir / "train", tmp_path / "new" / "run")
    with pytest.raises(UserError, match=f"the class folder {locked} cannot be read "
                       r"\(Permission denied\): give this user read access"):
        loop.train(config)
    assert listdir(tmp_path / "new") == []  # no run folder, no lock file


def _raise(error):
    raise error


def test_a_corrupt_final_export_is_rebuilt_from_the_last_checkpoint(copy_of, capsys):
    from tfgan_cifar import export

    run = RunDir(copy_of.workdir)
    final = run.export_dir("final")
    for root, _, files in os.walk(final):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    loop.train(copy_of)
    out = capsys.readouterr().out
    assert f"{final} cannot be loaded" in out and "exported again from the checkpoint of step 4" in out
    sample, z_dim = export.load_sampler(final)
    images = sample(np.zeros((2, z_dim), np.float32), np.zeros(2, np.int32))
    assert images.shape == (2, 32, 32, 3) and np.isfinite(images).all()
    loop.train(copy_of)  # intact now: nothing to do
    assert "exported again" not in capsys.readouterr().out


def test_a_full_disk_under_workdir_stops_with_one_line_and_the_same_command_resumes(
        copy_of, monkeypatch):
    import errno

    from tfgan_cifar.run_dir import MetricsLog

    append = MetricsLog.append

    def full_at_step_6(self, kind, step, values):
        if step == 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        return append(self, kind, step, values)

    monkeypatch.setattr(MetricsLog, "append", full_at_step_6)
    config = dataclasses.replace(copy_of, steps=8)
    with pytest.raises(UserError, match="no space left on the device while writing .*metrics"
                       ".jsonl: free space under --workdir=.* then run the same command"):
        loop.train(config)
    monkeypatch.setattr(MetricsLog, "append", append)
    loop.train(config)
    assert logged_steps(copy_of.workdir) == list(range(1, 9))


def test_a_full_save_dir_at_the_first_evaluation_stops_with_one_line_and_resumes(
        cifar_like_dir, tmp_path, monkeypatch, untrained_classifier_file, capsys):
    import shutil as shutil_lib

    from tfgan_cifar import export
    from tfgan_cifar.metrics import inception

    monkeypatch.setattr(inception.keras.applications, "InceptionV3",
                        lambda *args, **kwargs: _raise(OSError("network unreachable")))
    config = tiny(cifar_like_dir / "train", tmp_path / "run", eval_every=2, checkpoint_every=4,
                  reference_classifier=untrained_classifier_file, run_eagerly=True, fid_samples=24,
                  fid_cache_dir=str(tmp_path / "cache"))
    publish = export.publish
    monkeypatch.setattr(export, "publish", lambda source, target: _raise(shutil_lib.Error(
        [(source, target, "[Errno 28] No space left on device")])))
    with pytest.raises(UserError, match="no space left on the device .* --save_dir="):
        loop.train(config)
    assert logged_steps(config.workdir) == [1, 2]  # and no checkpoint yet
    monkeypatch.setattr(export, "publish", publish)
    loop.train(config)
    assert "resuming from step 0 (no checkpoint yet)" in capsys.readouterr().out
    assert logged_steps(config.workdir) == [1, 2, 3, 4]
    assert [r["step"] for r in RunDir(config.workdir).metrics.records("eval")] == [2, 4]
    assert export.exists(os.path.join(config.save_dir, "dcgan", "best"))


def test_a_second_ctrl_c_on_jax_ends_the_run_at_once_without_a_traceback(
        cifar_like_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "train.py"), "--model=dcgan",
         f"--image_dir={cifar_like_dir / 'train'}", f"--workdir={tmp_path / 'run'}",
         "--width=4", "--z_dim=8", "--batch_size=4", "--num_classes=3", "--log_every=1",
         "--sample_every=0", "--checkpoint_every=0", "--eval_every=0", "--steps=100000",
         f"--save_dir={tmp_path / 'saved'}"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("step 2/"):
            process.send_signal(signal.SIGINT)
        if line.startswith("SIGINT received"):
            process.send_signal(signal.SIGINT)
            break
    output = "".join(output) + process.communicate(timeout=60)[0]
    assert process.returncode == 128 + signal.SIGINT, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    # Whether the second signal came before or after the checkpoint, one line says what
    # happened.
    assert "aborted without saving" in output or "stopped at step" in output, output
