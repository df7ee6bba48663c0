"""bench/bench.py: what it measures (presets read as train.py reads them) and a worker's row."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", os.path.join(ROOT, "bench", "bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(**overrides):
    values = dict(presets="", models="dcgan,sagan", batch_sizes="dcgan:128,sagan:64",
                  precisions="float32", jit_compile=False, distribute="none", extra="",
                  steps_per_call="1")
    values.update(overrides)
    return argparse.Namespace(**values)


def test_each_preset_is_measured_with_its_own_recipe_at_each_precision(bench):
    presets = ",".join(os.path.join(ROOT, "configs", f"{name}.cfg")
                       for name in ("sagan", "sngan", "dcgan_large"))
    measured = bench.configs(_args(presets=presets, precisions="float32,mixed_bfloat16",
                                   extra="width=8"))
    assert [(name, c.precision) for name, c in measured] == [
        (name, precision) for name in ("sagan", "sngan", "dcgan_large")
        for precision in ("float32", "mixed_bfloat16")]
    sagan, sngan, dcgan_large = (c for _, c in measured[::2])
    assert (sagan.model, sagan.arch, sagan.batch_size, sagan.n_critic, sagan.attention_res,
            sagan.lr_d, sagan.z_dim) == ("sagan", "resnet", 64, 1, (16,), 4e-4, 128)
    assert (sngan.n_critic, sngan.attention_res, sngan.lr_decay) == (5, (), "linear")
    assert (dcgan_large.model, dcgan_large.batch_size, dcgan_large.beta1) == ("dcgan", 128, 0.5)
    assert {c.width for _, c in measured} == {8}  # --extra overrides the presets
    assert len({c.workdir for _, c in measured}) == len(measured)


def test_without_presets_each_model_is_measured_at_its_batch_size(bench):
    measured = bench.configs(_args())
    assert [(name, c.model, c.batch_size) for name, c in measured] == [
        ("dcgan", "dcgan", 128), ("sagan", "sagan", 64)]


def test_each_steps_per_call_value_is_measured_with_cadences_at_its_calls(bench):
    measured = bench.configs(_args(models="dcgan", steps_per_call="1,4,16"))
    assert [c.steps_per_call for _, c in measured] == [1, 4, 16]
    for _, config in measured:  # resolved, so every cadence is a multiple of K
        assert config.log_every == config.steps_per_call
        assert config.steps % config.steps_per_call == 0 and config.steps >= 20000


def test_the_cpu_bf16_line_and_the_share_of_the_peak(bench):
    model, flags = bench.cpu_bf16()
    with open("/proc/cpuinfo") as f:
        text = f.read()
    assert model and model in text
    assert flags == [flag for flag in ("avx512_bf16", "amx_bf16") if f" {flag}" in text]
    assert bench.cpu_line("X", ["avx512_bf16"]) == "CPU: X; bfloat16 instructions: avx512_bf16"
    assert "no bfloat16 instructions" in bench.cpu_line("X", [])
    row = dict(tflops=98.9, precision="mixed_bfloat16", backend="jax")
    assert bench.peak_share(row, bench.PEAKS["H200"]) == pytest.approx(0.1)
    assert bench.peak_share({**row, "precision": "float32"}, bench.PEAKS["H200"]) == \
        pytest.approx(98.9 / 495)
    assert bench.peak_share(row, None) is None


def test_the_jax_worker_times_a_step_and_counts_its_flops(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "results.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "bench.py"), "--backends=jax",
         "--models=dcgan", "--batch_sizes=dcgan:4", "--extra=width=4", "--steps=1",
         "--repeats=2", "--warmup=1", "--fid_images=0", "--steps_per_call=1,2",
         f"--out={out}"],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CPU: " in result.stdout
    row, two = json.load(open(out))["results"]  # one row per --steps_per_call value
    assert (row["steps_per_call"], two["steps_per_call"]) == (1, 2)
    assert two["flops_per_step"] == row["flops_per_step"] and two["steps_per_sec"] > 0
    assert (row["backend"], row["model"], row["batch_size"], row["width"]) == (
        "jax", "dcgan", 4, 4)
    assert len(row["steps_per_sec_all"]) == 2 and row["steps_per_sec"] > 0
    # D's first convolution alone (3 -> 4 channels, 4x4 kernel, 16x16 outputs, 2 FLOPs per
    # multiply-add) over a batch of 4 is 0.39 MFLOP, run on real and fake images, forward and
    # backward: the count must include the convolutions.
    assert row["flops_per_step"] > 16 * 16 * 4 * 4 * 4 * 3 * 2 * 4 * 2 * 2
    assert row["tflops"] == pytest.approx(row["flops_per_step"] * row["steps_per_sec"] / 1e12)


def test_both_fid_networks_are_timed_in_bfloat16(bench):
    import keras
    import numpy as np

    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    networks = []
    for network, extractor in bench.fid_extractors("mixed_bfloat16"):
        model = getattr(extractor, "network", None) or extractor.model
        assert model.layers[1].compute_dtype == "bfloat16", network
        assert keras.config.dtype_policy().name == "float32"  # the policy is put back
        features = extractor(images)
        assert features.shape == (2, 2048) and np.all(np.isfinite(features))
        networks.append(network)
    assert networks == ["standard", "keras"]
    assert bench.features_per_second(lambda x: x, images) > 0
