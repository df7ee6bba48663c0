"""bench/bench.py's choice of what to measure: presets read as train.py reads them."""

import argparse
import importlib.util
import os

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
                  precisions="float32", jit_compile=False, distribute="none", extra="")
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
