"""Every value the package logs, declared once.

A `Metric` says what a field of `metrics.jsonl` is: the record that holds it ("train": every
--log_every steps; "eval": every --eval_every steps, and evaluate.py's metrics.json), its
TensorBoard tag, how it is shown, whether lower is better, whether it is copied into best.json,
the figure panel that draws it and, for a score, the fields that say how it was measured (its
protocol: sample count, reference...). The training step (`step_metric_names`), the loop's
progress line and TensorBoard scalars, the evaluation hook, evaluate.py, the curves and the
report's tables all read this table; a new metric is one entry here plus the code that
computes it.
"""

import dataclasses
from typing import Callable, Optional, Tuple, Union

# What an FID is called, by --fid_network: the standard network's is the FID of papers.
FID_LABELS = {"standard": "FID", "keras": "FID (Keras InceptionV3)"}
FID_NAME = "FID"
# The scores that pick the best model, in order of preference: the first one an evaluation has.
BEST_MODEL_BY = ("fid", "fd_classifier")


def _always(config):
    return True


def fid_label(network):
    """What an FID of `network` is called ("keras" for records from before the choice)."""
    return FID_LABELS.get(network or "keras", f"FID ({network})")


def format_fid(value, sign=False):
    """FID for people: two decimals, three significant digits below 1 (so 2.1e-05, not 0.00)."""
    plus = "+" if sign else ""
    return f"{value:{plus}.2f}" if abs(value) >= 1 or value == 0 else f"{value:{plus}.3g}"


@dataclasses.dataclass(frozen=True)
class Metric:
    """One logged value (see the module docstring)."""

    key: str  # its field in metrics.jsonl; a key ending in "/" names a family ("gamma/...")
    record: str  # "train" or "eval"
    label: str  # its name in lines, tables and figure axes
    fmt: Union[str, Callable] = ".3f"  # format spec of a value, or a function value -> text
    tag: Optional[str] = None  # TensorBoard scalar tag (None: not a scalar there)
    lower_is_better: Optional[bool] = None  # None: not a score
    exported: bool = False  # copied into best.json with the exported model
    # Per-step metrics of the objective: whether a config's step computes it (None: the step
    # does not make it; the loop or an evaluation does).
    in_step: Optional[Callable] = None
    figure: Optional[str] = None  # "losses", "classifier" or "quality" (viz/curves)
    panel: str = ""  # the panel (its y label) of that figure
    legend: str = ""  # the curve's name in that panel
    protocol: Tuple[str, ...] = ()  # the record's fields that say how a score was measured

    def format(self, value):
        """`value` as lines and tables show it."""
        return self.fmt(value) if callable(self.fmt) else format(value, self.fmt)


_FID_PROTOCOL = ("fid_network", "num_samples", "reference", "reference_split",
                 "reference_samples")
_QUALITY_PROTOCOL = ("classifier_samples", "reference")
_PRDC = ("precision", "recall", "density", "coverage")

METRICS = (
    # ---- training records: the step's metrics (objective.py), then the loop's ------------
    Metric("g_loss", "train", "g_loss", tag="loss/generator", in_step=_always,
           figure="losses", panel="G loss", legend="G"),
    Metric("d_loss", "train", "d_loss", tag="loss/discriminator", in_step=_always,
           figure="losses", panel="D loss", legend="D"),
    Metric("d_real_acc", "train", "D accuracy on real", ".2f", tag="accuracy/d_real",
           in_step=_always,
           figure="losses", panel="D accuracy", legend="on real"),
    Metric("d_fake_acc", "train", "D accuracy on fake", ".2f", tag="accuracy/d_fake",
           in_step=_always,
           figure="losses", panel="D accuracy", legend="on fake"),
    Metric("cls_loss", "train", "cls_loss", tag="loss/classifier",
           in_step=lambda config: bool(config.class_head)),
    Metric("cls_acc", "train", "cls_acc", tag="accuracy/classifier",
           in_step=lambda config: bool(config.class_head)),
    Metric("gp", "train", "gp", tag="loss/gradient_penalty",
           in_step=lambda config: bool(config.gp_weight)),
    Metric("replayed", "train", "replayed", tag="replay/fraction_replayed",
           in_step=lambda config: bool(config.replay_size)),
    Metric("lr_g", "train", "G learning rate", ".3g", tag="learning_rate/generator"),
    Metric("lr_d", "train", "D learning rate", ".3g", tag="learning_rate/discriminator"),
    Metric("gamma/", "train", "attention gain γ", tag="gamma/", figure="losses",
           panel="attention gain γ"),
    Metric("steps_per_sec", "train", "steps/s", ".2f", tag="speed/steps_per_sec"),
    # ---- evaluation records: FID/KID in Inception features (metrics/evaluator) ------------
    Metric("fid", "eval", FID_NAME, format_fid, tag="eval/fid", lower_is_better=True,
           exported=True, protocol=_FID_PROTOCOL),
    Metric("kid", "eval", "KID", ".4f", tag="eval/kid", lower_is_better=True, exported=True,
           protocol=_FID_PROTOCOL),
    Metric("kid_std", "eval", "KID std", ".4f", exported=True),
    Metric("num_samples", "eval", "FID samples", "d", exported=True),
    Metric("reference", "eval", "reference", "s", exported=True),
    Metric("reference_samples", "eval", "reference images", "d"),
    Metric("fid_network", "eval", "FID network", "s", exported=True),
    Metric("reference_split", "eval", "reference split", "s", exported=True),
    # ---- the reference classifier's metrics (--reference_classifier) ---------------------
    Metric("fd_classifier", "eval", "FD_classifier", ".2f", tag="quality/fd_classifier",
           lower_is_better=True, exported=True, figure="quality", panel="FD_classifier",
           legend="reference classifier features", protocol=_QUALITY_PROTOCOL),
    Metric("class_acc", "eval", "class accuracy", tag="quality/class_acc",
           lower_is_better=False, exported=True, figure="quality", panel="class accuracy",
           legend="GAN-test: classified as drawn", protocol=_QUALITY_PROTOCOL),
    Metric("class_acc_per_class", "eval", "class accuracy per class",
           tag="quality/class_acc", lower_is_better=False),
    Metric("class_kl", "eval", "class KL", tag="quality/class_kl", lower_is_better=True,
           exported=True, figure="quality", panel="KL(classes || uniform)",
           legend="predicted classes", protocol=_QUALITY_PROTOCOL),
    Metric("class_distribution", "eval", "share per predicted class"),
    Metric("classifier_samples", "eval", "classifier samples", "d", exported=True),
    # ---- precision, recall, density and coverage in either feature space ------------------
    *(Metric(name, "eval", name, tag=f"eval/{name}", lower_is_better=False,
             figure="quality", panel="PRDC (Inception)", legend=name, protocol=_FID_PROTOCOL)
      for name in _PRDC),
    *(Metric(f"{name}_clf", "eval", name, tag=f"quality/{name}_clf", lower_is_better=False,
             figure="quality", panel="PRDC (classifier)", legend=name,
             protocol=_QUALITY_PROTOCOL)
      for name in _PRDC),
    # ---- D's class head (--class_head) on real images --------------------------------
    *(Metric(f"cls_{split}_{what}", "eval", f"class head {what} ({where})",
             tag=f"eval/cls_{split}_{what}", lower_is_better=what == "loss",
             figure="classifier", panel=f"classifier {'loss' if what == 'loss' else 'accuracy'}",
             legend=where)
      for what in ("loss", "acc")
      for split, where in (("train", "training images"), ("test", "test split"))),
    Metric("seconds", "eval", "seconds", ".0f"),
)
BY_KEY = {metric.key: metric for metric in METRICS}


