"""The training configuration: one frozen dataclass, resolved against per-model defaults.

Every setting is declared once, as a dataclass field made by `setting`: its default, help text,
help group and (for names picked from a registry) its choices. `tfgan_cifar.cli` turns the
declarations into absl flags, and `EvaluateOptions` reuses the ones it shares with training.
This module does not import TensorFlow or Keras: the registries' names are declared here and
their entries imported only when looked up, so checking flags needs neither.
"""

import dataclasses
import importlib
import json
import math
import os
import typing
from typing import Optional, Tuple

from tfgan_cifar.errors import UserError
from tfgan_cifar.paths import CACHE_DIR

# Values a field takes when left as None, per model: the recipes of the DCGAN and SAGAN papers.
MODEL_DEFAULTS = {
    "dcgan": dict(
        conditional=False, loss="bce", n_critic=1, lr_g=2e-4, lr_d=2e-4, beta1=0.5,
        beta2=0.999, z_dim=100, width=32, batch_size=128, init="normal", g_spectral_norm=False,
    ),
    "sagan": dict(
        conditional=True, loss="hinge", n_critic=1, lr_g=1e-4, lr_d=4e-4, beta1=0.0,
        beta2=0.9, z_dim=128, width=64, batch_size=64, arch="resnet", init="orthogonal",
        g_spectral_norm=True,
    ),
}

# Settings counted in generator steps that must fall between compiled calls (--steps_per_call).
CALL_CADENCES = ("steps", "log_every", "checkpoint_every", "eval_every", "sample_every")

# Help groups, in the order `--helpfull` lists them.
GROUPS = ("run", "devices", "paths", "data", "architecture", "objective", "studies", "cadence",
          "evaluation", "outputs")


@dataclasses.dataclass(frozen=True)
class Registry:
    """A registry: its names are declared here, so that flags and validation need no import;
    its entries live in `module.attribute` (a tuple, or a dict keyed by name), imported only
    when an entry is looked up, since the registries import Keras. A registry that is only a
    tuple of names takes this declaration; test_cli checks that the others' keys match."""

    module: str
    attribute: str
    declared: tuple

    def names(self):
        """The registered names, in the registry's order."""
        return self.declared

    def lookup(self, name):
        """The entry registered as `name` (of a dict registry)."""
        return self.implementation()[name]

    def implementation(self):
        """`module.attribute` itself (imports `module`)."""
        return getattr(importlib.import_module(self.module), self.attribute)


MODELS = Registry("tfgan_cifar.nn", "MODELS", ("dcgan", "sagan"))
LOSSES = Registry("tfgan_cifar.training.losses", "LOSSES",
                  ("bce", "lsgan", "hinge", "wasserstein"))
OPTIMIZERS = Registry("tfgan_cifar.training.optimizers", "OPTIMIZERS", ("adam", "rmsprop", "sgd"))
ARCHITECTURES = Registry("tfgan_cifar.nn", "ARCHITECTURES", ("resnet", "cnn"))
INITIALIZERS = Registry("tfgan_cifar.nn.initializers", "INITIALIZERS", ("orthogonal", "glorot", "normal"))
# The resolutions at which each --arch's G and D both have blocks (nn.ARCHITECTURES' own).
ARCHITECTURE_ATTENTION = {"resnet": (8, 16), "cnn": (8, 16, 32)}
ATTENTION_RESOLUTIONS = Registry(
    "tfgan_cifar.nn", "ATTENTION_RESOLUTIONS",
    tuple(sorted({r for resolutions in ARCHITECTURE_ATTENTION.values() for r in resolutions})))
PRECISIONS = Registry("tfgan_cifar.precision", "PRECISIONS",
                      ("float32", "mixed_bfloat16", "mixed_float16"))
AUGMENTATIONS = Registry("tfgan_cifar.training.augment", "AUGMENTATIONS",
                         ("color", "translation", "cutout"))
