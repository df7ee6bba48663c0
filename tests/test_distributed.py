"""--distribute: tf.distribute on two logical CPU devices and two local workers, and JAX with
two processes (the sharded JAX step is checked in test_jax_backend). Each case runs in
processes of its own: devices and clusters are fixed when a backend starts."""

import json
import os
import socket
import subprocess
import sys

import pytest

import no_tensorflow

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def train_args(cifar_like_dir, workdir, *extra):
    return [sys.executable, os.path.join(ROOT, "train.py"),
            f"--image_dir={cifar_like_dir / 'train'}", f"--workdir={workdir}",
            f"--save_dir={workdir}_saved", "--width=4", "--z_dim=8", "--batch_size=8",
            "--num_classes=3", "--steps=4", "--log_every=2", "--checkpoint_every=2",
            "--sample_every=0", "--eval_every=0", *extra]


def run_together(commands, envs, timeout=600):
    processes = [subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
                 for command, env in zip(commands, envs)]
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            raise
    return [p.returncode for p in processes], outputs


def only_the_writer_wrote(tmp_path):
    chief, worker = tmp_path / "w0", tmp_path / "w1"
    with open(chief / "metrics.jsonl") as f:
        steps = [r["step"] for r in map(json.loads, f) if r["kind"] == "train"]
    assert steps == [2, 4]
    assert sorted(os.listdir(chief / "checkpoints"))
    assert (chief / "export" / "final").is_dir()
    assert not worker.exists() and not (tmp_path / "w1_saved").exists()


@pytest.fixture(scope="module")
def mirrored(cifar_like_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mirrored")
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "tf_distributed_worker.py"),
         str(cifar_like_dir / "train"), str(tmp), str(tmp / "results.json")],
        env={**os.environ, "KERAS_BACKEND": "tensorflow"}, capture_output=True, text=True,
        timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(tmp / "results.json") as f:
        return json.load(f)


@pytest.mark.parametrize("case", ["sagan_sync_bn", "dcgan_sync_bn"])
def test_a_mirrored_step_equals_the_single_device_step(mirrored, case):
    result = mirrored[case]
    assert result["replicas"] == 2
    single, distributed = result["metrics"]
    assert single.keys() == distributed.keys()
    for name in single:
        assert distributed[name] == pytest.approx(single[name], abs=1e-5), name
    for part, difference in result["max_difference"].items():
        assert difference < 1e-5, (part, difference)
    assert result["replica_spread"] == 0.0


def test_without_sync_bn_replicas_stay_identical_but_see_local_batch_statistics(mirrored):
    result = mirrored["dcgan_local_bn"]
    assert result["replica_spread"] == 0.0  # BN moving statistics are averaged, not drifting
    assert result["max_difference"]["g"] > 1e-5  # local batch statistics change the step


def test_two_mirrored_steps_in_one_call_equal_two_calls_of_one(mirrored):
    result = mirrored["dcgan_local_bn"]
    one_call, two_calls = result["one_call"], result["metrics"][1]
    assert one_call["step"] == 2 and one_call["replica_spread"] == 0.0
    for name in two_calls:
        assert one_call["metrics"][name] == pytest.approx(two_calls[name], abs=1e-5), name
    for part, difference in one_call["max_difference"].items():
        assert difference < 1e-5, (part, difference)


def test_replay_under_mirrored_keeps_every_replicas_fakes_and_replays_the_fraction(mirrored):
    """Each replica replays --replay_fraction of its own slice (not of the global batch, which
    would replace all of it), and every replica's buffer holds the whole global batch's fakes,
    as one device's does."""
    result = mirrored["replay"]
    assert result["filled"] == [8, 8]
    assert result["buffer_difference"] < 1e-5 and result["labels_equal"]
    assert result["replica_spread"] == 0.0
    assert result["replayed_in_step_2"] == pytest.approx(0.5)


def test_a_mirrored_run_stopped_by_ctrl_c_resumes_exactly(mirrored):
    result = mirrored["resume"]
    assert result["stopped_by"] == 2  # SIGINT, after the checkpoint of the step it ended
    assert "ckpt-3.index" in result["checkpoints_when_stopped"]
    assert result["max_difference"] < 1e-6


def test_a_batch_that_does_not_split_over_the_replicas_is_refused(mirrored):
    result = mirrored["odd_batch"]
    assert result["error"] == ("--batch_size=7 is the global batch and must divide evenly over "
                               "the 2 replicas of --distribute=mirrored; pass a multiple of 2")
    assert "config.json" not in result["written"]
    assert "no device GPU:7 here" in mirrored["unknown_device"]["error"]


def test_two_tensorflow_workers_train_and_only_the_chief_writes(cifar_like_dir, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    envs = [{**os.environ, "KERAS_BACKEND": "tensorflow", "TMPDIR": str(scratch),
             "TF_CONFIG": json.dumps({"cluster": cluster,
                                      "task": {"type": "worker", "index": index}})}
            for index in range(2)]
    codes, outputs = run_together(
        [train_args(cifar_like_dir, tmp_path / f"w{i}", "--distribute=multi_worker")
         for i in range(2)], envs)
    assert codes == [0, 0], outputs
    assert "multi_worker, 2 replicas, this process is worker 0 (writes the run)" in outputs[0]
    assert "following the run" in outputs[1]
    only_the_writer_wrote(tmp_path)
    assert not [name for name in os.listdir(scratch) if name.startswith("tfgan_cifar_worker")]


def test_multi_worker_without_a_cluster_is_one_clear_line(mirrored):
    result = mirrored["no_cluster"]  # the train command, with no TF_CONFIG or SLURM_* set
    assert result["code"] == 2
    assert result["stderr"].strip().splitlines()[-1] == (
        "error: --distribute=multi_worker needs the cluster: set TF_CONFIG on every worker "
        "(see docs/precision_and_devices.md) or launch it with srun inside a Slurm "
        "allocation")
    assert not result["workdir_made"]


def test_two_jax_processes_train_and_only_process_0_writes(cifar_like_dir, tmp_path):
    """As on a machine with JAX and no TensorFlow: the processes neither load TensorFlow nor
    convert the final export to a SavedModel in a TensorFlow subprocess."""
    port, = free_ports(1)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    codes, outputs = run_together(
        [no_tensorflow.command(*train_args(
            cifar_like_dir, tmp_path / f"w{i}", "--distribute=multi_worker",
            f"--coordinator_address=localhost:{port}", "--num_processes=2",
            f"--process_id={i}")[1:]) for i in range(2)], [env, env])
    assert codes == [0, 0], outputs
    assert "2 x CPU (cpu) in 2 processes, this one is 0" in outputs[0]
    only_the_writer_wrote(tmp_path)
