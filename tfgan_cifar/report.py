"""A comparison report of training runs, as Markdown and LaTeX (and a PDF when pdflatex exists).

  python -m tfgan_cifar.report logs/dcgan logs/sagan [...] --out=report [--save_dir=DIR]

Writes `<out>/report.md`, `<out>/report.tex` (compiled to `<out>/report.pdf` by `pdflatex` when
it is installed) and the figures they show under `<out>/images/`:

1. results: per run its best FID (Keras InceptionV3) with the step, KID at that step, the FID
   sample count and the configuration values that differ between the runs;
2. the FID curves of all runs in one figure;
3. the loss curves of each run;
4. an 8x8 grid per run, from the run's best generator (its final one when it was trained
   without FID), else from its newest training grid;
5. one row of samples per class per run, side by side;
6. mean best FID of SAGAN with attention at 32x32 against 16x16, over runs differing only there;
7. the classifier-head curves of the runs that log them.

A run directory is what `train.py --workdir` writes (`config.json`, `metrics.jsonl`,
`samples/`). Its best generator is found under `<save_dir>/<model>/` (`best` or
`best_from_<run>_step<N>`, else `final` or `final_from_<run>_step<N>`) by the run directory
recorded in `best.json`.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tfgan_cifar import run_log
from tfgan_cifar.atomic import replacing, write_text  # noqa: E402
from tfgan_cifar.config import MODEL_DEFAULTS, TrainConfig  # noqa: E402
from tfgan_cifar.errors import UserError  # noqa: E402
from tfgan_cifar.metrics import fid
from tfgan_cifar.viz import grids  # noqa: E402
from tfgan_cifar.viz import curves

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
IMAGES = "images"
# Where files are, not what was trained: left out of the comparison unless nothing else differs.
PATH_FIELDS = ("workdir", "image_dir", "data_dir", "save_dir", "fid_cache_dir",
               "fid_reference_dir", "inception_weights")
# Cadences that change neither the networks nor their training.
BOOKKEEPING_FIELDS = ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints")
# Fields that mean something only in some runs (shown as "–" in the others): {field: test of
# the run's config values}.
APPLIES = {
    "attention_res": lambda values: values.get("model") == "sagan",
    "aux_weight": lambda values: bool(values.get("aux_classifier")),
    "replay_fraction": lambda values: bool(values.get("replay_size")),
}
FID_NAME = "FID (Keras InceptionV3)"
NOT_AVAILABLE = "n/a"


@dataclasses.dataclass
class Run:
    """One run directory, read: its name in the report, config, metrics and best model."""

    name: str
    path: str
    config: TrainConfig
    values: dict  # every config.json value, None defaults resolved
    records: list
    best: Optional[dict]  # the eval record with the lowest FID
    best_dir: Optional[str] = None  # the exported best model of this run, if found
    best_info: Optional[dict] = None
    slug: str = ""


# Reading runs ------------------------------------------------------------------------------


def read_run(path):
    """Reads a run directory (config.json, metrics.jsonl) into a `Run` (named later).

    Raises:
      UserError: `path` is missing, not a folder, or not a run directory.
    """
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist")
    if not os.path.isdir(path):
        raise UserError(f"{path} is not a folder: pass run directories (train.py --workdir)")
    config_file = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_file):
        inside = sorted(d for d in os.listdir(path)
                        if os.path.isfile(os.path.join(path, d, CONFIG_FILE)))
        hint = (f"; it holds the run directories {', '.join(inside)}: pass those" if inside
                else " (train.py --workdir writes one)")
        raise UserError(f"{path} is not a run directory: it has no {CONFIG_FILE}{hint}")
    try:
        with open(config_file) as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        config = TrainConfig.from_json(json.dumps(raw))
    except (OSError, ValueError, TypeError) as error:
        raise UserError(f"{config_file} is not a readable run configuration: {error}") from None
    try:
        config = config.resolved()
    except (UserError, TypeError, ValueError):
        pass  # an older or edited config: show its values as they are
    values = {**raw, **dataclasses.asdict(config)}
    records = run_log.read_metrics(os.path.join(path, METRICS_FILE))
    return Run(name=os.path.basename(os.path.normpath(path)), path=path, config=config,
               values=values, records=records, best=run_log.best_eval(records))


def unique_names(paths):
    """Report names of run directories: the folder name, with as many parent folders as it
    takes to tell runs of the same name apart (and a counter for a folder given twice)."""
    parts = [os.path.normpath(os.path.abspath(p)).split(os.sep) for p in paths]
    names = []
    for mine in parts:
        depth = 1
        while depth < len(mine) and any(
                other != mine and other[-depth:] == mine[-depth:] for other in parts):
            depth += 1
        names.append("/".join(mine[-depth:]))
    counts, seen = {n: names.count(n) for n in names}, {}
    for i, name in enumerate(names):
        if counts[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            names[i] = f"{name} #{seen[name]}"
    return names


def _slug(index, name):
    text = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] or "run"
    return f"run{index + 1:02d}-{text}"


def _training_cwd(run):
    """The folder training ran from, when the recorded workdir is relative and matches."""
    workdir = run.config.workdir
    if not workdir or os.path.isabs(workdir):
        return None
    here = os.path.normpath(os.path.abspath(run.path))
    tail = os.path.normpath(workdir)
    if here == tail or not here.endswith(os.sep + tail):
        return None
    return here[: -len(tail) - 1] or os.sep


def _save_dir_candidates(run, save_dir=None):
    if save_dir:
        return [save_dir]
    recorded = os.path.expanduser(run.config.save_dir or "saved_models")
    if os.path.isabs(recorded):
        return [recorded]
    roots = [_training_cwd(run), os.getcwd(), os.path.dirname(os.path.abspath(run.path))]
    return [os.path.join(root, recorded) for root in roots if root]


def _read_best_info(directory):
    try:
        with open(os.path.join(directory, "best.json")) as f:
            info = json.load(f)
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


def find_best_model(run, save_dir=None):
    """The exported best model of `run`, else its final one: (directory, best.json contents),
    or (None, None).

    Looks in `save_dir` if given, else in the run's recorded save_dir taken as absolute or
    relative to the folder training ran from, the current folder and the run's parent, at
    `<save_dir>/<model>/best` and `best_from_*`, and picks the one whose best.json names this
    run directory. A moved run directory is matched by its best step and FID instead. A run
    trained without FID has no best model: its `final` (or `final_from_*`) generator is used.
    """
    found = _find_exported(run, save_dir, "best")
    return found if found[0] is not None else _find_exported(run, save_dir, "final")


def _find_exported(run, save_dir, kind):
    here = os.path.realpath(run.path)
    fallback = (None, None)
    seen = set()
    for root in _save_dir_candidates(run, save_dir):
        folder = os.path.join(root, run.config.model)
        if not os.path.isdir(folder) or os.path.realpath(folder) in seen:
            continue
        seen.add(os.path.realpath(folder))
        names = sorted(n for n in os.listdir(folder)
                       if n == kind or (n.startswith(f"{kind}_from_") and ".tmp" not in n))
        for name in names:
            directory = os.path.join(folder, name)
            info = _read_best_info(directory)
            if not info:
                continue
            workdir = info.get("workdir")
            if workdir and os.path.realpath(os.path.join(root, workdir)) == here:
                return directory, info
            if (kind == "best" and fallback[0] is None and run.best is not None
                    and info.get("step") == run.best["step"] and info.get("fid") == run.best["fid"]
                    and os.path.basename(str(workdir)) == os.path.basename(here)):
                fallback = (directory, info)
    return fallback


# Formatting --------------------------------------------------------------------------------


def format_fid(value, sign=False):
    """FID as the report writes it (see `fid.format_fid`), n/a when missing."""
    return NOT_AVAILABLE if value is None else fid.format_fid(value, sign)


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


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "±": r"$\pm$",
    "×": r"$\times$", "–": "--", "−": "$-$", "…": r"\ldots{}",
    "/": r"/\allowbreak{}",  # long paths may break after a slash instead of running over
}


def latex_escape(text):
    """`text` with LaTeX's special characters escaped, safe inside a paragraph or a cell.

    "--" stays two hyphens (as in --flag) rather than becoming an en dash.
    """
    text = str(text)
    return "".join("-{}" if c == "-" and text[i + 1:i + 2] == "-" else _LATEX_SPECIAL.get(c, c)
                   for i, c in enumerate(text))


def markdown_escape(text):
    """`text` safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


