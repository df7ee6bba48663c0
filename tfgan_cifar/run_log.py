"""The run directory's durable records: the resolved config and `metrics.jsonl`."""

import json
import math
import os

from absl import logging


def checkpoint_dir(workdir):
    """Where a run keeps its checkpoints (either backend's format)."""
    return os.path.join(workdir, "checkpoints")


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
        """All complete records (a truncated last line from a kill is ignored)."""
        if not os.path.exists(self.path):
            return []
        records = []
        with open(self.path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if kind is None or record.get("kind") == kind:
                    records.append(record)
        return records

    def last_step(self, kind):
        """The highest step logged for `kind`, or 0."""
        return max((r["step"] for r in self.records(kind)), default=0)

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


def read_metrics(path):
    """Reads `metrics.jsonl`: skips invalid lines (a kill mid-write), keeps the last per step.

    Args:
      path: the metrics.jsonl file.

    Returns:
      The records (dicts with at least "kind" and "step"), one per (kind, step), sorted by step;
      [] when the file does not exist.
    """
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                    raise ValueError("not a record with an integer step")
            except ValueError as error:
                logging.warning("%s:%d: skipped an unreadable line (%s): %.80r", path, number,
                                error, line)
                continue
            records.append(record)
    return latest_records(records)


def best_eval(records, key="fid"):
    """The eval record with the lowest `key` (after de-duplication by step), or None."""
    evals = [r for r in latest_records(records) if r.get("kind") == "eval" and r.get(key) is not None]
    return min(evals, key=lambda r: r[key]) if evals else None
