"""Run a grid of train.py configurations one after another, into sibling run directories.

  python -m tfgan_cifar.sweep --flagfile=configs/sagan.cfg --arch=cnn \\
      --grid batch_size=64,128 --grid attention_res=16,32,16+32 --steps=20000 [--dry_run]

Each `--grid NAME=V1,V2,...` multiplies the runs; `+` inside a value stands for a comma
(`16+32` is `--attention_res=16,32`). Every other argument goes to train.py unchanged. Run
directories are `<workdir>_<name><value>_...` beside `--workdir` (default `logs/<model>`), so
rerunning the sweep resumes each run. Every run's configuration is checked before the first
one starts; `--dry_run` prints the commands instead of running them.
"""

import dataclasses
import difflib
import itertools
import os
import shlex
import subprocess
import sys
from typing import Tuple

from absl import flags

from tfgan_cifar import cli
from tfgan_cifar.config import TrainConfig, setting, settings
from tfgan_cifar.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "?")


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """The sweep's own settings; every other argument goes to train.py."""

    grid: Tuple[str, ...] = setting(
        (), "NAME=V1,V2,...: one run per value of train.py's --NAME ('+' inside a value "
        "stands for a comma); repeat it for more settings, the runs are the product", "run",
        repeatable=True)
    dry_run: bool = setting(False, "Check and print the train.py commands without running "
                            "them.", "run")


class SweepError(UserError):
    """A sweep command line that cannot work."""


def split_arguments(argv):
    """Separates the sweep's own flags (and absl's help flags) from the arguments for
    train.py; returns (own, passthrough), each in the given order."""
    own_names = set(HELP_FLAGS)
    for field in settings(SweepOptions):
        own_names |= {field.name, f"no{field.name}"} if field.type is bool else {field.name}
    own, passthrough = [], []
    args = iter(argv)
    for arg in args:
        key, sep, value = arg.lstrip("-").partition("=")
        name = key.replace("-", "_")  # --dry-run is --dry_run
        if not arg.startswith("-") or name not in own_names:
            passthrough.append(arg)
            continue
        own.append(arg if name in HELP_FLAGS else f"--{name}{sep}{value}")
        if name == "grid" and not sep:
            own.extend(itertools.islice(args, 1))  # --grid NAME=V1,V2
    return own, passthrough


def _train_flags():
    """A fresh set of train.py's flags."""
    flag_values = flags.FlagValues()
    cli.define_flags(TrainConfig, flag_values)
    return flag_values


def parse_grid(specs):
    """{name: [values]} from `--grid NAME=V1,V2` specs, with each name checked against
    train.py's settings and each value parsed by its flag."""
    grid = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.lstrip("-")
        values = [v.replace("+", ",") for v in values.split(",") if v]
        if not sep or not name or not values:
            raise SweepError(f"--grid takes NAME=V1,V2,..., got {spec!r}")
        if name in grid:
            raise SweepError(f"--grid {name} given twice")
        grid[name] = values
    if not grid:
        raise SweepError("give at least one --grid NAME=V1,V2")
    train_flags = _train_flags()
    names = [field.name for field in settings(TrainConfig) if field.name != "workdir"]
    for name, values in grid.items():
        if name == "workdir":
            raise SweepError("--grid workdir: the sweep names the run directories itself "
                             "(--workdir sets their common prefix)")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean --{close[0]}?" if close else ""
            raise SweepError(f"--grid {name}: train.py has no --{name}{hint}")
        for value in values:
            try:
                train_flags[name].parser.parse(value)
            except ValueError as error:
                raise SweepError(f"--grid {name}={value}: {error}") from None
    return grid


def parse_arguments(argv):
    """Splits argv into ({name: [values]}, dry_run, arguments for train.py)."""
    own, passthrough = split_arguments(argv)
    options = flags.FlagValues()
    cli.define_flags(SweepOptions, options)
    try:
        cli.parse_flags(["sweep", *own], options)
    except UserError as error:
        raise SweepError(str(error)) from None
    return parse_grid(options.grid), options.dry_run, passthrough


def _parse(train_flags, args):
    """Parses train.py arguments into `train_flags` (reset first); raises SweepError for a
    flag train.py does not know (absl's own ones, like --verbosity, pass)."""
    train_flags.unparse_flags()
    left = cli.parse_flags(["train.py", *args], train_flags, known_only=True)[1:]
    for arg in left:
        name = arg.lstrip("-").partition("=")[0]
        if not arg.startswith("-") or name in flags.FLAGS or (
                name.startswith("no") and name[2:] in flags.FLAGS):
            continue
        close = difflib.get_close_matches(name, list(train_flags), n=1)
        hint = f"; did you mean --{close[0]}?" if close else ""
        raise SweepError(f"{arg}: train.py has no --{name}{hint}")


def _without_workdir(args):
    kept, args = [], iter(args)
    for arg in args:
        if arg == "--workdir":
            next(args, None)
        elif not arg.startswith("--workdir="):
            kept.append(arg)
    return kept


def _slug(value):
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in value)


def expand(grid, passthrough, python=sys.executable):
    """The train.py command of every point of the grid, in order (last name varies fastest).

    Raises SweepError, naming the run, if a run's configuration would be refused.
    """
    train_flags = _train_flags()
    _parse(train_flags, passthrough)
    base = train_flags.workdir or os.path.join("logs", train_flags.model)
    kept = _without_workdir(passthrough)
    names = list(grid)
    commands = []
    for values in itertools.product(*(grid[n] for n in names)):
        suffix = "_".join(f"{n}{_slug(v)}" for n, v in zip(names, values))
        point = [f"--{n}={v}" for n, v in zip(names, values)]
        args = [*kept, *point, f"--workdir={base}_{suffix}"]
        try:
            _parse(train_flags, args)
            cli.config_from_flags(TrainConfig, train_flags, warn=False)
        except UserError as error:
            raise SweepError(f"run {len(commands) + 1} ({' '.join(point)}): {error}") from None
        commands.append([python, os.path.join(ROOT, "train.py"), *args])
    return commands


def _parse_own_flags(argv, flag_values):
    own, passthrough = split_arguments(argv[1:])
    cli.parse_flags([argv[0], *own], flag_values)
    return [argv[0], *passthrough]


def sweep(argv, flag_values):
    """Runs (with --dry_run: prints) the train.py command of every point of the grid."""
    commands = expand(parse_grid(flag_values.grid), argv[1:])
    for index, command in enumerate(commands, 1):
        print(f"[{index}/{len(commands)}] {shlex.join(command)}", flush=True)
        if flag_values.dry_run:
            continue
        code = subprocess.call(command)
        if code != 0:
            print(f"run {index} failed with exit code {code}; stopping the sweep (rerun it to "
                  "resume: finished runs are skipped, stopped ones continue)", file=sys.stderr)
            return code
    return 0


def main(argv=None):
    """`python -m tfgan_cifar.sweep`: runs the grid as the command line (or `argv`, program
    name first) says."""
    return cli.run(sweep, SweepOptions, argv, positional=True, parse=_parse_own_flags,
                   usage=__doc__)


if __name__ == "__main__":
    sys.exit(main())