# The content, independent of the output format ---------------------------------------------


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


def results_table(runs):
    """(header, rows) of the results table: plain text cells, one row per run."""
    diffs = differing_fields(runs)
    header = ["run", "model", f"best {FID_NAME}", "at step", "KID ± std at that step",
              "FID samples", *diffs]
    rows = []
    for run in runs:
        best = run.best
        if best is None:
            metrics = [NOT_AVAILABLE] * 4
        else:
            metrics = [format_fid(best["fid"]), str(best["step"]),
                       format_kid(best.get("kid"), best.get("kid_std")),
                       str(best.get("num_samples", NOT_AVAILABLE))]
        rows.append([run.name, run.config.model, *metrics,
                     *(format_value(_shown(run, n)) for n in diffs)])
    return header, rows


def _reference_text(runs):
    refs = {r.get("reference") for run in runs for r in run.records
            if r.get("kind") == "eval" and r.get("reference")}
    if not refs:
        return "the CIFAR-10 test split"
    texts = []
    for ref in sorted(refs):
        kind, _, where = ref.partition(":")
        texts.append("the CIFAR-10 test split (tensorflow-datasets)" if kind == "tfds"
                     else f"the image folder {where}" if kind == "folder" else ref)
    return " and ".join(texts)


def _weights_text(runs):
    """Which InceptionV3 weights the scores come from: they decide what an FID means."""
    runs = [run for run in runs if run.best is not None]  # a run without FID used none
    if not runs:
        return "No run has an FID evaluation."
    files = sorted({run.config.inception_weights for run in runs if run.config.inception_weights})
    sentence = ("InceptionV3 weights: the ImageNet release downloaded by Keras"
                if not files else "InceptionV3 weights: " + ", ".join(files))
    if files and any(run.config.inception_weights is None for run in runs):
        sentence += " (and the Keras ImageNet download for the other runs)"
    return sentence + "."


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