def lookup(key):
    """The Metric of a record field, family members ("gamma/generator/...") included; None
    for a field that is not a metric (kind, step, selected_by...)."""
    if key in BY_KEY:
        return BY_KEY[key]
    family = key.split("/", 1)[0] + "/"
    return BY_KEY.get(family) if "/" in key else None


def step_metric_names(config):
    """The metrics one training step of `config` computes, in declaration order."""
    return tuple(m.key for m in METRICS if m.in_step is not None and m.in_step(config))


def study_step_metrics():
    """The per-step metrics that only some configs compute (the studies: class head,
    gradient penalty, replay)."""
    return tuple(m for m in METRICS if m.in_step not in (None, _always))


def tensorboard_scalars(record):
    """{tag: value} of the fields of a record that TensorBoard shows; a list value (one per
    class) gives one scalar per index, "<tag>/<index>"."""
    scalars = {}
    for key, value in record.items():
        metric = lookup(key)
        if metric is None or metric.tag is None or value is None:
            continue
        tag = metric.tag + key[len(metric.key):] if metric.key.endswith("/") else metric.tag
        if isinstance(value, (list, tuple)):
            scalars.update({f"{tag}/{index}": item for index, item in enumerate(value)})
        else:
            scalars[tag] = value
    return scalars


def exported_fields(result):
    """The fields of an evaluation result that best.json keeps."""
    return {key: value for key, value in result.items()
            if key in BY_KEY and BY_KEY[key].exported}


def best_model_metric(available):
    """The first of BEST_MODEL_BY in `available` (metric keys), or None."""
    return next((key for key in BEST_MODEL_BY if key in available), None)


def formatted(result, key):
    """A field of a result as lines and tables show it."""
    return BY_KEY[key].format(result[key])


def fid_line(result, images="samples"):
    """FID and KID of an evaluation result in one line: the score, the KID's standard error,
    and what was compared (`images`: what the samples were, e.g. "generated images")."""
    reference = result.get("reference", "?")
    if result.get("reference_samples"):
        reference = f"{result['reference_samples']} images of {reference}"
    return (f"{fid_label(result.get('fid_network'))} {formatted(result, 'fid')}, KID {formatted(result, 'kid')} ± "
            f"{formatted(result, 'kid_std')} ({result['num_samples']} {images} vs "
            f"{reference})")


def quality_line(result):
    """The reference classifier's metrics of an evaluation result in one line."""
    parts = [f"FD_classifier {formatted(result, 'fd_classifier')}"]
    if "class_acc" in result:
        parts.append(f"class accuracy {formatted(result, 'class_acc')}")
    parts.append(f"class KL {formatted(result, 'class_kl')}")
    if "precision_clf" in result:
        parts.append(f"precision {formatted(result, 'precision_clf')}, recall "
                     f"{formatted(result, 'recall_clf')}")
    return ", ".join(parts) + f" ({result['classifier_samples']} samples, reference classifier)"


def figure_panels(figure):
    """[(panel, [(key, legend)])] of a figure, panels in the order their metrics are
    declared."""
    panels = {}
    for metric in METRICS:
        if metric.figure == figure and not metric.key.endswith("/"):
            panels.setdefault(metric.panel, []).append((metric.key, metric.legend))
    return list(panels.items())
