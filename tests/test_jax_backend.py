"""The JAX trainer, run in subprocesses with KERAS_BACKEND=jax, against the TensorFlow one."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfgan_cifar import data
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.trainer_tf import TFTrainer

pytest.importorskip("jax")
HERE = os.path.dirname(os.path.abspath(__file__))


def run_jax(*args):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, os.path.join(HERE, "jax_worker.py"), *args],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def tiny(model, cifar_like_dir, workdir, **overrides):
    values = dict(model=model, image_dir=str(cifar_like_dir / "train"), workdir=str(workdir),
                  width=4, z_dim=8, batch_size=4, steps=4, log_every=1, sample_every=0,
                  checkpoint_every=2, eval_every=0, num_classes=3, seed=0)
    values.update(overrides)
    return TrainConfig(**values).resolved()


def write_config(config, path):
    path.write_text(config.to_json())
    return str(path)


@pytest.mark.parametrize("model,loss,n_critic", [("dcgan", "bce", 1), ("sagan", "hinge", 2)])
def test_first_step_losses_agree_with_tensorflow(cifar_like_dir, tmp_path, model, loss,
                                                 n_critic):
    config = tiny(model, cifar_like_dir, tmp_path, loss=loss, n_critic=n_critic,
                  attention_res=(16,))
    trainer = TFTrainer(config, data.load_image_folder(config.image_dir))
    rng = np.random.default_rng(0)
    inputs = {
        "images": rng.uniform(-1, 1, (n_critic, 4, 32, 32, 3)).astype(np.float32),
        "labels": rng.integers(0, 3, (n_critic, 4)).astype(np.int32),
        "z": rng.standard_normal((n_critic + 1, 4, 8)).astype(np.float32),
        "fake_labels": rng.integers(0, 3, (n_critic + 1, 4)).astype(np.int32),
        "config": config.to_json(),
    }
    for part, variables in (("g", trainer.generator.trainable_variables),
                            ("g_nt", trainer.generator.non_trainable_variables),
                            ("d", trainer.discriminator.trainable_variables),
                            ("d_nt", trainer.discriminator.non_trainable_variables)):
        for i, v in enumerate(variables):
            inputs[f"{part}_{i:04d}"] = v.numpy()
    np.savez(tmp_path / "inputs.npz", **inputs)
    tf_metrics = {k: float(v) for k, v in trainer.update(
        inputs["images"], inputs["labels"], inputs["z"], inputs["fake_labels"]).items()}
    run_jax("losses", str(tmp_path / "inputs.npz"), str(tmp_path / "out.json"))
    jax_metrics = json.load(open(tmp_path / "out.json"))
    for name in ("d_loss", "g_loss", "d_real_acc", "d_fake_acc"):
        assert jax_metrics[name] == pytest.approx(tf_metrics[name], rel=1e-4, abs=1e-5), name


@pytest.mark.parametrize("model", ["dcgan", "sagan"])
def test_jax_steps_update_both_networks_and_export_round_trips(cifar_like_dir, tmp_path, model):
    config = tiny(model, cifar_like_dir, tmp_path, attention_res=(16, 32))
    run_jax("steps_and_export", write_config(config, tmp_path / "c.json"),
            str(tmp_path / "out.json"))
    out = json.load(open(tmp_path / "out.json"))
    assert out["step"] == 2 and out["device"].startswith("CPU")
    assert all(np.isfinite(v) for v in out["metrics"].values())
    assert all(out["changed"]["g"])
    # D's output bias may legitimately stay put: with every hinge margin active its gradient
    # (fraction of fakes minus fraction of reals) is zero.
    assert sum(out["changed"]["d"]) >= len(out["changed"]["d"]) - 1
    assert out["export_max_diff"] < 1e-5
    assert -1 <= out["images_range"][0] <= out["images_range"][1] <= 1


def test_jax_resume_matches_an_uninterrupted_run(cifar_like_dir, tmp_path):
    straight = tiny("sagan", cifar_like_dir, tmp_path / "straight", steps=4)
    run_jax("train", write_config(straight, tmp_path / "straight.json"))
    half = tiny("sagan", cifar_like_dir, tmp_path / "resumed", steps=2)
    run_jax("train", write_config(half, tmp_path / "half.json"))
    output = run_jax("train", write_config(dataclasses.replace(half, steps=4),
                                           tmp_path / "rest.json")).stdout
    assert "resumed from" in output and "steps 3..4" in output
    a = np.load(tmp_path / "straight" / "checkpoints" / "ckpt-4.npz")
    b = np.load(tmp_path / "resumed" / "checkpoints" / "ckpt-4.npz")
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    records = [json.loads(line) for line in open(tmp_path / "resumed" / "metrics.jsonl")]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
