"""Run directories as the report reads them, and the exported models that belong to them."""

import dataclasses
import json
import os
import re
from typing import Optional

from tfgan_cifar import export
from tfgan_cifar.config import TrainConfig, with_current_names
from tfgan_cifar.errors import UserError
from tfgan_cifar.run_dir import RunDir, best_eval


@dataclasses.dataclass
class Run:
    """One run directory, read: its name in the report, config, metrics and best model."""

    name: str
    path: str
    config: TrainConfig
    values: dict  # every config.json value, None defaults resolved
    records: list
    best: Optional[dict]  # the eval record with the lowest FID
    best_dir: Optional[str] = None  # the run's best export, else its final one
    best_info: Optional[dict] = None
    slug: str = ""


def read_runs(run_dirs):
    """The runs of the report: each folder read once, named, and its best model looked up.

    Args:
      run_dirs: run directories (train.py --workdir); a folder given twice is read once.

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
        run.best_dir, run.best_info = find_best_model(run)
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
    run = RunDir(path)
    config_file = run.config_path
    if not os.path.isfile(config_file):
        inside = sorted(d for d in os.listdir(path)
                        if os.path.isfile(RunDir(os.path.join(path, d)).config_path))
        hint = (f"; it holds the run directories {', '.join(inside)}: pass those" if inside
                else " (train.py --workdir writes one)")
        raise UserError(f"{path} is not a run directory: it has no {RunDir.CONFIG}{hint}")
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
    values = {**with_current_names(TrainConfig, raw), **dataclasses.asdict(config)}
    records = run.metrics.records()
    return Run(name=os.path.basename(os.path.normpath(path)), path=path, config=config,
               values=values, records=records, best=best_eval(records))


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


def find_best_model(run):
    """The exported best model of `run`, else its final one: (directory, best.json contents),
    or (None, None).

    A run trained without FID has no best model: its final generator is used.
    """
    directory = RunDir(run.path).model_to_evaluate()
    info = _read_best_info(directory) if directory else None
    return (directory, info) if info else (None, None)


def _read_best_info(directory):
    try:
        return export.read_info(directory)
    except (OSError, ValueError):
        return None