# Figures -----------------------------------------------------------------------------------


def _copy_png(source, target):
    """Copies a PNG atomically (verifying it is one) and returns the target."""
    from PIL import Image

    with Image.open(source) as image:
        image.verify()
    with open(source, "rb") as src, replacing(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def newest_sample_grid(run):
    """(path, step) of the newest samples/step_NNNNNN.png of a run, or (None, None)."""
    folder = os.path.join(run.path, "samples")
    if not os.path.isdir(folder):
        return None, None
    steps = []
    for name in os.listdir(folder):
        match = re.fullmatch(r"step_(\d+)\.png", name)
        if match:
            steps.append((int(match.group(1)), name))
    if not steps:
        return None, None
    step, name = max(steps)
    return os.path.join(folder, name), step


def _model_config(run):
    """The config the best model was trained with (best.json's), else the run's."""
    recorded = (run.best_info or {}).get("config")
    if isinstance(recorded, dict):
        try:
            return TrainConfig.from_json(json.dumps(recorded)).resolved()
        except (UserError, TypeError, ValueError):
            pass
    return run.config


def _describe_best(run):
    info = run.best_info or {}
    where = os.path.relpath(run.best_dir)
    where = run.best_dir if where.startswith("..") else where
    parts = [f"{'final' if info.get('final') else 'best'} generator {where}"]
    if "step" in info:
        parts.append(f"step {info['step']}")
    if info.get("fid") is not None:
        parts.append(f"FID {format_fid(info['fid'])}")
    return ", ".join(parts)


def best_model_figures(run, images_dir, seed=0, per_class=10):
    """The 8x8 grid and the per-class rows from the run's best generator, as PNGs.

    Labels of the grid cycle through the classes. The per-class rows come from
    `evaluate_model.class_rows`: one row per label for conditional models, sorted by the
    classifier head (`evaluate_model.load_classifier`) for unconditional ones that have it,
    unsorted samples otherwise.

    Returns:
      {"grid": (path, caption), "classes": (path, caption)}.
    """
    from tfgan_cifar import evaluate_model, export

    sample, z_dim = export.load_sampler(run.best_dir)
    config = _model_config(run)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((64, z_dim)).astype(np.float32)
    labels = (np.arange(64) % config.num_classes).astype(np.int32)
    grid = grids.image_grid(sample(z, labels), 8, 8)
    figures = {"grid": (grids.save_png(grid, os.path.join(images_dir, f"{run.slug}-grid.png"),
                                     scale=2), _describe_best(run))}
    try:
        classifier = evaluate_model.load_classifier(run.best_dir)
        images, row_labels = evaluate_model.class_rows(
            sample, z_dim, config, np.random.default_rng(seed), classifier=classifier,
            per_class=per_class)
        picture = grids.labelled_rows(images, config.num_classes, per_class, row_labels)
    except Exception as error:  # keep the grid when only the per-class rows fail
        _warn(f"could not draw the per-class rows of {run.name}", error)
        figures["classes"] = (None, "the per-class rows could not be drawn")
        return figures
    how = ("one row per label" if config.conditional else
           "rows sorted by the classifier head" if classifier is not None else
           "unconditional without a classifier head: unsorted samples")
    figures["classes"] = (
        grids.save_png(picture, os.path.join(images_dir, f"{run.slug}-classes.png")), how)
    return figures


def _warn(what, error):
    last = str(error).strip().splitlines()[-1:] or [type(error).__name__]
    print(f"warning: {what}: {last[0]}", file=sys.stderr, flush=True)


def sample_figures(run, images_dir, seed=0, per_class=10):
    """The 8x8 grid and the per-class rows of a run as PNGs in `images_dir`.

    From the best generator when it is found and works (see `best_model_figures`); else the
    grid is the newest `samples/step_*.png` of the run and there are no per-class rows.

    Returns:
      {"grid": (path or None, caption), "classes": (path or None, caption)}.
    """
    why = "no best model found"
    if run.best_dir:
        try:
            return best_model_figures(run, images_dir, seed=seed, per_class=per_class)
        except Exception as error:  # a broken or foreign export should not stop the report
            _warn(f"could not sample the best model of {run.name} at {run.best_dir}", error)
            why = "the best model could not be sampled"
    figures = {"classes": (None, f"needs the best model: {why}")}
    source, step = newest_sample_grid(run)
    if source:
        path = _copy_png(source, os.path.join(images_dir, f"{run.slug}-grid.png"))
        figures["grid"] = (path, f"training grid of step {step} ({why})")
    else:
        figures["grid"] = (None, f"{why} and no sample grid")
    return figures


# Writers -----------------------------------------------------------------------------------


def _md_table(header, rows):
    lines = ["| " + " | ".join(markdown_escape(h) for h in header) + " |",
             "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(markdown_escape(c) for c in row) + " |" for row in rows]
    return lines


def _md_images(items, per_row):
    """Images side by side: a table per `per_row` items; items are (title, path, caption)."""
    lines = []
    for start in range(0, len(items), per_row):
        chunk = items[start:start + per_row]
        lines += ["| " + " | ".join(markdown_escape(t) for t, _, _ in chunk) + " |",
                  "|" + "|".join(" :---: " for _ in chunk) + "|",
                  "| " + " | ".join(f"![{os.path.splitext(os.path.basename(p))[0]}]({p})"
                                    if p else "(none)" for _, p, _ in chunk) + " |",
                  "| " + " | ".join(markdown_escape(c) for _, _, c in chunk) + " |", ""]
    return lines


def _tex_table(header, rows, align):
    # about 100 characters of \small text fit the line: shrink wider tables to fit
    wide = sum(max(len(str(c)) + 2 for c in column) for column in zip(header, *rows)) > 100
    lines = [r"\begin{table}[H]", r"\centering", r"\small"]
    if wide:
        lines.append(r"\resizebox{\linewidth}{!}{%")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule",
              " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}" + ("}" if wide else ""), r"\end{table}"]
    return lines


def _tex_images(items, per_row):
    """One figure per row of images, so that rows can go to the next page; no image is taller
    than 40% of the page, so that a row and its captions always fit on one."""
    width = 0.96 / per_row
    lines = []
    for start in range(0, len(items), per_row):
        lines += [r"\begin{figure}[H]", r"\centering"]
        for title, path, caption in items[start:start + per_row]:
            lines.append(rf"\begin{{minipage}}[t]{{{width:.2f}\linewidth}}\centering")
            if path:
                lines.append(r"\includegraphics[width=\linewidth,height=0.4\textheight,"
                             rf"keepaspectratio]{{{path}}}\\")
            lines.append(rf"\small\textbf{{{latex_escape(title)}}}: {latex_escape(caption)}")
            lines.append(r"\end{minipage}\hfill")
        lines.append(r"\end{figure}")
    return lines


class _Document:
    """Builds report.md and report.tex side by side, section by section."""

    def __init__(self):
        self.md, self.tex = [], []

    def section(self, title):
        self.md += [f"## {title}", ""]
        self.tex += [rf"\section{{{latex_escape(title)}}}", ""]

    def paragraph(self, text):
        self.md += [text, ""]
        self.tex += [latex_escape(text), ""]

    def bullets(self, items):
        self.md += [f"- {item}" for item in items] + [""]
        self.tex += [r"\begin{itemize}"] + [rf"\item {latex_escape(i)}" for i in items]
        self.tex += [r"\end{itemize}", ""]

    def table(self, header, rows, align=None):
        self.md += _md_table(header, rows) + [""]
        self.tex += _tex_table(header, rows, align or "l" * len(header)) + [""]

    def images(self, items, per_row):
        self.md += _md_images(items, per_row)
        self.tex += _tex_images(items, per_row) + [""]


_TEX_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\usepackage[margin=2cm]{geometry}
\usepackage{graphicx}
\usepackage{booktabs}
\usepackage{float}
\title{%s}
\date{}
\begin{document}
\maketitle
"""


def _rel(path, out):
    return os.path.relpath(path, out).replace(os.sep, "/") if path else None


def build_report(run_dirs, out, save_dir=None, seed=0, per_class=10):
    """Writes `<out>/report.md`, `<out>/report.tex` and `<out>/images/`; returns their paths.

    Args:
      run_dirs: run directories (train.py --workdir).
      out: the output folder (created).
      save_dir: where to look for the exported best models instead of each run's save_dir.
      seed: seed of the noise of the sample figures.
      per_class: samples per row in the per-class figure.

    Returns:
      {"markdown": path, "latex": path, "pdf": path or None}.

    Raises:
      UserError: a folder is not a run directory, or `out` cannot be a folder.
    """
    if not run_dirs:
        raise UserError("give at least one run directory")
    unique = []
    for path in run_dirs:
        if os.path.realpath(path) not in {os.path.realpath(p) for p in unique}:
            unique.append(path)
    runs = [read_run(path) for path in unique]
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out={out} exists and is not a folder")
    for index, (run, name) in enumerate(zip(runs, unique_names(unique))):
        run.name, run.slug = name, _slug(index, name)
        run.best_dir, run.best_info = find_best_model(run, save_dir)
    images_dir = os.path.join(out, IMAGES)
    os.makedirs(images_dir, exist_ok=True)
    doc = _Document()
    models = sorted({run.config.model for run in runs})
    title = f"{' and '.join(m.upper() for m in models)} on CIFAR-10: {len(runs)} runs compared"

    doc.paragraph(
        f"This report compares {len(runs)} training run{'s' * (len(runs) > 1)}: "
        f"{', '.join(run.name for run in runs)}. Scores are {FID_NAME} and KID against "
        f"{_reference_text(runs)}, lower is better; each is computed on the number of "
        "generated images given in the table. They are not comparable with the FIDs of "
        "papers, which use the 2015 TF Inception graph and usually 50k samples against the "
        f"training set. {_weights_text(runs)}")
    doc.bullets([f"{run.name}: {run.path}" for run in runs])

    # 1. Results.
    doc.section("Results")
    header, rows = results_table(runs)
    doc.table(header, rows, align="ll" + "r" * 4 + "l" * (len(header) - 6))
    notes = [f"best FID: the lowest {FID_NAME} of the run's evaluations; KID is the one "
             "measured at that step"]
    if any(run.best is None for run in runs):
        notes.append(f"{NOT_AVAILABLE}: the run has no FID evaluation in its metrics.jsonl")
    by_model = model_default_fields(runs)
    if by_model:
        notes.append("each model's default recipe (so not in the table): " + "; ".join(
            f"{model}: " + ", ".join(f"{k}={format_value(v)}" for k, v in values.items())
            for model, values in by_model.items()))
    shared = shared_fields(runs)
    if shared:
        notes.append("settings shared by all runs: " + ", ".join(
            f"{k}={format_value(v)}" for k, v in shared.items()))
    doc.bullets(notes)

    # 2. FID curves.
    doc.section("FID during training")
    path = os.path.join(images_dir, "fid-curves.png")
    if curves.plot_fid_curves({run.name: run.records for run in runs}, path):
        doc.images([("all runs", _rel(path, out), "FID against training step; dots mark each "
                     "run's best")], per_row=1)
    else:
        doc.paragraph("No run has an FID evaluation (train with --eval_every > 0).")

    # 3. Losses.
    doc.section("Losses")
    items = []
    for run in runs:
        path = os.path.join(images_dir, f"{run.slug}-losses.png")
        written = curves.plot_losses(run.records, path)
        items.append((run.name, _rel(path, out) if written else None,
                      "G and D loss, D accuracy on real and fake" if written
                      else "no training records"))
    doc.images(items, per_row=2)

    # 4 and 5. Samples.
    figures = {}
    for run in runs:
        figures[run.name] = sample_figures(run, images_dir, seed=seed, per_class=per_class)
    doc.section("Samples")
    doc.paragraph("An 8×8 grid per run: from its best generator (the final one for a run "
                  "trained without FID; labels cycling through the classes) when it was found, "
                  "else the newest grid written during training.")
    doc.images([(run.name, _rel(figures[run.name]["grid"][0], out), figures[run.name]["grid"][1])
                for run in runs], per_row=3)
    doc.section("Samples per class")
    doc.paragraph(f"{per_class} samples per row from each run's best (or final) generator. "
                  "Conditional models get one row per label; unconditional ones are sorted "
                  "into rows by their classifier head when they have one, else the rows are "
                  "plain samples.")
    doc.images([(run.name, _rel(figures[run.name]["classes"][0], out),
                 figures[run.name]["classes"][1]) for run in runs], per_row=3)

    # 6. Attention position.
    doc.section("Attention at 32×32 against 16×16")
    groups = attention_groups(runs)
    if groups:
        doc.paragraph("Mean best FID of SAGAN runs that differ only in attention_res (and "
                      "seed); n is the number of runs averaged.")
        header, rows = attention_table(groups)
        doc.table(header, rows, align="lrrrl")
    else:
        doc.paragraph("No SAGAN runs with an FID evaluation differ only in attention_res "
                      "(16 against 32), so attention positions cannot be compared here.")

    # 7. Classifier head.
    items = []
    for run in runs:
        path = os.path.join(images_dir, f"{run.slug}-classifier.png")
        if curves.plot_classifier(run.records, path):
            items.append((run.name, _rel(path, out), "loss and accuracy on training images "
                          "and the test split"))
    if items:
        doc.section("Classifier head")
        doc.paragraph("Loss and accuracy of the discriminator's class head (--aux_classifier) "
                      "at each evaluation, on training images and on the test split (both "
                      "scored in inference mode), for the runs that have one.")
        doc.images(items, per_row=2)

    markdown = os.path.join(out, "report.md")
    latex = os.path.join(out, "report.tex")
    write_text(markdown, "\n".join([f"# {title}", ""] + doc.md).rstrip() + "\n")
    write_text(latex, _TEX_PREAMBLE % latex_escape(title) + "\n".join(doc.tex)
                 + "\n\\end{document}\n")
    return {"markdown": markdown, "latex": latex, "pdf": compile_pdf(latex)}


def compile_pdf(latex):
    """Runs pdflatex on `latex` if it is installed; returns the PDF's path or None.

    Prints one line when pdflatex is missing or fails.
    """
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        print(f"pdflatex not found: wrote {latex} without a PDF (compile it with pdflatex)",
              flush=True)
        return None
    folder, name = os.path.split(os.path.abspath(latex))
    try:
        result = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", name],
                                cwd=folder, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        result = None
    pdf = os.path.join(folder, os.path.splitext(name)[0] + ".pdf")
    if result is None or result.returncode != 0 or not os.path.exists(pdf):
        log = os.path.splitext(latex)[0] + ".log"
        print(f"pdflatex failed on {latex} (see {log}): no PDF written", flush=True)
        return None
    for extension in (".aux", ".log"):  # pdflatex's side files, kept only when it fails
        with contextlib.suppress(OSError):
            os.remove(os.path.splitext(pdf)[0] + extension)
    return pdf


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"error: {message} (see --help)", file=sys.stderr, flush=True)
        sys.exit(2)


def main(argv=None):
    """Command line: `python -m tfgan_cifar.report RUN_DIR [RUN_DIR ...] --out=report`."""
    parser = _Parser(prog="python -m tfgan_cifar.report", description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories (train.py --workdir)")
    parser.add_argument("--out", default="report", help="output folder (default: report)")
    parser.add_argument("--save_dir", default=None, help="where the best models were exported "
                        "(default: each run's --save_dir, relative to where it was trained)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample figures' noise")
    parser.add_argument("--per_class", type=int, default=10,
                        help="samples per row of the per-class figure")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error(f"--per_class must be at least 1, got {args.per_class}")
    # As cli.run_or_exit, without importing Keras just to report a bad argument.
    try:
        written = build_report(args.run_dirs, args.out, args.save_dir, args.seed, args.per_class)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    print("wrote " + ", ".join(p for p in written.values() if p), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