DISTRIBUTE = ("none", "mirrored", "multi_worker")
FID_NETWORKS = ("standard", "keras")
FID_REFERENCES = ("train", "test")
LR_DECAYS = ("none", "linear")
# Discriminators whose layers are spectrally normalised: a Lipschitz critic without a penalty.
SPECTRAL_NORM_CRITICS = ("sagan",)


def setting(default, help, group, choices=None, minimum=None, off_at_zero=False,
            requires=None, repeatable=False, aliases=()):
    """Declares one setting as a dataclass field; its flag is generated from the declaration.

    Args:
        default: the default value (`None`: unset; for the keys of MODEL_DEFAULTS, the model's).
        help: one or two sentences for `--helpfull`.
        group: one of GROUPS.
        choices: a `Registry` (or a tuple) of the allowed values (of each item, for tuples).
        minimum: the smallest allowed value of an integer setting.
        off_at_zero: 0 turns the feature off (said in the error for values below `minimum`).
        requires: the name of the setting without which this one has no effect.
        repeatable: a tuple setting given by repeating its flag instead of a comma list.
        aliases: other names of the setting (former or shorter ones, or a Python keyword like
            tfgan-sample's --class), accepted as flags and in config.json too.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown settings group {group!r}; add it to GROUPS")
    metadata = dict(help=help, group=group, choices=choices, minimum=minimum,
                    off_at_zero=off_at_zero, requires=requires, repeatable=repeatable,
                    aliases=tuple(aliases))
    return dataclasses.field(default=default, metadata=metadata)


def same_as(config_class, name):
    """The declaration of `config_class`'s setting `name`, for a class that shares it."""
    declared = {field.name: field for field in dataclasses.fields(config_class)}[name]
    return dataclasses.field(default=declared.default, metadata=declared.metadata)


def settings(config_class):
    """The fields of `config_class` declared with `setting`, in declaration order."""
    return [field for field in dataclasses.fields(config_class) if "group" in field.metadata]


def with_current_names(config_class, values):
    """`values` (keyed by setting names, e.g. a config.json) with every former name of a
    renamed setting replaced by its current one."""
    former = {alias: f.name for f in settings(config_class) for alias in f.metadata["aliases"]}
    return {former.get(k, k): v for k, v in values.items()}


def value_type(field):
    """(type, item type) of a setting: `Optional[X]` gives X; tuples give their item type."""
    kind = field.type
    if typing.get_origin(kind) is typing.Union:
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if typing.get_origin(kind) is tuple:
        return tuple, typing.get_args(kind)[0]
    return kind, None


def choices_of(field):
    """The values a setting allows, or None if any value goes."""
    choices = field.metadata.get("choices")
    return choices.names() if isinstance(choices, Registry) else choices


def _format(value):
    return str(value).lower() if isinstance(value, bool) else str(value)


def help_text(field):
    """The help of a setting; a model-dependent one also lists each model's default."""
    text = field.metadata["help"]
    per_model = [f"{model}: {_format(values[field.name])}"
                 for model, values in MODEL_DEFAULTS.items() if field.name in values]
    if per_model:
        text = f"{text.rstrip('.')} (default per model: {', '.join(per_model)})."
    return text


# What a resumed run may change: its length, paths, cadences and evaluation. Everything else
# (model, recipe, data order, studies) is part of the saved state.
RESUMABLE_GROUPS = ("devices", "paths", "cadence", "evaluation")
RESUMABLE_SETTINGS = ("steps", "jit_compile", "image_dir", "data_dir")


def resumable(field):
    """Whether a resumed run may change the setting `field`."""
    return (field.metadata["group"] in RESUMABLE_GROUPS
            or field.name in RESUMABLE_SETTINGS)


