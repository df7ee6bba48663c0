"""The report's tables: results, attention positions, and the config fields they show."""

import json

import numpy as np

from tfgan_cifar.config import MODEL_DEFAULTS
from tfgan_cifar import metric_schema
from tfgan_cifar.metric_schema import FID_NAME
from tfgan_cifar.run_dir import best_eval

# Where files are, not what was trained: left out of the comparison unless nothing else differs.
PATH_FIELDS = ("workdir", "image_dir", "data_dir", "save_dir", "fid_cache_dir",
               "fid_reference_dir", "inception_weights", "reference_classifier")
# Cadences that change neither the networks nor their training.
BOOKKEEPING_FIELDS = ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints")
# Fields that mean something only in some runs (shown as "–" in the others): {field: test of
# the run's config values}.
APPLIES = {
    "arch": lambda values: values.get("model") == "sagan",
    "attention_res": lambda values: values.get("model") == "sagan",
    "aux_weight": lambda values: bool(values.get("class_head")),
    "replay_fraction": lambda values: bool(values.get("replay_size")),
}
NOT_AVAILABLE = "n/a"


# Formatting --------------------------------------------------------------------------------


def format_fid(value, sign=False):
    """FID as the report writes it (see `metric_schema.format_fid`), n/a when missing."""
    return NOT_AVAILABLE if value is None else metric_schema.format_fid(value, sign)


def format_kid(value, std=None):
    """KID (and its standard error) as the report writes it: four decimals, or exponents for
    values below 0.001."""
    if value is None:
        return NOT_AVAILABLE

    def number(x):  # the value's format for both numbers: "0.0457 ± 0.0004"
        return f"{x:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{x:.2e}"

    return number(value) + (f" ± {number(std)}" if std is not None else "")


def format_value(value):
    """A config value for a table cell: tuples as "16,32", floats without trailing zeros."""
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value) or "()"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# Config fields -----------------------------------------------------------------------------


def _varying(runs, name):
    return len({json.dumps(_shown(run, name), sort_keys=True, default=str)
                for run in runs}) > 1


def model_default_fields(runs):
    """Fields that differ between the runs only as the models' default recipes do.

    Returns:
      {model: {field: value}}: the fields where every run has its model's default
      (config.MODEL_DEFAULTS) and the runs still differ, because their models do.
    """
    names = sorted({k for run in runs for k in run.values} & {
        k for defaults in MODEL_DEFAULTS.values() for k in defaults})
    fields = [n for n in names if _varying(runs, n) and all(
        n in MODEL_DEFAULTS.get(run.config.model, {})
        and _shown(run, n) == MODEL_DEFAULTS[run.config.model][n] for run in runs)]
    models = sorted({run.config.model for run in runs})
    return {m: {n: MODEL_DEFAULTS[m][n] for n in fields} for m in models} if fields else {}


def differing_fields(runs):
    """Config fields whose values differ between the runs, paths only if nothing else does.

    `model` is left out (it has its own column), and so are the fields that differ only as
    the models' defaults do (see `model_default_fields`).
    """
    names = sorted({k for run in runs for k in run.values} - {"model"})
    by_model = {n for defaults in model_default_fields(runs).values() for n in defaults}
    varying = [n for n in names if _varying(runs, n) and n not in by_model]
    content = [n for n in varying if n not in PATH_FIELDS]
    if content or len({run.config.model for run in runs}) > 1:
        return content
    return varying  # otherwise identical runs: where they differ is all there is to show


def shared_fields(runs):
    """{field: value} of the non-path config fields that all runs share (and that apply)."""
    names = sorted({k for run in runs for k in run.values} - {"model"})
    shared = {}
    for name in names:
        if name in PATH_FIELDS or name in BOOKKEEPING_FIELDS:
            continue
        shown = {json.dumps(_shown(run, name), sort_keys=True, default=str) for run in runs}
        value = _shown(runs[0], name)
        if len(shown) == 1 and value != "–" and name in runs[0].values:
            shared[name] = value
    return shared


def _shown(run, name):
    """A config value of the run as the tables show it: "–" where it does not apply."""
    applies = APPLIES.get(name)
    if applies is not None and not applies(run.values):
        return "–"
    return run.values.get(name, "–")


# Tables ------------------------------------------------------------------------------------


def _cell(record, key):
    """A metric of a record as its schema formats it, n/a when missing."""
    if record is None or record.get(key) is None:
        return NOT_AVAILABLE
    return metric_schema.formatted(record, key)


def _pair(record, first, second):
    if record is None or record.get(first) is None:
        return NOT_AVAILABLE
    return f"{_cell(record, first)} / {_cell(record, second)}"


