"""Flags generated from the settings' declarations, flags -> config, and one-line errors."""

import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
from absl import flags

from tfgan_cifar import cli, config as config_lib
from tfgan_cifar.config import MODEL_DEFAULTS, TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.evaluate_model import EvaluateOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOATS = ("lr_g", "lr_d", "beta1", "beta2", "ema_decay", "aux_weight", "replay_fraction",
          "gp_weight")


def _flags(config_class=TrainConfig, argv=()):
    flag_values = flags.FlagValues()
    cli.define_flags(config_class, flag_values)
    flag_values(["prog", *argv])
    return flag_values


def _argv(config):
    """The command line that sets every setting of `config` (None: left unset)."""
    args = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, bool):
            args.append(f"--{'' if value else 'no'}{field.name}")
        elif isinstance(value, tuple):
            args.append(f"--{field.name}={','.join(map(str, value))}")
        elif value is not None:
            args.append(f"--{field.name}={value}")
    return args


def test_a_renamed_setting_keeps_its_former_flag_and_config_json_name(tmp_path):
    model = tmp_path / "c.keras"
    model.write_bytes(b"")
    for flag in ("reference_classifier", "classifier"):  # the current name, the former one
        config = cli.config_from_flags(TrainConfig, _flags(argv=[f"--{flag}={model}"]))
        assert config.reference_classifier == str(model)
        options = cli.config_from_flags(EvaluateOptions,
                                        _flags(EvaluateOptions, [f"--{flag}={model}"]))
        assert options.reference_classifier == str(model)
    recorded = TrainConfig.from_json(json.dumps({"classifier": str(model), "steps": 3}))
    assert recorded.reference_classifier == str(model) and recorded.steps == 3
    for flag in ("class_head", "aux_classifier"):  # D's class head, its former name
        assert cli.config_from_flags(TrainConfig, _flags(argv=[f"--{flag}"])).class_head
        assert not cli.config_from_flags(TrainConfig, _flags(argv=[f"--no{flag}"])).class_head
    assert TrainConfig.from_json(json.dumps({"aux_classifier": True})).class_head


def test_every_setting_has_a_flag_of_its_type_and_default():
    flag_values = _flags()
    parsers = {int: flags.IntegerParser, float: flags.FloatParser, str: flags.ArgumentParser}
    for field in dataclasses.fields(TrainConfig):
        flag = flag_values[field.name]
        kind, item = config_lib.value_type(field)
        default = list(field.default) if isinstance(field.default, tuple) else field.default
        assert flag.default == default, field.name
        choices = config_lib.choices_of(field)
        if kind is bool:
            assert isinstance(flag, flags.BooleanFlag), field.name
        elif kind is tuple:
            assert isinstance(flag.parser, flags.ListParser)
            two = [str(c) for c in choices[:2]] if choices is not None else ["16", "32"]
            assert flag.parser.parse(",".join(two)) == [item(v) for v in two], field.name
            assert flag.value == default, field.name
        elif choices is not None:
            assert isinstance(flag, flags.EnumFlag) and flag.parser.enum_values == list(choices)
        else:
            assert type(flag.parser) is parsers[kind], field.name
        assert field.metadata["help"].rstrip(".") in flag.help, field.name
    assert set(flag_values) >= {f.name for f in dataclasses.fields(TrainConfig)}
    assert "log_dir" not in {f.name for f in dataclasses.fields(TrainConfig)}  # absl's


def test_choices_come_from_the_registries_and_model_defaults_stay_unset():
    from tfgan_cifar import nn
    from tfgan_cifar.nn import ARCHITECTURES, ATTENTION_RESOLUTIONS
    from tfgan_cifar.training.augment import AUGMENTATIONS
    from tfgan_cifar.training.losses import LOSSES
    from tfgan_cifar.training.optimizers import OPTIMIZERS

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert config_lib.choices_of(fields["model"]) == nn.MODELS == tuple(MODEL_DEFAULTS)
    assert config_lib.choices_of(fields["loss"]) == tuple(LOSSES)
    assert config_lib.choices_of(fields["optimizer"]) == OPTIMIZERS
    assert config_lib.choices_of(fields["attention_res"]) == ATTENTION_RESOLUTIONS == (8, 16, 32)
    assert config_lib.choices_of(fields["arch"]) == tuple(ARCHITECTURES) == ("resnet", "cnn")
    assert config_lib.choices_of(fields["augment"]) == tuple(AUGMENTATIONS)
    for name in MODEL_DEFAULTS["dcgan"]:
        assert fields[name].default is None
        help_text = config_lib.help_text(fields[name])
        for model, values in MODEL_DEFAULTS.items():
            assert f"{model}: {str(values[name]).lower()}" in help_text.lower()


