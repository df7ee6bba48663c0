"""Run a grid of train.py configurations one after another, into sibling run directories.

  python -m tfgan_cifar.sweep --flagfile=configs/sagan.cfg \\
      --grid batch_size=64,128 --grid attention_res=16,32,16+32 --steps=20000 [--dry_run]

Each `--grid NAME=V1,V2,...` multiplies the runs; `+` inside a value stands for a comma
(`16+32` is `--attention_res=16,32`). Every other argument goes to train.py unchanged. Run
directories are `<workdir>_<name><value>_...` beside `--workdir` (default `logs/<model>`), so
rerunning the sweep resumes each run. `--dry_run` prints the commands instead of running them.
"""

import itertools
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USAGE = ("usage: python -m tfgan_cifar.sweep --grid NAME=V1,V2 [--grid ...] [--dry_run] "
         "[train.py flags]")


class SweepError(ValueError):
    """A sweep command line that cannot work."""


def parse_arguments(argv):
    """Splits argv into ({name: [values]}, dry_run, arguments for train.py)."""
    grid, passthrough, dry_run = {}, [], False
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("--dry_run", "--dry-run"):
            dry_run = True
        elif arg == "--grid" or arg.startswith("--grid="):
            spec = arg.split("=", 1)[1] if arg.startswith("--grid=") else (
                args.pop(0) if args else "")
            name, sep, values = spec.partition("=")
            values = [v.replace("+", ",") for v in values.split(",") if v]
            if not sep or not name or not values:
                raise SweepError(f"--grid takes NAME=V1,V2,..., got {spec!r}")
            if name in grid:
                raise SweepError(f"--grid {name} given twice")
            grid[name.lstrip("-")] = values
        else:
            passthrough.append(arg)
    if not grid:
        raise SweepError("give at least one --grid NAME=V1,V2")
    return grid, dry_run, passthrough


def _base_workdir(passthrough):
    workdir = model = None
    for arg in passthrough:
        if arg.startswith("--workdir="):
            workdir = arg.split("=", 1)[1]
        elif arg.startswith("--model="):
            model = arg.split("=", 1)[1]
        elif arg.startswith("--flagfile="):
            for line in open(arg.split("=", 1)[1]):
                if line.startswith("--model="):
                    model = model or line.strip().split("=", 1)[1]
    return workdir or os.path.join("logs", model or "dcgan")


def _slug(value):
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in value)


def expand(grid, passthrough, python=sys.executable):
    """The train.py command of every point of the grid, in order (last name varies fastest)."""
    base = _base_workdir(passthrough)
    kept = [a for a in passthrough if not a.startswith("--workdir=")]
    names = list(grid)
    commands = []
    for values in itertools.product(*(grid[n] for n in names)):
        suffix = "_".join(f"{n}{_slug(v)}" for n, v in zip(names, values))
        flags = [f"--{n}={v}" for n, v in zip(names, values)]
        commands.append([python, os.path.join(ROOT, "train.py"), *kept, *flags,
                         f"--workdir={base}_{suffix}"])
    return commands


def main(argv=None):
    try:
        grid, dry_run, passthrough = parse_arguments(sys.argv[1:] if argv is None else argv)
    except SweepError as error:
        print(f"error: {error}\n{USAGE}", file=sys.stderr)
        return 2
    commands = expand(grid, passthrough)
    for index, command in enumerate(commands, 1):
        print(f"[{index}/{len(commands)}] {shlex.join(command)}", flush=True)
        if dry_run:
            continue
        code = subprocess.call(command)
        if code != 0:
            print(f"run {index} failed with exit code {code}; stopping the sweep (rerun it to "
                  "resume: finished runs are skipped, stopped ones continue)", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