def continued_run(recorded, given):
    """The configuration that continues the run recorded as `recorded` (a TrainConfig), with
    the settings `given` ({name: value}, the flags typed) applied where a run may change them.
    A given value that would change any other setting raises UserError listing every one."""
    candidate = dataclasses.replace(recorded, **given).resolved()
    # None: a setting newer than the run, absent from its config.json; it binds nothing.
    changed = [field.name for field in settings(TrainConfig) if not resumable(field)
               and getattr(recorded, field.name) is not None
               and getattr(candidate, field.name) != getattr(recorded, field.name)]
    if changed:
        was = ", ".join(f"{name}={_format(getattr(recorded, name))}" for name in changed)
        flags = ", ".join(f"--{name}" for name in changed)
        raise UserError(f"--workdir={recorded.workdir} holds a run with {was}; a run keeps "
                        f"these settings: leave out {flags} to resume it, or pass another "
                        "--workdir")
    return candidate


def check_settings(config):
    """Raises UserError, one line naming the flag, for a value outside its declaration: a
    non-finite float, an integer below its minimum or a name outside its registry."""
    for field in settings(type(config)):
        value, flag = getattr(config, field.name), f"--{field.name}"
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{flag} must be a finite number, got {value}")
        minimum = field.metadata["minimum"]
        if minimum is not None and value < minimum:
            if minimum > 0:
                raise UserError(f"{flag} must be at least {minimum}, got {value}")
            off = " (0 turns it off)" if field.metadata["off_at_zero"] else ""
            raise UserError(f"{flag} must be >= {minimum}{off}, got {value}")
        allowed = choices_of(field)
        if allowed is not None:
            bad = [v for v in (value if isinstance(value, tuple) else (value,))
                   if v not in allowed]
            if bad:
                raise UserError(f"{flag} takes {', '.join(map(str, allowed))}, got "
                                f"{','.join(map(str, bad))}")


