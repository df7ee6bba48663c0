"""The JAX trainer, run in one subprocess with KERAS_BACKEND=jax, against the TensorFlow one."""

import collections
import dataclasses
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from tfgan_cifar import data
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.run_dir import RunDir
from tfgan_cifar.training import objective
from tfgan_cifar.training.tf_backend import TFTrainer
from tiny_runs import event_steps

pytest.importorskip("jax")
HERE = os.path.dirname(os.path.abspath(__file__))
# Each case also switches on studies: DCGAN the classifier head, replay (read from the buffer
# in its second D step) and every DiffAugment op, SAGAN the Wasserstein loss with the gradient
# penalty of translated images. Translation and cutout put exact zeros into D's activations.
LOSS_CASES = {
    "dcgan": dict(loss="bce", n_critic=2, class_head=True, replay_size=8,
                  augment=("color", "translation", "cutout")),
    "sagan": dict(loss="wasserstein", n_critic=1, gp_weight=10.0, augment=("translation",)),
}


def tiny(model, cifar_like_dir, workdir, **overrides):
    values = dict(model=model, image_dir=str(cifar_like_dir / "train"), workdir=str(workdir),
                  width=4, z_dim=8, batch_size=4, steps=4, log_every=1, sample_every=0,
                  checkpoint_every=2, eval_every=0, num_classes=3, seed=0,
                  save_dir=os.path.join(workdir, "saved_models"))
    values.update(overrides)
    return TrainConfig(**values).resolved()


def numpy_draws(config, rng):
    """The draws of one step from a NumPy generator, shared by both backends' first step."""
    return objective.draw(config, lambda shape: rng.standard_normal(shape).astype(np.float32),
                          lambda shape: rng.uniform(0, 1, shape).astype(np.float32),
                          lambda shape, high: rng.integers(0, high, shape).astype(np.int32))


def tensorflow_first_step(config, path):
    """Saves TF's initial weights, a batch and noise to `path`; returns TF's first-step metrics."""
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    rng = np.random.default_rng(0)
    n, b = config.n_critic, config.batch_size
    draws = numpy_draws(config, rng)
    inputs = {
        "images": rng.uniform(-1, 1, (n, b, 32, 32, 3)).astype(np.float32),
        "labels": rng.integers(0, 3, (n, b)).astype(np.int32),
        "config": config.to_json(),
        **{f"draw_{name}": value for name, value in draws.items()},
    }
    for part, variables in (("g", trainer.generator.trainable_variables),
                            ("g_nt", trainer.generator.non_trainable_variables),
                            ("d", trainer.discriminator.trainable_variables),
                            ("d_nt", trainer.discriminator.non_trainable_variables)):
        for i, v in enumerate(variables):
            inputs[f"{part}_{i:04d}"] = v.numpy()
    np.savez(path, **inputs)
    _, metrics = trainer.objective.update(trainer.read_all(), inputs["images"], inputs["labels"],
                                          draws)
    return {k: float(v) for k, v in metrics.items()}