def quality_columns(runs):
    """The quality-metric columns the runs have data for: [(header, run -> cell)].

    Precision / recall in Inception features are taken at the best-FID step; the reference
    classifier's metrics at the step of the lowest FD_classifier.
    """
    def has(key):
        return any(r.get(key) is not None for run in runs for r in run.records
                   if r.get("kind") == "eval")

    columns = []
    if has("precision"):
        columns.append(("precision / recall (Inception) at best FID",
                        lambda run: _pair(run.best, "precision", "recall")))
    if has("fd_classifier"):
        def quality_best(run):
            return best_eval(run.records, "fd_classifier")

        def step(run):
            best = quality_best(run)
            return NOT_AVAILABLE if best is None else str(best["step"])

        columns += [
            ("best FD_classifier", lambda run: _cell(quality_best(run), "fd_classifier")),
            ("at step", step),
            ("class accuracy", lambda run: _cell(quality_best(run), "class_acc")),
            ("class KL", lambda run: _cell(quality_best(run), "class_kl")),
            ("precision / recall (classifier)",
             lambda run: _pair(quality_best(run), "precision_clf", "recall_clf")),
        ]
    return columns


def results_table(runs):
    """(header, rows) of the results table: plain text cells, one row per run. Quality
    metrics (`quality_columns`) follow the FID columns when some run has them."""
    diffs = differing_fields(runs)
    quality = quality_columns(runs)
    header = ["run", "model", f"best {FID_NAME}", "at step", "KID ± std at that step",
              "FID samples", "FID network", "reference split",
              *(name for name, _ in quality), *diffs]
    rows = []
    for run in runs:
        best = run.best
        if best is None:
            metrics = [NOT_AVAILABLE] * 6
        else:
            metrics = [format_fid(best["fid"]), str(best["step"]),
                       format_kid(best.get("kid"), best.get("kid_std")),
                       str(best.get("num_samples", NOT_AVAILABLE)),
                       best.get("fid_network", "keras"), best.get("reference_split", "test")]
        rows.append([run.name, run.config.model, *metrics, *(cell(run) for _, cell in quality),
                     *(format_value(_shown(run, n)) for n in diffs)])
    return header, rows


def attention_groups(runs):
    """Groups of SAGAN runs that differ only in attention_res (and seed and paths).

    Returns:
      A list of dicts, one per group holding FID-evaluated runs at both (16,) and (32,):
      {"settings": {field: value} distinguishing the group from the other groups,
       "at32": [runs], "at16": [runs], "mean32", "mean16", "difference" (32 minus 16)}.
    """
    ignored = set(PATH_FIELDS) | set(BOOKKEEPING_FIELDS) | {"attention_res", "seed"}
    groups = {}
    for run in runs:
        if run.config.model != "sagan" or run.best is None:
            continue
        key = json.dumps({k: v for k, v in run.values.items() if k not in ignored},
                         sort_keys=True, default=str)
        groups.setdefault(key, []).append(run)
    found = []
    for key, members in groups.items():
        at32 = [r for r in members if tuple(r.config.attention_res) == (32,)]
        at16 = [r for r in members if tuple(r.config.attention_res) == (16,)]
        if at32 and at16:
            mean32 = float(np.mean([r.best["fid"] for r in at32]))
            mean16 = float(np.mean([r.best["fid"] for r in at16]))
            found.append({"key": json.loads(key), "at32": at32, "at16": at16, "mean32": mean32,
                          "mean16": mean16, "difference": mean32 - mean16})
    keys = sorted({k for g in found for k in g["key"]})
    varying = [k for k in keys if len({json.dumps(g["key"].get(k), default=str)
                                       for g in found}) > 1]
    for group in found:
        group["settings"] = {k: group["key"].get(k) for k in varying}
    return found


def attention_table(groups):
    """(header, rows) of the attention comparison: plain text cells, one row per group."""
    header = ["settings", "attention 32×32: mean best FID (n)",
              "attention 16×16: mean best FID (n)", "difference (32 − 16)", "runs"]
    rows = []
    for group in groups:
        settings = ", ".join(f"{k}={format_value(v)}" for k, v in group["settings"].items())
        rows.append([settings or "all other settings equal",
                     f"{format_fid(group['mean32'])} (n={len(group['at32'])})",
                     f"{format_fid(group['mean16'])} (n={len(group['at16'])})",
                     format_fid(group["difference"], sign=True),
                     ", ".join(r.name for r in group["at32"] + group["at16"])])
    return header, rows
