"""A run directory: every path of one training run, and its durable records.

    <workdir>/config.json          the resolved configuration
    <workdir>/metrics.jsonl        one JSON record per line: "train" and "eval" records
    <workdir>/samples/             the fixed-noise grid, step_NNNNNN.png
    <workdir>/checkpoints/         either backend's checkpoints
    <workdir>/export/best/         the generator with the best FID (see export.py)
    <workdir>/export/final/        the generator after the last step
    <workdir>/*.png, events.*      curves and TensorBoard summaries

The best model is also published to `<save_dir>/<model>/best` (see `publish_best`).
"""

import contextlib
import fcntl
import glob
import json
import math
import os
import re
import socket

from absl import logging

from tfgan_cifar.atomic import write_text
from tfgan_cifar.errors import UserError

EXPORT_KINDS = ("best", "final")
LOCK_FILE = ".lock"


def _jsonable(value):
    value = float(value) if hasattr(value, "__float__") and not isinstance(value, (int, str)) else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


class MetricsLog:
    """Appends one JSON record per line to `metrics.jsonl`, flushed at once.

    Each record has `kind` ("train", "eval", ...) and `step`. A resumed run asks
    `last_step(kind)` so that steps already logged are not logged twice.
    """

    def __init__(self, path):
        self.path = path

    def records(self, kind=None):
        """The records of `kind` (all without it), the last one per (kind, step), by step.

        Unreadable lines (a kill mid-write, a hand edit) are skipped with a warning.
        """
        if not os.path.exists(self.path):
            return []
        records = []
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                        raise ValueError("not a record with an integer step")
                except ValueError as error:
                    logging.warning("%s:%d: skipped an unreadable line (%s): %.80r", self.path,
                                    number, error, line)
                    continue
                records.append(record)
        return [r for r in latest_records(records) if kind is None or r.get("kind") == kind]

    def last_step(self, kind):
        """The highest step logged for `kind`, or 0."""
        return max((r["step"] for r in self.records(kind)), default=0)

    def last_logged(self):
        """The highest step of any record, or 0."""
        return max((r["step"] for r in self.records()), default=0)

    def truncate_after(self, step):
        """Drops, atomically, every record past `step` (and unreadable lines); returns the
        highest step dropped, or 0 when nothing was."""
        if not os.path.exists(self.path):
            return 0
        kept, dropped = [], 0
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                    logged = record["step"]
                except (ValueError, TypeError, KeyError):
                    continue
                if isinstance(logged, int) and logged > step:
                    dropped = max(dropped, logged)
                elif isinstance(logged, int):
                    kept.append(line if line.endswith("\n") else line + "\n")
        if dropped:
            write_text(self.path, "".join(kept))
        return dropped

    def best_eval(self, key="fid"):
        """The eval record with the lowest `key`, or None."""
        return best_eval(self.records("eval"), key)

    def append(self, kind, step, values):
        """Appends {"kind": kind, "step": step, **values}; non-finite floats become null."""
        record = {"kind": kind, "step": int(step), **{k: _jsonable(v) for k, v in values.items()}}
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:  # a kill can leave a partial line: start on a fresh one
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write((json.dumps(record) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
        return record


def latest_records(records):
    """The last record per (kind, step), ordered by step (stable for equal steps)."""
    latest = {}
    for r in records:
        if isinstance(r.get("step"), int):
            latest[(r.get("kind"), r["step"])] = r
    return sorted(latest.values(), key=lambda r: r["step"])


def best_eval(records, key="fid"):
    """The eval record with the lowest `key` (after de-duplication by step), or None."""
    evals = [r for r in latest_records(records) if r.get("kind") == "eval" and r.get(key) is not None]
    return min(evals, key=lambda r: r[key]) if evals else None


class RunDir:
    """The paths of one run directory, and its config and metrics."""

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"

    def __init__(self, path):
        self.path = os.fspath(path)

    def __repr__(self):
        return f"RunDir({self.path!r})"

    @property
    def config_path(self):
        return os.path.join(self.path, self.CONFIG)

    @property
    def metrics(self):
        """The run's `MetricsLog`: its one reader and writer."""
        return MetricsLog(os.path.join(self.path, self.METRICS))

    @property
    def checkpoints(self):
        """Where the run keeps its checkpoints (either backend's format)."""
        return os.path.join(self.path, "checkpoints")

    @contextlib.contextmanager
    def lock(self):
        """Holds the run directory for this process: a second process gets one line naming the
        holder. The lock (flock on <workdir>/.lock) dies with its process, even on kill -9.
        A start that leaves nothing else behind (a refused one) removes the lock file, and the
        folder when this call created it."""
        created = not os.path.exists(self.path)
        os.makedirs(self.path, exist_ok=True)
        path = os.path.join(self.path, LOCK_FILE)
        new_lock = not os.path.exists(path)
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise UserError(f"--workdir={self.path} is in use by {holder}: wait for it to "
                                "finish or stop it, or pass another --workdir") from None
            f.seek(0)
            f.truncate()
            f.write(f"process {os.getpid()} on {socket.gethostname()}\n")
            f.flush()
            try:
                yield self
            finally:
                if new_lock and os.listdir(self.path) == [LOCK_FILE]:
                    os.remove(path)
                    if created:
                        os.rmdir(self.path)
                fcntl.flock(f, fcntl.LOCK_UN)

    def checkpoint_files(self):
        """{"tensorflow": [(step, prefix)], "jax": [(step, path)]}: the checkpoints each backend
        left in checkpoints/, oldest first."""
        found = {"tensorflow": [], "jax": []}
        for path in glob.glob(os.path.join(self.checkpoints, "ckpt-*")):
            match = re.search(r"ckpt-(\d+)(\.npz|\.index)$", path)
            if match:
                step = int(match.group(1))
                if match.group(2) == ".npz":
                    found["jax"].append((step, path))
                else:
                    found["tensorflow"].append((step, path[:-len(".index")]))
        return {backend: sorted(files) for backend, files in found.items()}

    def npz_checkpoints(self):
        """[(step, path)] of the JAX backend's checkpoints (ckpt-<step>.npz), oldest first."""
        return self.checkpoint_files()["jax"]

    def sample_grid(self, step):
        """The fixed-noise grid of `step`."""
        return os.path.join(self.path, "samples", f"step_{step:06d}.png")

    def figure(self, name):
        """A figure redrawn while training: fid.png, losses.png, classifier.png."""
        return os.path.join(self.path, name)

    def export_dir(self, kind):
        """Where the run exports its generator: kind "best" or "final"."""
        if kind not in EXPORT_KINDS:
            raise ValueError(f"unknown export {kind!r}; choose one of {EXPORT_KINDS}")
        return os.path.join(self.path, "export", kind)

    def read_config(self):
        """The recorded configuration as a dict, or None when there is none; UserError when
        it cannot be read."""
        if not os.path.exists(self.config_path):
            return None
        try:
            with open(self.config_path) as f:
                config = json.load(f)
            problem = None if isinstance(config, dict) else "not a JSON object"
        except (OSError, ValueError) as error:
            problem = " ".join(str(error).split())
        if problem:
            raise UserError(f"{self.config_path} is not a readable configuration ({problem}): "
                            "restore it, or delete it to resume with this command's settings")
        return config

    def write_config(self, config):
        """Replaces config.json with `config` (a TrainConfig) atomically."""
        write_text(self.config_path, config.to_json() + "\n")

    def started(self):
        """Whether training has begun here: metrics or checkpoints exist."""
        return (os.path.exists(self.metrics.path)
                or (os.path.isdir(self.checkpoints) and bool(os.listdir(self.checkpoints))))

    def exported(self, kind):
        """The export directory of `kind` if the run has one (see export.exists), else None."""
        from tfgan_cifar import export

        path = self.export_dir(kind)
        return path if export.exists(path) else None

    def model_to_evaluate(self):
        """The best export, else the final one (a run trained without FID), else None."""
        return self.exported("best") or self.exported("final")


def published_best(save_dir, model):
    """`<save_dir>/<model>/best`: the published copy of the newest best model of a model."""
    return os.path.join(save_dir, model, "best")