@pytest.fixture(scope="module")
def jax_run(cifar_like_dir, tmp_path_factory):
    """Prepares every check, runs them all in one JAX process, returns (tmp, TF side, results)."""
    tmp = tmp_path_factory.mktemp("jax")
    # The lookahead task first: the later ones leave global Keras state (policies, a distribution).
    tasks, tf_metrics = [{"name": "lookahead", "task": "lookahead", "argument": None}], {}
    for model, studies in LOSS_CASES.items():
        config = tiny(model, cifar_like_dir, tmp / f"loss_{model}", **studies)
        path = str(tmp / f"inputs_{model}.npz")
        tf_metrics[model] = tensorflow_first_step(config, path)
        tasks.append({"name": f"losses_{model}", "task": "losses", "argument": path})
    for model, studies in (("dcgan", dict(ema_decay=0.5, class_head=True, replay_size=8,
                                          lr_decay="linear")),
                           ("sagan", dict(precision="mixed_bfloat16")),
                           ("dcgan_float16", dict(precision="mixed_float16", ema_decay=0.5))):
        config = tiny(model.split("_")[0], cifar_like_dir, tmp / f"steps_{model}",
                      attention_res=(8, 16), **studies)
        os.makedirs(config.workdir)
        tasks.append({"name": f"steps_{model}", "task": "steps_and_export",
                      "argument": config.to_json()})
    tasks.append({"name": "checkpoint_names", "task": "checkpoint_names", "argument": tiny(
        "dcgan", cifar_like_dir, tmp / "checkpoint_names", ema_decay=0.5, replay_size=8,
        class_head=True, precision="mixed_float16").to_json()})
    tasks.append({"name": "sharded", "task": "sharded_step", "argument": tiny(
        "dcgan", cifar_like_dir, tmp / "sharded", optimizer="sgd", batch_size=8).to_json()})
    straight = tiny("dcgan", cifar_like_dir, tmp / "straight", n_critic=2)
    half = tiny("dcgan", cifar_like_dir, tmp / "resumed", n_critic=2, steps=2)
    fallback = tiny("dcgan", cifar_like_dir, tmp / "fallback", n_critic=2)
    # SGD: XLA compiles a loop's body with other fusions than the single step, and Adam would
    # turn the rounding noise in the zero gradients of D's biases before batch norm into
    # full-size steps. EMA and replay: their state is carried through the loop too.
    straight_sgd = tiny("dcgan", cifar_like_dir, tmp / "straight_sgd", n_critic=2,
                        optimizer="sgd", ema_decay=0.5, replay_size=8)
    half_k2 = dataclasses.replace(straight_sgd, workdir=str(tmp / "resumed_k2"), steps=2,
                                  steps_per_call=2, log_every=2)
    for name, task, config in (
            ("straight", "train", straight), ("half", "train", half),
            ("rest", "train", dataclasses.replace(half, steps=4)),
            ("straight_sgd", "train", straight_sgd), ("half_k2", "train", half_k2),
            ("steps_per_call", "steps_per_call", half_k2),  # restores half_k2's step 2
            ("rest_k2", "train", dataclasses.replace(half_k2, steps=4)),
            ("fallback", "train", fallback), ("truncated", "truncate_and_resume", fallback),
            ("diverged", "train_expecting_error", tiny(
                "dcgan", cifar_like_dir, tmp / "diverge", n_critic=2, lr_g=1e30, lr_d=1e30,
                steps=6, checkpoint_every=1)),
            ("locked", "train_expecting_error", tiny("dcgan", cifar_like_dir, tmp / "locked"))):
        tasks.append({"name": name, "task": task, "argument": config.to_json()})
    (tmp / "tasks.json").write_text(json.dumps(tasks))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",  # conftest's XLA flags
           "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")  # and two devices for the sharded step
           + " --xla_force_host_platform_device_count=2"}
    with RunDir(str(tmp / "locked")).lock():  # held by this process while the worker runs
        result = subprocess.run([sys.executable, os.path.join(HERE, "jax_worker.py"),
                                 str(tmp / "tasks.json"), str(tmp / "results.json")],
                                env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp, tf_metrics, json.load(open(tmp / "results.json")), result.stdout, result.stderr


@pytest.mark.parametrize("model", list(LOSS_CASES))
def test_first_step_losses_agree_with_tensorflow(jax_run, model):
    _, tf_metrics, results, _, _ = jax_run
    assert set(results[f"losses_{model}"]) == set(tf_metrics[model])
    study_metrics = {"dcgan": {"cls_loss", "cls_acc", "replayed"}, "sagan": {"gp"}}[model]
    assert study_metrics <= set(tf_metrics[model])
    if model == "dcgan":
        assert tf_metrics[model]["replayed"] == 0.5  # the second D step read the buffer
    for name in tf_metrics[model]:
        assert results[f"losses_{model}"][name] == pytest.approx(
            tf_metrics[model][name], rel=1e-4, abs=1e-5), name


@pytest.mark.parametrize("model", ["dcgan", "sagan"])
def test_jax_steps_update_both_networks_and_export_round_trips(jax_run, model):
    out = jax_run[2][f"steps_{model}"]
    assert out["step"] == 2 and out["device"].startswith("CPU")
    assert all(np.isfinite(v) for v in out["metrics"].values())
    assert all(out["changed"]["g"])
    # D's output bias may legitimately stay put: with every hinge margin active its gradient
    # (fraction of fakes minus fraction of reals) is zero.
    assert sum(out["changed"]["d"]) >= len(out["changed"]["d"]) - 1
    assert out["export_max_diff"] < 1e-5
    assert -1 <= out["images_range"][0] <= out["images_range"][1] <= 1


def test_jax_resume_matches_an_uninterrupted_run(jax_run):
    tmp, _, _, stdout, _ = jax_run
    assert "resumed from" in stdout and "steps 3..4" in stdout and "on jax / CPU" in stdout
    # The worker cannot import TensorFlow: its runs wrote TensorBoard events all the same,
    # and the resumed one dropped none and logged no step twice.
    for run in ("straight", "resumed"):
        assert event_steps(tmp / run) == [1, 2, 3, 4], run
    a = np.load(tmp / "straight" / "checkpoints" / "ckpt-4.npz")
    b = np.load(tmp / "resumed" / "checkpoints" / "ckpt-4.npz")
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    records = [json.loads(line) for line in open(tmp / "resumed" / "metrics.jsonl")]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert sorted(os.listdir(tmp / "resumed" / "checkpoints")) == ["ckpt-2.npz", "ckpt-4.npz"]
    # Each finished run exported its final generator (.keras only: no TensorFlow to convert).
    final = tmp / "resumed" / "export" / "final"
    info = json.load(open(final / "best.json"))
    assert info["step"] == 4 and info["final"] and sorted(os.listdir(final)) == [
        "README.md", "best.json", "generator.keras"]


def test_jax_k_steps_in_one_call_equal_k_single_steps(jax_run):
    out = jax_run[2]["steps_per_call"]  # n_critic 2, EMA and replay, SGD with momentum
    assert out["steps"] == [4, 4] and out["leaves"] > 20 and out["dtypes_equal"]
    assert out["max_difference"] < 1e-5
    single, one_call = out["metrics"]
    assert one_call == pytest.approx(single, rel=1e-5, abs=1e-6)  # means over the 4 steps


def test_jax_run_of_two_steps_per_call_resumes_into_the_state_of_single_steps(jax_run):
    tmp, _, _, _, stderr = jax_run
    a = np.load(tmp / "straight_sgd" / "checkpoints" / "ckpt-4.npz")
    b = np.load(tmp / "resumed_k2" / "checkpoints" / "ckpt-4.npz")
    assert sorted(a.files) == sorted(b.files) and "key" in a.files
    for name in a.files:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    with open(tmp / "resumed_k2" / "metrics.jsonl") as f:
        assert [r["step"] for r in map(json.loads, f) if r["kind"] == "train"] == [2, 4]
    # On a CPU, a trainer of several steps per call says that single steps are faster there.
    assert ("warning: --steps_per_call=2 is slower than single steps on JAX's CPU "
            "backend") in stderr


def test_jax_checkpoint_names_are_the_on_disk_format_runs_resume_from(jax_run):
    # Hard-coded: a change to them stops every earlier run from resuming. Mixed precision,
    # EMA, replay and a class head, so that every part of the state is there.
    by_position = {"g": 11, "g_nt": 6, "d": 16, "d_nt": 4, "g_opt": 24, "d_opt": 34, "ema": 11,
                   "loss_scale/g": 4, "loss_scale/d": 4}
    expected = ({f"{part}/{i}" for part, count in by_position.items() for i in range(count)}
                | {f"replay/{name}" for name in ("images", "labels", "position", "filled")}
                | {f"sums/{name}" for name in ("cls_acc", "cls_loss", "d_fake_acc", "d_loss",
                                               "d_real_acc", "g_loss", "replayed")}
                | {"count", "step", "diverged_at", "key"})
    assert set(jax_run[2]["checkpoint_names"]) == expected


def test_jax_batches_drawn_on_the_device_are_the_same_after_a_resume(jax_run):
    out = jax_run[2]["steps_per_call"]
    assert out["restored_at"] == 2 and out["restored_batches_equal"]
    # 24 images, 2 batches of 4 a step: steps 0-2 are one epoch, each image once.
    drawn = [label for step in out["epoch_labels"] for label in step]
    assert sorted(drawn[:24]) == sorted(out["data_labels"])
    assert drawn[24:32] != drawn[:8]  # the next epoch has another order


def test_jax_classifier_head_and_replay_run_in_the_compiled_step(jax_run):
    out = jax_run[2]["steps_dcgan"]  # trained with --class_head --replay_size=8
    assert out["class_logits_shape"] == [5, 3]
    assert out["replay_filled"] == 8 and out["metrics"]["replayed"] == pytest.approx(0.25)
    assert np.isfinite(out["metrics"]["cls_loss"]) and out["exported_discriminator"]
    assert jax_run[2]["steps_sagan"]["class_logits_shape"] is None


def test_jax_linear_lr_decay_is_what_the_optimizers_use(jax_run):
    out = jax_run[2]["steps_dcgan"]  # --lr_decay=linear, 2 of 4 steps done: half the rates
    dcgan, sagan = (TrainConfig(model=model).resolved() for model in ("dcgan", "sagan"))
    expected = {"g": dcgan.lr_g / 2, "d": dcgan.lr_d / 2}
    assert out["optimizer_learning_rates"] == pytest.approx(expected, rel=1e-6)
    assert out["logged_learning_rates"] == pytest.approx(
        {f"lr_{part}": rate for part, rate in expected.items()}, rel=1e-6)
    assert jax_run[2]["steps_sagan"]["optimizer_learning_rates"] == pytest.approx(
        {"g": sagan.lr_g, "d": sagan.lr_d}, rel=1e-6)  # --lr_decay=none


def test_jax_ema_equals_the_closed_form_and_is_what_gets_exported(jax_run):
    out = jax_run[2]["steps_dcgan"]  # trained with --ema_decay=0.5
    assert out["ema_deviation"] < 1e-5
    assert out["export_max_diff"] < 1e-5  # the exported .keras model samples like generate()
    assert jax_run[2]["steps_sagan"]["ema_deviation"] is None


def test_evaluate_draws_the_discriminator_of_a_jax_run_from_its_npz_checkpoint(jax_run,
                                                                              tmp_path):
    from tfgan_cifar import evaluations

    run = RunDir(jax_run[0] / "straight")
    config = TrainConfig.from_json(open(run.config_path).read()).resolved()
    discriminator = evaluations.restore_discriminator(config)
    with np.load(run.npz_checkpoints()[-1][1]) as saved:
        for i, variable in enumerate(discriminator.trainable_variables):
            np.testing.assert_array_equal(variable.numpy(), saved[f"d/{i}"])
    written = evaluations.weight_figures(run.export_dir("final"), config, str(tmp_path))
    assert any("weights_discriminator" in path for path in written)
    assert all(os.path.getsize(path) > 0 for path in written)


def test_jax_divergence_stops_before_a_non_finite_checkpoint(jax_run):
    out = jax_run[2]["diverged"]
    assert out["error"] == "TrainingDiverged" and "not finite at step" in out["message"]
    assert all(out["checkpoints_finite"])


def test_jax_truncated_newest_checkpoint_falls_back_to_the_one_before(jax_run):
    tmp, _, _, stdout, _ = jax_run
    assert "ckpt-4.npz cannot be read" in stdout and "ckpt-2.npz at step 2" in stdout
    with open(tmp / "fallback" / "metrics.jsonl") as f:
        steps = [r["step"] for r in map(json.loads, f) if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_jax_run_on_a_locked_workdir_is_refused(jax_run):
    out = jax_run[2]["locked"]
    assert out["error"] == "UserError" and f"process {os.getpid()}" in out["message"]



@pytest.mark.parametrize("case,half", [("sagan", "bfloat16"), ("dcgan_float16", "float16")])
def test_jax_mixed_precision_trains_in_the_half_type_and_exports_float32(jax_run, case, half):
    out = jax_run[2][f"steps_{case}"]
    assert all(np.isfinite(v) for v in out["metrics"].values()), out["metrics"]
    assert out["compute_dtypes"] == [half]
    assert out["export_policy"] == "float32" and out["images_dtype"] == "float32"
    assert out["export_max_diff"] < 1e-5
    if case == "dcgan_float16":  # loss-scaled updates: the EMA still follows G exactly
        assert out["ema_deviation"] < 1e-6


def test_jax_sharded_step_equals_the_single_device_step(jax_run):
    out = jax_run[2]["sharded"]
    assert out["replicas"] == 2 and out["device"] == "2 x CPU (cpu)"
    assert out["all_reduce"]  # XLA partitioned the step: batch statistics and gradients
    single, sharded = out["metrics"]
    for name in single:
        assert sharded[name] == pytest.approx(single[name], abs=1e-5), name
    for part, difference in out["max_difference"].items():
        assert difference < 1e-5, (part, difference)


def test_classifier_training_with_lookahead_equals_tensorflow(jax_run):
    """Lookahead in `fit` and the classifier's own train_on_batch loop give the same weights
    (and epoch losses) on both backends. JAX may share a NumPy array's memory when a variable
    is assigned from it (when the buffer's alignment allows, so not in every run): an average
    updated in place afterwards once changed the weights behind `fit`'s back."""
    import lookahead_case

    on_jax, on_tf = jax_run[2]["lookahead"], lookahead_case.run()
    for key in ("fit_weights", "loop_weights"):
        assert len(on_jax[key]) == len(on_tf[key]) > 0
        for got, expected in zip(on_jax[key], on_tf[key]):
            np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-4,
                                       atol=1e-6)
    assert len(on_tf["loop_losses"]) == 2
    np.testing.assert_allclose(on_jax["loop_losses"], on_tf["loop_losses"], rtol=1e-5)


class _Marker:
    def __init__(self, log, index):
        self.log, self.index = log, index

    def block_until_ready(self):
        self.log.append(self.index)


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_the_host_waits_for_the_call_dispatched_max_in_flight_calls_earlier(steps_per_call):
    # Bounded run-ahead: Ctrl-C waits for at most MAX_IN_FLIGHT queued calls before saving.
    from tfgan_cifar.training import jax_backend

    waited = []

    def call(state, key, images, labels):
        return state + 1, key, _Marker(waited, state + 1)

    trainer = types.SimpleNamespace(_calls={steps_per_call: call}, state=0, key=None, images=None,
                                    labels=None, _in_flight=collections.deque())
    limit = jax_backend.MAX_IN_FLIGHT
    for n in range(1, 9):
        jax_backend.JaxTrainer.train_steps(trainer, steps_per_call)
        # after dispatching call n, the host has waited for every call up to n - limit
        assert waited == list(range(1, max(n - limit, 0) + 1))
    assert trainer.state == 8 and len(trainer._in_flight) == limit
