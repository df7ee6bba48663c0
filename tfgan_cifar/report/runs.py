"""Run directories as the report reads them, and the exported models that belong to them."""

import dataclasses
import json
import os
import re
from typing import Optional

from tfgan_cifar import run_log
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


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


def read_runs(run_dirs, save_dir=None):
    """The runs of the report: each folder read once, named, and its best model looked up.

    Args:
      run_dirs: run directories (train.py --workdir); a folder given twice is read once.
      save_dir: where to look for the exported models instead of each run's save_dir.

    Raises:
      UserError: no folder is given, or one is not a run directory.
    """
    if not run_dirs:
        raise UserError("give at least one run directory")
    unique = []
    for path in run_dirs:
        if os.path.realpath(path) not in {os.path.realpath(p) for p in unique}:
            unique.append(path)
    runs = [read_run(path) for path in unique]
    for index, (run, name) in enumerate(zip(runs, unique_names(unique))):
        run.name, run.slug = name, _slug(index, name)
        run.best_dir, run.best_info = find_best_model(run, save_dir)
    return runs


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


def find_best_model(run, save_dir=None):
    """The exported best model of `run`, else its final one: (directory, best.json contents),
    or (None, None).

    A run trained without FID has no best model: its final generator is used.
    """
    return (exported_model(run, "best", save_dir) or exported_model(run, "final", save_dir)
            or (None, None))


def exported_model(run, kind, save_dir=None):
    """The exported `kind` ("best" or "final") model of `run`: (directory, best.json contents),
    or None.

    Looks in `save_dir` if given, else in the run's recorded save_dir taken as absolute or
    relative to the folder training ran from, the current folder and the run's parent, at
    `<save_dir>/<model>/<kind>` and `<kind>_from_*`, and picks the one whose best.json names
    this run directory. A moved run directory's best model is matched by its best step and FID
    instead.
    """
    here = os.path.realpath(run.path)
    fallback = None
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
            if (kind == "best" and fallback is None and run.best is not None
                    and info.get("step") == run.best["step"] and info.get("fid") == run.best["fid"]
                    and os.path.basename(str(workdir)) == os.path.basename(here)):
                fallback = (directory, info)
    return fallback


def _save_dir_candidates(run, save_dir=None):
    if save_dir:
        return [save_dir]
    recorded = os.path.expanduser(run.config.save_dir or "saved_models")
    if os.path.isabs(recorded):
        return [recorded]
    roots = [_training_cwd(run), os.getcwd(), os.path.dirname(os.path.abspath(run.path))]
    return [os.path.join(root, recorded) for root in roots if root]


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


def _read_best_info(directory):
    try:
        with open(os.path.join(directory, "best.json")) as f:
            info = json.load(f)
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None
