"""Training steps, checkpoints, exact resumption and train.py end to end (tiny models, CPU)."""

import dataclasses
import glob
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgan_cifar import data
from tfgan_cifar.config import TrainConfig, continued_run
from tfgan_cifar.errors import UserError
from tfgan_cifar.nn.base import nested_layers
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.training import loop, objective
from tfgan_cifar.training.optimizers import make_optimizers
from tfgan_cifar.training.tf_backend import TFTrainer
import tiny_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tests whose subject is not the compiled step (checkpoints, resumption, EMA, schedules, batch
# sizes) step with run_eagerly=True: a tiny run's few eager steps cost less than tracing the
# step. The compiled step is the subject of test_steps_give_finite_losses_..., and of the
# steps_per_call, precision, distributed and JAX tests.


def logged_steps(workdir, kind):
    """The steps of every `kind` line of metrics.jsonl, duplicates included."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [r["step"] for r in map(json.loads, f) if r["kind"] == kind]


@pytest.fixture(scope="session")
def image_dir(cifar_like_dir):
    return str(cifar_like_dir / "train")


def tiny_config(model, image_dir, workdir, **overrides):
    """tiny_runs.tiny_config with a sample grid and a checkpoint every 2 steps."""
    return tiny_runs.tiny_config(model, image_dir, workdir,
                                 **{"sample_every": 2, "checkpoint_every": 2, **overrides})


def weights(trainer):
    return [v.numpy().copy() for v in trainer.generator.weights + trainer.discriminator.weights]


@pytest.mark.parametrize("model,loss,n_critic,jit_compile", [
    ("dcgan", "bce", 1, False), ("dcgan", "lsgan", 2, True), ("sagan", "hinge", 2, False),
    ("sagan", "wasserstein", 1, False)])  # attention at 8 and 16 in every SAGAN case
def test_steps_give_finite_losses_and_update_both_networks(image_dir, tmp_path, model, loss,
                                                           n_critic, jit_compile):
    config = tiny_config(model, image_dir, tmp_path, loss=loss, n_critic=n_critic,
                         attention_res=(8, 16), jit_compile=jit_compile)
    trainer = TFTrainer(config, data.load_image_folder(image_dir))
    g_before = [v.numpy().copy() for v in trainer.generator.trainable_variables]
    d_before = [v.numpy().copy() for v in trainer.discriminator.trainable_variables]
    trainer.start()
    for _ in range(2):
        trainer.train_step()
    metrics = trainer.pop_metrics()
    assert set(metrics) == {"g_loss", "d_loss", "d_real_acc", "d_fake_acc"}
    assert all(np.isfinite(v) for v in metrics.values())
    assert 0 <= metrics["d_real_acc"] <= 1
    assert int(trainer.step) == 2
    assert int(trainer.d_optimizer.iterations) == 2 * n_critic
    for before, var in zip(g_before, trainer.generator.trainable_variables):
        assert not np.array_equal(before, var.numpy()), var.path
    for before, var in zip(d_before, trainer.discriminator.trainable_variables):
        if loss == "wasserstein" and var.path.endswith("head/bias"):
            continue  # E[D(fake)] - E[D(real)] does not depend on D's output bias
        assert not np.array_equal(before, var.numpy()), var.path
    assert trainer.pop_metrics()["g_loss"] == 0.0  # accumulators were reset


def test_run_eagerly_steps_op_by_op_to_the_compiled_steps_numbers(image_dir, tmp_path):
    images = data.load_image_folder(image_dir)
    trainers = {}
    for eager in (False, True):
        # SGD: Adam's normalised step would turn round-off in near-zero gradients into
        # differences of a whole learning rate.
        config = tiny_config("dcgan", image_dir, tmp_path / str(eager), run_eagerly=eager,
                             optimizer="sgd", lr_g=0.1, lr_d=0.1)
        trainer = trainers[eager] = TFTrainer(config, images)
        calls, step = [], trainer.objective.step

        def recording_step(*args, step=step, calls=calls):
            calls.append(tf.executing_eagerly())
            return step(*args)

        trainer.objective.step = recording_step
        trainer.start()
        for _ in range(2):
            trainer.train_step()
        # Eagerly, the step's Python runs at every step; compiled, once, when it is traced.
        assert calls == ([True, True] if eager else [False])
    assert not tf.config.functions_run_eagerly()  # nothing global was switched
    metrics = {eager: trainer.pop_metrics() for eager, trainer in trainers.items()}
    for name, value in metrics[False].items():
        np.testing.assert_allclose(metrics[True][name], value, rtol=1e-4, atol=1e-5)
    for a, b in zip(weights(trainers[False]), weights(trainers[True])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model", ["dcgan", "sagan"])
def test_checkpoint_restores_every_variable(image_dir, tmp_path, model):
    config = tiny_config(model, image_dir, tmp_path, attention_res=(8, 16), run_eagerly=True)
    images = data.load_image_folder(image_dir)
    trained = TFTrainer(config, images)
    trained.start()
    trained.train_step()
    trained.save()
    restored = TFTrainer(config, images)
    fresh = weights(restored)
    assert restored.restore() == 1
    state = lambda t: weights(t) + [v.numpy() for v in t.g_optimizer.variables
                                     + t.d_optimizer.variables]
    for a, b in zip(state(trained), state(restored)):
        np.testing.assert_array_equal(a, b)
    changed = [not np.array_equal(a, b) for a, b in zip(fresh, weights(restored))]
    assert sum(changed) > len(changed) // 2
    np.testing.assert_array_equal(trained.rng.state.numpy(), restored.rng.state.numpy())


@pytest.mark.parametrize("model", ["dcgan"])  # SAGAN's state: test_checkpoint_restores_...
def test_resume_matches_an_uninterrupted_run(image_dir, tmp_path, model):
    straight = tiny_config(model, image_dir, tmp_path / "straight", steps=4, run_eagerly=True)
    loop.train(straight)
    resumed = tiny_config(model, image_dir, tmp_path / "resumed", steps=2, run_eagerly=True)
    loop.train(resumed)
    loop.train(dataclasses.replace(resumed, steps=4))

    def final_weights(workdir):
        config = tiny_config(model, image_dir, workdir, steps=4, run_eagerly=True)
        trainer = TFTrainer(config, data.load_image_folder(image_dir))
        assert trainer.restore() == 4
        return weights(trainer), trainer.rng.state.numpy()

    (w1, rng1), (w2, rng2) = final_weights(straight.workdir), final_weights(resumed.workdir)
    np.testing.assert_array_equal(rng1, rng2)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    steps = logged_steps(resumed.workdir, "train")
    assert steps == [1, 2, 3, 4]

    # A kill after step 4 was logged but before its checkpoint: only ckpt-2 is left.
    ckpt_dir = os.path.join(straight.workdir, "checkpoints")
    for path in glob.glob(os.path.join(ckpt_dir, "ckpt-4*")):
        os.remove(path)
    tf.compat.v1.train.update_checkpoint_state(ckpt_dir, os.path.join(ckpt_dir, "ckpt-2"))
    loop.train(dataclasses.replace(straight, steps=6))
    steps = logged_steps(straight.workdir, "train")
    assert steps == [1, 2, 3, 4, 5, 6]


def test_workdir_of_another_model_is_refused(image_dir, tmp_path):
    dcgan = tiny_config("dcgan", image_dir, tmp_path)
    sagan = tiny_config("sagan", image_dir, tmp_path)
    loop.prepare_workdir(dcgan)
    # Only config.json: a start that failed before training (no data, say) binds nothing.
    loop.prepare_workdir(sagan)
    assert json.load(open(os.path.join(sagan.workdir, "config.json")))["model"] == "sagan"

    RunDir(sagan.workdir).metrics.append("train", 1, {})
    with pytest.raises(UserError, match="holds a run with model=sagan"):
        loop.prepare_workdir(dcgan)
    os.remove(os.path.join(sagan.workdir, "metrics.jsonl"))
    os.makedirs(os.path.join(sagan.workdir, "checkpoints"))
    loop.prepare_workdir(dcgan)  # an empty checkpoints folder holds nothing to resume
    open(os.path.join(dcgan.workdir, "checkpoints", "ckpt-2.npz"), "w").close()
    with pytest.raises(UserError, match="holds a run with model=dcgan"):
        loop.prepare_workdir(sagan)


def test_a_run_recorded_before_a_setting_existed_resumes(image_dir, tmp_path):
    """A config.json without a newer setting (here --init): the run is resumed, not refused."""
    config = tiny_config("dcgan", image_dir, tmp_path)
    loop.prepare_workdir(config)
    RunDir(config.workdir).metrics.append("train", 1, {})
    path = os.path.join(config.workdir, "config.json")
    recorded = json.load(open(path))
    del recorded["init"]
    with open(path, "w") as f:
        json.dump(recorded, f)
    loop.prepare_workdir(config)
    previous = TrainConfig.from_json(json.dumps(recorded))
    assert continued_run(previous, {"steps": 8}).init == "normal"  # train.py --workdir=W
    with pytest.raises(UserError, match="holds a run with model=dcgan"):
        loop.prepare_workdir(tiny_config("sagan", image_dir, tmp_path))


def _run_train(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)


def _scalar_tags(workdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(workdir, size_guidance={"tensors": 0})
    events.Reload()
    return {tag: [e.step for e in events.Tensors(tag)] for tag in events.Tags()["tensors"]}


def test_train_py_leaves_config_checkpoint_events_and_samples(image_dir, tmp_path):
    workdir = tmp_path / "run"
    process = _run_train([
        "--flagfile=configs/sagan.cfg", f"--image_dir={image_dir}", f"--workdir={workdir}",
        "--steps=3", "--width=4", "--batch_size=4", "--log_every=1", "--sample_every=3",
        "--num_classes=3", "--eval_every=0", f"--save_dir={tmp_path / 'saved'}"])
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "step 3/3" in output and "steps/s" in output
    config = json.load(open(workdir / "config.json"))
    assert config["model"] == "sagan" and config["loss"] == "hinge" and config["lr_d"] == 4e-4
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-3")
    tags = _scalar_tags(str(workdir))
    for tag in ("loss/generator", "loss/discriminator", "accuracy/d_real", "accuracy/d_fake",
                "learning_rate/generator", "gamma/generator/attention16"):
        assert tags[tag] == [1, 2, 3], tag
    assert tags["samples/fixed_noise"] == [3] and tags["attention/16x16"] == [3]
    grid = Image.open(workdir / "samples" / "step_000003.png")
    assert grid.size == (2 * (8 * 34 + 2),) * 2
    final = RunDir(str(tmp_path / "run")).export_dir("final")
    assert f"final generator exported to {final}" in output
    assert os.path.exists(os.path.join(final, "saved_model", "saved_model.pb"))


def test_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes(image_dir, tmp_path):
    # --run_eagerly: the subject is the process; eager steps spare it the step's tracing.
    args = ["--model=dcgan", f"--image_dir={image_dir}", f"--workdir={tmp_path / 'run'}",
            "--width=4", "--batch_size=4", "--log_every=1", "--sample_every=0",
            "--checkpoint_every=0", "--eval_every=0", "--num_classes=3",
            f"--save_dir={tmp_path / 'saved'}", "--run_eagerly"]
    process = _run_train([*args, "--steps=100000"])
    for line in process.stdout:
        if line.startswith("step 3/"):
            process.send_signal(signal.SIGINT)
            break
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 128 + signal.SIGINT, output  # the conventional status
    assert "stopped at step" in output
    stopped = int(output.split("stopped at step ")[1].split(";")[0])
    assert stopped >= 3
    process = _run_train([*args, f"--steps={stopped + 2}"])
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    assert f"steps {stopped + 1}..{stopped + 2}" in output


def test_bad_flags_give_one_line(tmp_path, capfd):
    from tfgan_cifar.commands import train

    with pytest.raises(SystemExit) as stop:
        train.main(["train.py", "--model=sagan", "--image_dir", str(tmp_path / "missing"),
                    f"--workdir={tmp_path / 'run'}", f"--save_dir={tmp_path / 'saved'}"])
    assert stop.value.code == 2
    output = "".join(capfd.readouterr())
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--image_dir" in errors[0] and "is not a directory" in errors[0]


def test_other_optimizers_train_with_their_own_learning_rates(image_dir, tmp_path):
    rmsprop = make_optimizers(tiny_config("dcgan", image_dir, tmp_path, optimizer="rmsprop"))
    assert [type(o).__name__ for o in rmsprop] == ["RMSprop", "RMSprop"]
    config = tiny_config("dcgan", image_dir, tmp_path, optimizer="sgd", lr_g=1e-3, lr_d=3e-3)
    trainer = TFTrainer(config, data.load_image_folder(image_dir))
    assert type(trainer.g_optimizer).__name__ == "SGD" == type(trainer.d_optimizer).__name__
    assert trainer.learning_rates() == pytest.approx({"lr_g": 1e-3, "lr_d": 3e-3})
    before = [v.numpy().copy() for v in trainer.generator.trainable_variables]
    trainer.start()
    trainer.train_step()
    assert np.isfinite(trainer.pop_metrics()["g_loss"])
    assert any(not np.array_equal(b, v.numpy())
               for b, v in zip(before, trainer.generator.trainable_variables))


def warmed_up_ema(history, decay):
    """The EMA of the weights `history` [w_0, w_1, ...]: e_0 = w_0 and, at step t = 0, 1, ...,
    e_(t+1) = d_t e_t + (1 - d_t) w_(t+1), with d_t = min(decay, (1 + t) / (10 + t))."""
    ema = [np.asarray(w, np.float64) for w in history[0]]
    for t, weights in enumerate(history[1:]):
        d = min(decay, (1 + t) / (10 + t))
        ema = [d * e + (1 - d) * w for e, w in zip(ema, weights)]
    return ema


def test_ema_decay_warms_up_to_the_configured_decay():
    decays = [float(objective.ema_decay_at(0.999, t)) for t in (0, 1, 90, 9990, 10**6)]
    np.testing.assert_allclose(decays, [0.1, 2 / 11, 0.91, 0.999, 0.999], rtol=1e-6)
    # The initial weights' share after 1000 steps: under 1e-3 with the warm-up, 37% without.
    share = np.prod([float(objective.ema_decay_at(0.999, t)) for t in range(1000)])
    assert share < 1e-3 < 0.999 ** 1000


def test_ema_generator_equals_the_closed_form_and_is_what_gets_sampled(image_dir, tmp_path):
    decay = 0.5
    config = tiny_config("dcgan", image_dir, tmp_path, ema_decay=decay, steps=3, standing_stats=2,
                         run_eagerly=True)
    trainer = TFTrainer(config, data.load_image_folder(image_dir))
    history = [[v.numpy().copy() for v in trainer.generator.trainable_variables]]
    trainer.start()
    for _ in range(3):
        trainer.train_step()
        history.append([v.numpy().copy() for v in trainer.generator.trainable_variables])
    ema = [v.numpy() for v in trainer.ema_generator.trainable_variables]
    for value, expected in zip(ema, warmed_up_ema(history, decay)):
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ema[0], history[-1][0])
    z = np.random.default_rng(0).standard_normal((2, config.z_dim)).astype(np.float32)
    labels = np.zeros(2, np.int32)
    assert trainer.export_generator() is trainer.ema_generator
    np.testing.assert_allclose(trainer.generate(z, labels),
                               trainer.ema_generator(z, labels, training=False).numpy(),
                               atol=1e-6)
    trainer.save()
    restored = TFTrainer(config, data.load_image_folder(image_dir))
    restored.restore()
    for a, b in zip(trainer.ema_generator.variables, restored.ema_generator.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("seed", [0, 1])
def test_the_ema_generator_samples_with_the_sigma_of_its_own_weights(image_dir, tmp_path,
                                                                     seed):
    """Once the EMA weights differ from G's, the exported EMA G's spectral-norm vectors give
    the largest singular value of the EMA kernels (np.linalg.svd), not what G's vectors give."""
    from tfgan_cifar.nn.layers import _SpectralNorm

    config = tiny_config("sagan", image_dir, tmp_path, ema_decay=0.9, seed=seed)
    trainer = TFTrainer(config, data.load_image_folder(image_dir))
    rng = np.random.default_rng(seed)
    layers = [layer for layer in nested_layers(trainer.ema_generator)
              if isinstance(layer, _SpectralNorm)]
    for layer in layers:  # EMA kernels far from G's, whose largest singular value is 3
        shape = layer.kernel.shape
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        left, _ = np.linalg.qr(rng.standard_normal((rows, min(rows, cols))))
        right, _ = np.linalg.qr(rng.standard_normal((cols, min(rows, cols))))
        spectrum = np.concatenate([[3.0], rng.uniform(0.1, 1.5, min(rows, cols) - 1)])
        layer.kernel.assign(((left * spectrum) @ right.T).reshape(shape).astype(np.float32))
    live_vectors = [np.asarray(v) for v in trainer.read("g_nt")]
    exported = trainer.export_generator()
    assert exported is trainer.ema_generator
    positions = {id(v): i for i, v in enumerate(exported.non_trainable_variables)}

    def estimate(matrix, u):  # sigma as the layer computes it from its vector u
        v = u @ matrix.T
        v /= np.linalg.norm(v)
        return (v @ matrix @ u.T).item() / np.linalg.norm(u)

    for layer in layers:
        kernel = layer.kernel.numpy().astype(np.float64)
        matrix = kernel.reshape(-1, kernel.shape[-1])
        true_sigma = np.linalg.svd(matrix, compute_uv=False)[0]
        own = estimate(matrix, layer.u.numpy().astype(np.float64))
        live = estimate(matrix, live_vectors[positions[id(layer.u)]].astype(np.float64))
        assert own == pytest.approx(true_sigma, rel=1e-5), layer.path
        assert abs(live - true_sigma) > 10 * abs(own - true_sigma), layer.path
    z = rng.standard_normal((2, config.z_dim)).astype(np.float32)
    labels = np.zeros(2, np.int32)
    np.testing.assert_allclose(trainer.generate(z, labels),
                               exported(z, labels, training=False).numpy(), atol=1e-5)


def test_standing_statistics_are_the_mean_batch_statistics_of_the_ema_generator(image_dir,
                                                                                 tmp_path):
    config = tiny_config("dcgan", image_dir, tmp_path, ema_decay=0.9, standing_stats=3)
    trainer = TFTrainer(config, data.load_image_folder(image_dir))
    g, g_nt = trainer.read("ema"), trainer.read("g_nt")
    standing = trainer.standing_statistics(g, g_nt)
    rng = np.random.default_rng(config.seed)  # the draws standing_statistics makes
    z = rng.standard_normal((3, config.batch_size, config.z_dim)).astype(np.float32)
    first_norm_inputs = [  # DCGAN's G: z -> dense -> 4x4x4w -> its first batch norm
        trainer.ema_generator.dense(batch).numpy().reshape(config.batch_size, 4, 4, -1)
        for batch in z]
    (mean_index, _), (variance_index, _) = objective.moving_statistics(trainer.sampler)[:2]
    np.testing.assert_allclose(standing[mean_index], np.mean(
        [x.mean(axis=(0, 1, 2)) for x in first_norm_inputs], axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(standing[variance_index], np.mean(
        [x.var(axis=(0, 1, 2)) for x in first_norm_inputs], axis=0), rtol=1e-4, atol=1e-6)
    assert not np.allclose(standing[variance_index], g_nt[variance_index])  # not the live G's

    # One batch: G in inference mode with its standing statistics is G in training mode.
    one = TFTrainer(dataclasses.replace(config, standing_stats=1),
                    data.load_image_folder(image_dir))
    model = one.export_generator()
    labels = np.zeros(config.batch_size, np.int32)
    np.testing.assert_allclose(model(z[0], labels, training=False).numpy(),
                               model(z[0], labels, training=True).numpy(), atol=1e-5)


def test_g_steps_generate_g_batch_size_images_and_d_steps_batch_size(image_dir, tmp_path,
                                                                       monkeypatch):
    """--g_batch_size (SNGAN-projection: 128 against D's 64): G's step draws its own noise."""
    config = tiny_config("sagan", image_dir, tmp_path, g_batch_size=8, attention_res=(),
                         n_critic=2, run_eagerly=True)
    assert objective.draw_specs(config)["g_z"][0] == (1, 8, config.z_dim)
    trainer = TFTrainer(config, data.load_image_folder(image_dir))
    generated, fake_images = [], trainer.objective.fake_images

    def recording(g, g_nt, z, labels):
        generated.append((int(z.shape[0]), int(labels.shape[0])))
        return fake_images(g, g_nt, z, labels)

    monkeypatch.setattr(trainer.objective, "fake_images", recording)
    trainer.start()
    trainer.train_step()
    assert generated == [(4, 4), (4, 4), (8, 8)]  # two D steps, then G's
    assert np.isfinite(trainer.pop_metrics()["g_loss"])


def test_a_decaying_run_cannot_be_resumed_with_another_length(image_dir, tmp_path):
    """--lr_decay=linear decays to 0 at the run's --steps; resuming with more steps would raise
    the learning rate again, so it is refused in one line, before anything is written."""
    config = tiny_config("dcgan", image_dir, tmp_path, lr_decay="linear", steps=4)
    loop.prepare_workdir(config)
    RunDir(config.workdir).metrics.append("train", 2, {})
    written = open(os.path.join(config.workdir, "config.json")).read()
    for steps in (8, 3):
        with pytest.raises(UserError, match=(
                r"--lr_decay=linear schedule ends at --steps=4, not %d: resume it with "
                r"--steps=4, or train longer in another --workdir$" % steps)):
            loop.prepare_workdir(dataclasses.replace(config, steps=steps))
    assert open(os.path.join(config.workdir, "config.json")).read() == written
    loop.prepare_workdir(config)  # the same length resumes
    constant = tiny_config("dcgan", image_dir, tmp_path / "constant", steps=4)
    loop.prepare_workdir(constant)
    RunDir(constant.workdir).metrics.append("train", 2, {})
    loop.prepare_workdir(dataclasses.replace(constant, steps=8))  # no schedule: it may grow


def test_linear_lr_decay_reaches_zero_at_the_last_step_and_resumes_exactly(image_dir, tmp_path):
    config = tiny_config("dcgan", image_dir, tmp_path, lr_decay="linear", n_critic=2,
                         sample_every=0, checkpoint_every=0, run_eagerly=True)
    straight = TFTrainer(config, data.load_image_folder(image_dir))
    assert straight.learning_rates() == pytest.approx({"lr_g": 2e-4, "lr_d": 2e-4})
    straight.start()
    for _ in range(2):
        straight.train_step()
    assert straight.learning_rates() == pytest.approx({"lr_g": 1e-4, "lr_d": 1e-4})
    assert float(straight.d_optimizer.learning_rate) == pytest.approx(1e-4)  # 4 of 8 updates
    straight.save()
    for _ in range(2):
        straight.train_step()
    assert straight.learning_rates() == pytest.approx({"lr_g": 0.0, "lr_d": 0.0}, abs=1e-12)

    resumed = TFTrainer(config, data.load_image_folder(image_dir))
    assert resumed.restore() == 2
    resumed.start()
    for _ in range(2):
        resumed.train_step()
    for a, b in zip(weights(straight), weights(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    constant = TFTrainer(dataclasses.replace(config, lr_decay="none",
                                             workdir=str(tmp_path / "constant")),
                         data.load_image_folder(image_dir))
    constant.start()
    for _ in range(4):
        constant.train_step()
    assert any(not np.allclose(a, b) for a, b in zip(weights(straight), weights(constant)))
