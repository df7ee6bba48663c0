"""The training configuration: one frozen dataclass, resolved against per-model defaults."""

import dataclasses
import json
import os
from typing import Optional

from tfgan_cifar.errors import UserError

# Values a field takes when left as None, per model: the recipes of the DCGAN and SAGAN papers.
MODEL_DEFAULTS = {
    "dcgan": dict(
        conditional=False, loss="bce", n_critic=1, lr_g=2e-4, lr_d=2e-4, beta1=0.5,
        beta2=0.999, z_dim=100, width=32, batch_size=128,
    ),
    "sagan": dict(
        conditional=True, loss="hinge", n_critic=1, lr_g=1e-4, lr_d=4e-4, beta1=0.0,
        beta2=0.9, z_dim=128, width=64, batch_size=64,
    ),
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. `None` means "the model's default"."""

    model: str = "dcgan"
    workdir: Optional[str] = None
    steps: int = 20000
    batch_size: Optional[int] = None
    seed: int = 0
    # Data.
    image_dir: Optional[str] = None
    data_dir: Optional[str] = None
    flip: bool = True
    num_classes: int = 10
    # Architecture.
    conditional: Optional[bool] = None
    z_dim: Optional[int] = None
    width: Optional[int] = None
    attention_res: tuple = (16,)
    # Objective and optimisation.
    loss: Optional[str] = None
    optimizer: str = "adam"
    n_critic: Optional[int] = None
    lr_g: Optional[float] = None
    lr_d: Optional[float] = None
    beta1: Optional[float] = None
    beta2: Optional[float] = None
    jit_compile: bool = False
    ema_decay: float = 0.0
    # Studies: multi-task D, experience replay, gradient penalty.
    aux_classifier: bool = False
    aux_weight: float = 1.0
    replay_size: int = 0
    replay_fraction: float = 0.5
    gp_weight: float = 0.0
    # Cadences, in generator steps.
    log_every: int = 100
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    # Evaluation (FID and KID against the CIFAR-10 test split) and the best model.
    eval_every: int = 1000
    fid_samples: int = 10000
    fid_reference_dir: Optional[str] = None
    inception_weights: Optional[str] = None
    fid_cache_dir: str = os.path.join("~", ".cache", "tfgan_cifar")
    save_dir: str = "saved_models"

    def resolved(self):
        """Returns a copy with every `None` replaced by the model default, validated."""
        if self.model not in MODEL_DEFAULTS:
            raise UserError(f"unknown --model={self.model}; choose one of {sorted(MODEL_DEFAULTS)}")
        filled = {k: v for k, v in MODEL_DEFAULTS[self.model].items() if getattr(self, k) is None}
        if self.workdir is None:
            filled["workdir"] = os.path.join("logs", self.model)
        config = dataclasses.replace(
            self, attention_res=tuple(sorted({int(r) for r in self.attention_res})), **filled
        )
        config.validate()
        return config

    def validate(self):
        """Raises UserError with one line naming the flag when a value cannot work."""
        positive = ("steps", "batch_size", "n_critic", "z_dim", "width", "log_every",
                    "num_classes", "keep_checkpoints")
        for name in positive:
            if getattr(self, name) < 1:
                raise UserError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.fid_samples < 2:
            raise UserError(f"--fid_samples must be at least 2, got {self.fid_samples}")
        for name in ("sample_every", "checkpoint_every", "eval_every"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name} must be >= 0 (0 turns it off), got {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise UserError(f"--{name} must be positive, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise UserError(f"--ema_decay must be in [0, 1) (0 turns it off), got {self.ema_decay}")
        if self.optimizer not in ("adam", "rmsprop", "sgd"):
            raise UserError(f"--optimizer must be adam, rmsprop or sgd, got {self.optimizer}")
        if self.aux_weight < 0:
            raise UserError(f"--aux_weight must be >= 0, got {self.aux_weight}")
        if self.replay_size < 0:
            raise UserError(f"--replay_size must be >= 0 (0 turns replay off), got "
                            f"{self.replay_size}")
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
        bad = [r for r in self.attention_res if r not in (16, 32)]
        if bad:
            raise UserError(f"--attention_res takes 16, 32 or both (16,32), got {bad}")
        if self.image_dir and self.data_dir:
            raise UserError("pass either --image_dir or --data_dir, not both")

    def to_json(self):
        """The configuration as pretty JSON text."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Reads what `to_json` wrote, ignoring keys this version does not know."""
        values = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in names}
        if "attention_res" in values:
            values["attention_res"] = tuple(values["attention_res"])
        return cls(**values)