def test_config_from_flags_round_trips():
    assert cli.config_from_flags(TrainConfig, _flags()) == TrainConfig().resolved()
    config = TrainConfig(
        model="sagan", workdir="runs/x", steps=7, batch_size=8, seed=3, flip=False, z_dim=16,
        arch="cnn", attention_res=(16, 32), loss="wasserstein", optimizer="rmsprop", n_critic=5,
        lr_g=1e-3, gp_weight=10.0, augment=("translation", "cutout"), replay_size=64,
        replay_fraction=0.25, eval_every=0, fid_cache_dir="cache", inception_weights="w.h5",
        conditional=False).resolved()
    assert cli.config_from_flags(TrainConfig, _flags(argv=_argv(config))) == config
    options = EvaluateOptions(model="dcgan", fid=False, num_samples=5, seed=2, image_dir="x")
    assert cli.config_from_flags(EvaluateOptions, _flags(EvaluateOptions, _argv(options))) == options


# The recipe each preset states in its header, and the networks it builds: (classes, channels
# of G's and D's stages, attention resolutions of G and D).
COMMON = dict(n_critic=1, beta1=0.0, beta2=0.9, batch_size=64, z_dim=128, width=64,
              conditional=True, loss="hinge", model="sagan", arch="resnet", init="orthogonal")
DCGAN = dict(model="dcgan", arch=None, conditional=False, loss="bce", n_critic=1, lr_g=2e-4,
             lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=128, z_dim=100, steps=20000,
             init="normal", g_spectral_norm=False, g_batch_size=128)
RESNET = ("ResNetGenerator", "ResNetDiscriminator"), ([256] * 3, [128] * 4)
PRESETS = {
    "dcgan.cfg": (dict(DCGAN, width=32), (("DCGANGenerator", "DCGANDiscriminator"),
                                          ([128, 64, 32], [64, 128, 256]), None, None)),
    "dcgan_large.cfg": (dict(DCGAN, width=128), (("DCGANGenerator", "DCGANDiscriminator"),
                                                 ([512, 256, 128], [256, 512, 1024]), None, None)),
    "sagan.cfg": (dict(COMMON, attention_res=(16,), lr_g=1e-4, lr_d=4e-4, steps=20000,
                       g_spectral_norm=True, g_batch_size=64, flip=True),
                  (*RESNET, (16,), (16,))),
    "quick.cfg": (dict(DCGAN, width=32, steps=500, eval_every=500, fid_samples=500),
                  (("DCGANGenerator", "DCGANDiscriminator"), ([128, 64, 32], [64, 128, 256]),
                   None, None)),
    "sngan.cfg": (dict(COMMON, attention_res=(), n_critic=5, lr_g=2e-4, lr_d=2e-4, steps=50000,
                       lr_decay="linear", g_spectral_norm=False, g_batch_size=128, flip=False),
                  (*RESNET, (), ())),
}