def default_fid_network(fid_cache_dir, inception_weights=None):
    """"standard" when its weights are in `fid_cache_dir` and no Keras InceptionV3 weights
    file is given, else "keras"."""
    from tfgan_cifar import fid_weights  # it declares its own options with this module

    if inception_weights is None and fid_weights.have_weights(fid_cache_dir):
        return "standard"
    return "keras"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. `None` means "the model's default"."""

    model: str = setting("dcgan", "Which GAN to train.", "run", choices=MODELS)
    steps: int = setting(20000, "Total generator steps.", "run", minimum=1)
    batch_size: Optional[int] = setting(None, "Batch size.", "run", minimum=1)
    g_batch_size: Optional[int] = setting(
        None, "Images G generates in its own step (default: --batch_size); SNGAN-projection "
        "uses twice D's batch.", "run", minimum=1)
    seed: int = setting(0, "Seed of every random choice: the weights, noise and data order of "
                        "training, the noise and labels of evaluate.py.", "run", minimum=0)
    jit_compile: bool = setting(False, "Compile the training step with XLA (TensorFlow "
                                "backend; JAX always compiles it).", "run")
    # Devices: how the step runs, not what it computes; a run may resume with others.
    run_eagerly: bool = setting(
        False, "Run the TensorFlow functions of training (the step, sampling, evaluation) op by "
        "op instead of as compiled graphs, as Keras's run_eagerly does: for debugging with "
        "print and pdb. Slower on real networks, quicker to start on tiny ones. On JAX, set "
        "JAX_DISABLE_JIT=1 instead.", "devices")
    precision: str = setting(
        "float32", "Numeric precision of G and D: float32, or a Keras mixed policy that "
        "computes in bfloat16 (CPUs with AMX/AVX512-BF16, TPUs, A100/H100 GPUs) or float16 "
        "(older GPUs; the losses are scaled). Weights, losses, samples and exports stay float32.",
        "devices", choices=PRECISIONS)
    distribute: str = setting(
        "none", "Data-parallel training: mirrored (all local GPUs, or --devices), multi_worker "
        "(several machines: TF_CONFIG or Slurm on TensorFlow, jax.distributed on JAX). "
        "--batch_size is the global batch.", "devices", choices=DISTRIBUTE)
    devices: Tuple[str, ...] = setting(
        (), "Devices of --distribute=mirrored, e.g. GPU:0,GPU:1 (default: every local GPU, "
        "else the CPU).", "devices")
    sync_bn: bool = setting(False, "Batch statistics over the global batch in every batch "
                            "norm of G and D, not per replica (TensorFlow; under JAX they are "
                            "always global).", "devices")
    steps_per_call: int = setting(
        1, "Training steps run in one compiled call (a loop on the device), so the host "
        "dispatches once per K steps. Logs, checkpoints, evaluations, sample grids and Ctrl-C "
        "happen between calls: --steps and every cadence (--log_every, --checkpoint_every, "
        "--eval_every, --sample_every) must be multiples of it; another value is refused with "
        "the nearest valid ones.", "devices", minimum=1)
    coordinator_address: Optional[str] = setting(
        None, "JAX multi-process: host:port of process 0 (else the environment JAX reads, e.g. "
        "Slurm).", "devices")
    num_processes: Optional[int] = setting(None, "JAX multi-process: the number of processes.",
                                           "devices", minimum=1)
    process_id: Optional[int] = setting(None, "JAX multi-process: this process's index.",
                                        "devices", minimum=0)
    connect_timeout: int = setting(
        120, "--distribute=multi_worker: seconds to wait for the other processes at start-up "
        "before giving up with one line naming the address that did not answer.",
        "devices", minimum=1)
    workdir: Optional[str] = setting(
        None, "Run directory (checkpoints, TensorBoard events, metrics.jsonl, samples, "
        "config.json). Default logs/<model>; rerunning with the same workdir resumes.", "paths")
    save_dir: str = setting("saved_models", "Where the best generator is published, to "
                            "<save_dir>/<model>/best (evaluate.py loads it from there); the "
                            "final one stays in <workdir>/export/final.", "paths")
    # Data.
    image_dir: Optional[str] = setting(
        None, "Use an image folder with one subfolder per class (jpg/png), e.g. cifar10/train, "
        "as the training data. Its sibling 'test' folder is the FID reference when present.",
        "data")
    data_dir: Optional[str] = setting(
        None, "Read a prepared tensorflow-datasets copy of cifar10 from this directory instead "
        "of downloading it.", "data")
    flip: bool = setting(True, "Random horizontal flips of training images.", "data")
    num_classes: int = setting(10, "Number of classes (labels 0..n-1).", "data", minimum=1)
    # Architecture.
    conditional: Optional[bool] = setting(None, "Class-conditional G and D.", "architecture")
    z_dim: Optional[int] = setting(None, "Noise dimension.", "architecture", minimum=1)
    arch: Optional[str] = setting(
        None, "SAGAN's networks: resnet (the CIFAR-10 ResNets of SNGAN-projection, SAGAN and "
        "BigGAN) or cnn (SNGAN's standard-CNN G and 7-convolution D). DCGAN has one network: "
        "leave it unset.", "architecture", choices=ARCHITECTURES)
    width: Optional[int] = setting(
        None, "Channel width w of both networks. DCGAN: G starts at 4x4x(4w), D has 2w, 4w, "
        "8w; SAGAN resnet: G has 4w channels, D 2w (256 and 128 at w=64); SAGAN cnn: G starts "
        "at 4x4x(8w), D has w to 8w.", "architecture", minimum=1)
    attention_res: Tuple[int, ...] = setting(
        (16,), "SAGAN: self-attention in G and D after the first block whose output has this "
        "resolution; several joined by commas, none with --attention_res= (as in SNGAN). "
        "--arch=resnet takes 8 and 16, --arch=cnn 8, 16 and 32.", "architecture",
        choices=ATTENTION_RESOLUTIONS)
    init: Optional[str] = setting(
        None, "Initialisation of the convolution, dense and embedding kernels (DCGAN: its "
        "convolutions and dense layers): orthogonal (BigGAN, StudioGAN), glorot (Keras's "
        "glorot_uniform) or normal (N(0, 0.02), the DCGAN paper's).", "architecture",
        choices=INITIALIZERS)
    g_spectral_norm: Optional[bool] = setting(
        None, "SAGAN: spectral norm in G as well as in D (SAGAN, BigGAN); false leaves G's "
        "layers plain, as SNGAN-projection's. DCGAN's G has none.", "architecture")
    # Objective and optimisation.
    loss: Optional[str] = setting(None, "GAN loss.", "objective", choices=LOSSES)
    optimizer: str = setting("adam", "Optimizer of both networks, each with its own learning "
                             "rate (SGD uses --beta1 as momentum).", "objective",
                             choices=OPTIMIZERS)
    n_critic: Optional[int] = setting(None, "Discriminator steps per generator step.",
                                      "objective", minimum=1)
    lr_g: Optional[float] = setting(None, "Generator learning rate.", "objective")
    lr_d: Optional[float] = setting(None, "Discriminator learning rate.", "objective")
    beta1: Optional[float] = setting(None, "Adam beta1.", "objective")
    beta2: Optional[float] = setting(None, "Adam beta2.", "objective")
    lr_decay: str = setting("none", "Learning-rate schedule of both networks: none, or linear "
                            "decay to 0 at --steps (SNGAN, BigGAN).", "objective",
                            choices=LR_DECAYS)
    ema_decay: float = setting(0.0, "Keep an exponential moving average of G's weights with "
                               "this decay (e.g. 0.999) and use it for samples, FID and export; "
                               "the decay warms up as min(decay, (1+t)/(10+t)) at step t. 0 "
                               "turns it off.", "objective")
    # Studies: multi-task D, experience replay, gradient penalty, DiffAugment.
    class_head: bool = setting(
        False, "Multi-task discriminator: a two-layer class head on an inner feature map of D "
        "(DCGAN: the third convolution block; SAGAN: an 8x8 map) predicts the class of real "
        "images; D minimises its GAN loss + --aux_weight x cross-entropy. Also "
        "--aux_classifier.", "studies", aliases=("aux_classifier",))
    aux_weight: float = setting(1.0, "Weight of the classifier head's loss.", "studies",
                                requires="class_head")
    replay_size: int = setting(0, "Experience replay: keep the last N generated images in a "
                               "buffer (0: off; at least --batch_size).", "studies", minimum=0,
                               off_at_zero=True)
    replay_fraction: float = setting(0.5, "Fraction of each fake batch shown to D that is drawn "
                                     "from the replay buffer.", "studies",
                                     requires="replay_size")
    gp_weight: float = setting(0.0, "WGAN-GP gradient penalty weight (e.g. 10; needs "
                               "--loss=wasserstein; 0: off).", "studies")
    augment: Tuple[str, ...] = setting(
        (), "DiffAugment (Zhao et al. 2020): D sees every image, real and fake, through random "
        "differentiable augmentations, in the D and G steps and the gradient penalty; any of "
        "color, translation, cutout (e.g. translation,cutout). Counters D overfitting: small "
        "data sets, long runs. Default: off.", "studies", choices=AUGMENTATIONS)
    # Cadences, in generator steps.
    log_every: int = setting(100, "Log losses and print progress every N steps.", "cadence",
                             minimum=1)
    sample_every: int = setting(1000, "Write the fixed-noise 8x8 sample grid every N steps "
                                "(0: never).", "cadence", minimum=0, off_at_zero=True)
    checkpoint_every: int = setting(1000, "Checkpoint every N steps (also on Ctrl-C and at the "
                                    "end; 0: only then).", "cadence", minimum=0,
                                    off_at_zero=True)
    keep_checkpoints: int = setting(3, "Checkpoints kept on disk.", "cadence", minimum=1)
    eval_every: int = setting(1000, "Compute FID and KID every N steps and at the last one, "
                              "and export the generator when FID improves (0: never).",
                              "cadence", minimum=0, off_at_zero=True)
    # Evaluation (FID and KID against a CIFAR-10 split, --fid_reference).
    fid_samples: int = setting(
        10000, "Generated images per FID/KID evaluation (conditional models draw labels "
        "uniformly); the reference uses as many images of its split, at most all of them.",
        "evaluation", minimum=2)
    fid_network: Optional[str] = setting(
        None, "Network of FID and KID: standard (the InceptionV3 of 2015-12-05 that published "
        "FIDs use; its weights come from `python -m tfgan_cifar.fid_weights`) or keras (Keras's "
        "InceptionV3 ImageNet weights, not comparable with papers). Default: standard when its "
        "weights are in --fid_cache_dir and no --inception_weights is given, else keras.",
        "evaluation", choices=FID_NETWORKS)
    fid_reference: str = setting(
        "test", "Split the FID reference statistics come from: test, or train (the papers' "
        "protocol: 50k samples against the 50k training images).", "evaluation",
        choices=FID_REFERENCES)
    fid_reference_dir: Optional[str] = setting(
        None, "Image folder of FID reference images. Default: the --fid_reference split: "
        "--image_dir itself (train) or the 'test' folder beside it (test), else that split of "
        "tfds cifar10.", "evaluation")
    inception_weights: Optional[str] = setting(
        None, "Local InceptionV3 ImageNet weights file (include_top=False, e.g. "
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5). Default: downloaded by "
        "Keras on first use.", "evaluation")
    standing_stats: int = setting(
        16, "Before sampling, FID and export, recompute the EMA generator's batch-norm "
        "statistics over this many batches of its own samples in training mode (BigGAN's "
        "standing statistics; 0: use the live G's statistics).", "evaluation", minimum=0,
        off_at_zero=True, requires="ema_decay")
    fid_cache_dir: str = setting(CACHE_DIR,
                                 "Where reference statistics are cached and the standard FID "
                                 "network's weights are kept.", "evaluation")
    # Quality metrics of the reference classifier (python -m tfgan_cifar.classifier); not D's
    # class head (--class_head).
    reference_classifier: Optional[str] = setting(
        None, "Reference classifier (.keras from `python -m tfgan_cifar.classifier`, or the "
        "folder holding classifier_cifar10.keras): adds class accuracy and coverage, "
        "FD_classifier and precision/recall in its features to each evaluation; needs no "
        "Inception weights. Also --classifier.", "evaluation", aliases=("classifier",))

    def resolved(self):
        """Returns a copy with every `None` replaced by the model default, validated."""
        if self.model not in MODEL_DEFAULTS:
            raise UserError(f"unknown --model={self.model}; choose one of {sorted(MODEL_DEFAULTS)}")
        filled = {k: v for k, v in MODEL_DEFAULTS[self.model].items() if getattr(self, k) is None}
        if self.workdir is None:
            filled["workdir"] = os.path.join("logs", self.model)
        if self.g_batch_size is None:
            filled["g_batch_size"] = filled.get("batch_size", self.batch_size)
        if self.fid_network is None:
            filled["fid_network"] = default_fid_network(self.fid_cache_dir,
                                                        self.inception_weights)
        known = AUGMENTATIONS.names()  # applied in this order whatever the flag's order
        augment = sorted(set(self.augment),
                         key=lambda name: known.index(name) if name in known else len(known))
        config = dataclasses.replace(
            self, attention_res=tuple(sorted({int(r) for r in self.attention_res})),
            augment=tuple(augment), **filled
        )
        config.validate()
        return config

    def validate(self):
        """Raises UserError with one line naming the flag when a value cannot work."""
        check_settings(self)
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise UserError(f"--{name} must be positive, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise UserError(f"--ema_decay must be in [0, 1) (0 turns it off), got {self.ema_decay}")
        if self.aux_weight < 0:
            raise UserError(f"--aux_weight must be >= 0, got {self.aux_weight}")
        if self.replay_size and self.replay_size < self.batch_size:
            raise UserError(f"--replay_size={self.replay_size} must hold at least one batch "
                            f"(--batch_size={self.batch_size})")
        if self.replay_size and not 0 < self.replay_fraction <= 1:
            raise UserError(f"--replay_fraction must be in (0, 1], got {self.replay_fraction}")
        if self.gp_weight < 0:
            raise UserError(f"--gp_weight must be >= 0, got {self.gp_weight}")
        if self.gp_weight and self.loss != "wasserstein":
            raise UserError(f"--gp_weight is the WGAN-GP penalty: it needs --loss=wasserstein, "
                            f"not --loss={self.loss}")
        if (self.loss == "wasserstein" and not self.gp_weight
                and self.model not in SPECTRAL_NORM_CRITICS):
            raise UserError(f"--loss=wasserstein needs a Lipschitz critic, and {self.model}'s D "
                            "has no spectral norm: add --gp_weight=10, or use --model=sagan")
        self._validate_architecture()
        self._validate_steps_per_call()
        if self.devices and self.distribute != "mirrored":
            raise UserError("--devices needs --distribute=mirrored")
        if self.image_dir and self.data_dir:
            raise UserError("pass either --image_dir or --data_dir, not both")
        if self.fid_network == "standard" and self.inception_weights:
            raise UserError("--inception_weights are Keras's InceptionV3 weights, unused by "
                            "--fid_network=standard: leave one of them out")
        if self.reference_classifier and not os.path.exists(
                os.path.expanduser(self.reference_classifier)):
            raise UserError(f"--reference_classifier={self.reference_classifier} does not "
                            "exist: train one with "
                            "`python -m tfgan_cifar.classifier --image_dir=PATH/train`")

    @property
    def critic_norm(self):
        """Normalisation of DCGAN's D: "layer" under the gradient penalty, which Gulrajani et
        al. define per sample (batch norm would couple the interpolates), else "batch"."""
        return "layer" if self.gp_weight else "batch"

    def _validate_steps_per_call(self):
        k = self.steps_per_call
        for name in CALL_CADENCES:
            value = getattr(self, name)
            if value % k:
                lower, upper = value // k * k, (value // k + 1) * k
                nearest = f"{lower} or {upper}" if lower else f"{upper}"
                raise UserError(f"--{name}={value} is not a multiple of --steps_per_call={k} "
                                f"(steps run {k} per call): pass --{name}={nearest}")

    def _validate_architecture(self):
        if self.model != "sagan" and self.g_spectral_norm:
            raise UserError(f"--g_spectral_norm is SAGAN's: --model={self.model}'s G has no "
                            "spectral norm; leave it out")
        if self.model != "sagan":
            if self.arch is not None:
                raise UserError(f"--arch={self.arch} picks a network of --model=sagan; "
                                f"--model={self.model} has one network: leave --arch out")
            return
        supported = ARCHITECTURE_ATTENTION[self.arch]
        bad = [r for r in self.attention_res if r not in supported]
        if bad:
            others = [name for name in ARCHITECTURES.names()
                      if set(bad) <= set(ARCHITECTURE_ATTENTION[name])]
            listed = ",".join(map(str, bad))
            raise UserError(
                f"--attention_res={listed} is not available with --arch={self.arch}: its G "
                f"and D both have blocks at {' and '.join(map(str, supported))} only (none: "
                f"--attention_res=)" + "".join(f"; --arch={o} takes {listed}" for o in others))

    def to_json(self):
        """The configuration as pretty JSON text."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Reads what `to_json` wrote, ignoring keys this version does not know."""
        values = json.loads(text)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = with_current_names(cls, values)
        values = {k: v for k, v in values.items() if k in fields}
        for name, value in values.items():
            if value_type(fields[name])[0] is tuple and isinstance(value, list):
                values[name] = tuple(value)
        return cls(**values)