def _layout(generator, discriminator):
    """(class names, (G's stage channels, D's stage channels), G's and D's attention
    resolutions) of an unbuilt pair of networks."""
    names = type(generator).__name__, type(discriminator).__name__
    if hasattr(generator, "blocks"):
        channels = ([b.channels for b in generator.blocks],
                    [b.channels for b in discriminator.blocks])
    else:
        channels = ([generator.dense.units // 16] + [d.filters for d in generator.deconvs],
                    [c.filters for c in discriminator.convs])
    return (names, channels, getattr(generator, "attention_res", None),
            getattr(discriminator, "attention_res", None))


def _spectral_layers(model):
    from tfgan_cifar.nn.base import nested_layers
    from tfgan_cifar.nn.layers import _SpectralNorm

    return [layer for layer in nested_layers(model) if isinstance(layer, _SpectralNorm)]


def test_every_preset_is_checked():
    assert sorted(os.listdir(os.path.join(ROOT, "configs"))) == sorted(PRESETS)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_resolve_to_their_recipes_and_networks(preset, tmp_path):
    from tfgan_cifar.nn import build_models

    recipe, layout = PRESETS[preset]
    flag_values = _flags(argv=[f"--flagfile={os.path.join(ROOT, 'configs', preset)}",
                               f"--workdir={tmp_path}"])
    config = cli.config_from_flags(TrainConfig, flag_values, warn=False)
    assert {name: getattr(config, name) for name in recipe} == recipe
    generator, discriminator = build_models(config)
    assert _layout(generator, discriminator) == layout
    if config.model == "sagan":  # D is always spectrally normalised, G as the preset says
        spectral = [_spectral_layers(network.build_weights())
                    for network in (generator, discriminator)]
        assert (len(spectral[0]) > 0) == config.g_spectral_norm and len(spectral[1]) > 5


def test_evaluate_options_reuse_the_training_declarations():
    train = {f.name: f for f in dataclasses.fields(TrainConfig)}
    shared = [f for f in dataclasses.fields(EvaluateOptions) if f.name in train]
    assert {f.name for f in shared} >= {"image_dir", "data_dir", "fid_samples", "seed",
                                        "inception_weights", "fid_cache_dir", "save_dir"}
    for field in shared:
        if field.name != "model":  # evaluate.py picks which saved model, default sagan
            assert dict(field.metadata) == dict(train[field.name].metadata), field.name
            assert field.default == train[field.name].default, field.name
    assert all("help" in f.metadata for f in dataclasses.fields(EvaluateOptions))


@pytest.mark.parametrize("name", FLOATS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused_naming_the_flag(name, value):
    with pytest.raises(UserError, match=f"^--{name} must be a finite number"):
        TrainConfig(**{name: value}).resolved()


@pytest.mark.parametrize("values,message", [
    (dict(model="dcgan", g_spectral_norm=True), "--g_spectral_norm is SAGAN's: "
     "--model=dcgan's G has no spectral norm; leave it out"),
    (dict(g_batch_size=0), "--g_batch_size must be at least 1, got 0"),
    (dict(seed=-1), "--seed must be >= 0, got -1"),
    (dict(sample_every=-1), "--sample_every must be >= 0 (0 turns it off)"),
    (dict(steps=0), "--steps must be at least 1, got 0"),
    (dict(fid_samples=1), "--fid_samples must be at least 2"),
    (dict(optimizer="adamw"), "--optimizer takes adam, rmsprop, sgd, got adamw"),
    (dict(loss="l1"), "--loss takes"),
    (dict(attention_res=(16, 64)), "--attention_res takes 8, 16, 32, got 64"),
])
def test_out_of_range_settings_give_one_line(values, message):
    with pytest.raises(UserError) as error:
        TrainConfig(**values).resolved()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_flags_without_effect_warn_once(capsys, monkeypatch):
    cli.config_from_flags(TrainConfig, _flags(argv=["--replay_fraction=0.3", "--aux_weight=2"]))
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["warning: --aux_weight has no effect without --class_head",
                     "warning: --replay_fraction has no effect without --replay_size"]
    cli.config_from_flags(TrainConfig, _flags(argv=["--replay_size=256"]))
    assert capsys.readouterr().err == ""
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    cli.config_from_flags(TrainConfig, _flags(argv=["--jit_compile"]))
    assert capsys.readouterr().err.splitlines() == [
        "warning: --jit_compile has no effect with KERAS_BACKEND=jax: JAX always compiles the "
        "training step"]
    cli.config_from_flags(TrainConfig, _flags(argv=["--run_eagerly"]))
    assert capsys.readouterr().err.splitlines() == [
        "warning: --run_eagerly has no effect with KERAS_BACKEND=jax: set JAX_DISABLE_JIT=1 to "
        "run JAX op by op"]
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    cli.config_from_flags(TrainConfig, _flags(argv=["--run_eagerly", "--jit_compile"]))
    assert capsys.readouterr().err.splitlines() == [
        "warning: --jit_compile has no effect with --run_eagerly: nothing is compiled"]


def test_bad_flag_values_fail_at_parse_time_with_one_line():
    for argv in (["--model=biggan"], ["--attention_res=64"], ["--arch=biggan"], ["--loss=l2"],
                 ["--steps=x"], ["--augment=color,flip"]):
        with pytest.raises(UserError) as error:
            cli.parse_flags(["prog", *argv], _flags())
        assert "\n" not in str(error.value) and argv[0].split("=")[0] in str(error.value)


def _train_py(*args, env=None):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("argv,message", [
    (["--lr_g=nan"], "--lr_g must be a finite number, got nan"),
    (["--seed=-1"], "--seed must be >= 0, got -1"),
    (["--model=biggan"], "--model=biggan: value should be one of <dcgan|sagan>"),
    (["--steps=10", "extra"], "unexpected arguments: extra"),
])
def test_train_py_gives_one_error_line_and_exit_code_2(argv, message):
    result = _train_py(*argv)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_a_bad_flag_is_reported_before_tensorflow_or_keras_is_loaded():
    script = ("import runpy, sys\n"
              "sys.argv = ['train.py', '--model=sagan', '--attention_res=32']\n"
              "try:\n"
              "    runpy.run_path('train.py', run_name='__main__')\n"
              "except SystemExit as stop:\n"
              "    print(stop.code, sorted({'tensorflow', 'keras', 'jax'} & set(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.split("\n")[0] == "2 []", result.stdout + result.stderr[-2000:]
    assert "is not available with --arch=resnet" in result.stderr


def test_entry_points_called_in_one_process_each_keep_their_own_flags(tmp_path, capfd):
    """train.py's --model defaults to dcgan, evaluate.py's to sagan; evaluate.py has no --steps."""
    from tfgan_cifar.commands import evaluate, train

    calls = [(train.main, ["--seed=-1"], "--seed must be >= 0, got -1"),
             (evaluate.main, [f"--save_dir={tmp_path}", f"--run_dir={tmp_path / 'no_run'}"],
              f"no saved model at {tmp_path / 'sagan' / 'best'}:"),
             (evaluate.main, ["--steps=3"], "Unknown command line flag 'steps'")]
    for main, argv, message in calls:
        with pytest.raises(SystemExit) as stop:
            main(["prog", *argv])
        errors = capfd.readouterr().err.splitlines()
        assert stop.value.code == 2 and len(errors) == 1, errors
        assert errors[0].startswith("error: ") and message in errors[0], errors


def test_declared_registry_names_are_the_implemented_ones():
    for registry in (config_lib.MODELS, config_lib.LOSSES, config_lib.OPTIMIZERS,
                     config_lib.ARCHITECTURES, config_lib.ATTENTION_RESOLUTIONS,
                     config_lib.PRECISIONS, config_lib.AUGMENTATIONS):
        assert registry.names() == tuple(registry.implementation()), registry.attribute
    assert config_lib.ARCHITECTURE_ATTENTION == {
        name: tuple(arch.attention_res)
        for name, arch in config_lib.ARCHITECTURES.implementation().items()}


def test_jit_compile_under_jax_says_it_has_no_effect(tmp_path):
    result = _train_py("--jit_compile", f"--image_dir={tmp_path / 'missing'}",
                       f"--workdir={tmp_path / 'run'}", env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 2, result.stderr[-2000:]
    notes = [line for line in result.stderr.splitlines() if "--jit_compile" in line]
    assert len(notes) == 1 and "no effect" in notes[0] and "jax" in notes[0].lower()


def _started_run(workdir, **values):
    """A run directory as training leaves it: config.json and a metrics line."""
    from tfgan_cifar.run_dir import RunDir

    config = TrainConfig(workdir=str(workdir), **values).resolved()
    run = RunDir(str(workdir))
    os.makedirs(run.path)
    run.write_config(config)
    run.metrics.append("train", 10, {"g_loss": 1.0})
    return config


def test_the_workdir_alone_continues_the_recorded_run(tmp_path):
    recorded = _started_run(tmp_path / "run", model="sagan", width=8, lr_g=3e-4, steps=50,
                            image_dir="/data/train", attention_res=(8, 16))
    config = cli.config_from_flags(
        TrainConfig, _flags(argv=[f"--workdir={tmp_path / 'run'}", "--steps=80",
                                  "--eval_every=5"]), warn=False)
    assert config == dataclasses.replace(recorded, steps=80, eval_every=5)
    # A setting the run keeps may be typed again with its recorded value.
    config = cli.config_from_flags(
        TrainConfig, _flags(argv=[f"--workdir={tmp_path / 'run'}", "--attention_res=16,8",
                                  "--model=sagan"]), warn=False)
    assert config == recorded


def test_every_setting_a_resumed_run_cannot_change_is_listed_at_once(tmp_path):
    _started_run(tmp_path / "run", model="dcgan", width=8)
    flag_values = _flags(argv=[f"--workdir={tmp_path / 'run'}", "--width=16", "--lr_d=0.1",
                               "--seed=3", "--steps=99"])
    with pytest.raises(UserError) as error:
        cli.config_from_flags(TrainConfig, flag_values, warn=False)
    assert str(error.value) == (
        f"--workdir={tmp_path / 'run'} holds a run with seed=0, width=8, lr_d=0.0002; a run "
        "keeps these settings: leave out --seed, --width, --lr_d to resume it, or pass "
        "another --workdir")


def test_a_workdir_without_a_started_run_takes_the_flags_as_given(tmp_path):
    os.makedirs(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text(TrainConfig(model="sagan").resolved().to_json())
    config = cli.config_from_flags(TrainConfig, _flags(argv=[f"--workdir={tmp_path / 'run'}"]),
                                   warn=False)
    assert config.model == "dcgan"  # a config.json alone is a failed start: replaced


def test_h_is_help_and_presets_are_flagfiles_of_the_package(tmp_path):
    assert cli.expand_arguments(["prog", "-h", "--", "-h"]) == ["prog", "--help", "--", "-h"]
    flag_values = flags.FlagValues()
    cli.define_flags(TrainConfig, flag_values)
    cli.parse_flags(["prog", "--preset=sngan", "--steps=7", f"--workdir={tmp_path}"],
                    flag_values)
    config = cli.config_from_flags(TrainConfig, flag_values, warn=False)
    assert (config.n_critic, config.lr_decay, config.attention_res, config.steps) == (
        5, "linear", (), 7)
    assert cli.presets() == ["dcgan", "dcgan_large", "quick", "sagan", "sngan"]
