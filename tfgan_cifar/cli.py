"""absl flags generated from the settings of a config dataclass, flags -> config, and the one
way every entry point reports bad input: a single `error: ...` line and exit code 2."""

import dataclasses
import json
import os
import sys

from absl import app, flags, logging

from tfgan_cifar import paths, tf_log_filter
from tfgan_cifar.config import (GROUPS, TrainConfig, choices_of, continued_run, help_text,
                                settings, value_type)
from tfgan_cifar.errors import UserError, one_line
from tfgan_cifar.run_dir import RunDir

# Every entry point imports this module before anything imports TensorFlow (none of the
# imports above does).
tf_log_filter.quiet_tensorflow()

FLAGS = flags.FLAGS

# Settings naming a folder the command writes into: checked (paths.check_writable) when flags
# become a config, so a bad one stops the command before it writes anything.
OUTPUT_FOLDERS = ("workdir", "save_dir", "output_dir", "out")
# Every setting of any entry point naming a file or folder: an empty value is refused (it
# would mean the current directory, or silently the default).
PATH_SETTINGS = OUTPUT_FOLDERS + (
    "image_dir", "data_dir", "test_dir", "fid_reference_dir", "inception_weights",
    "fid_cache_dir", "reference_classifier", "saved_model", "run_dir", "samples_npz")


class _TupleParser(flags.ListParser):
    """A comma-separated list of `item` values, each among `choices` when given."""

    def __init__(self, item, choices):
        super().__init__()
        self._item, self._choices = item, choices

    def parse(self, argument):
        """'16,32' (or an already split list) -> [16, 32]; raises ValueError for bad items."""
        items = argument if isinstance(argument, (list, tuple)) else super().parse(argument)
        try:
            values = [self._item(item) for item in items]
        except ValueError:
            raise ValueError(f"takes a comma-separated list of {self._item.__name__} values, "
                             f"got {argument!r}") from None
        bad = [v for v in values if self._choices is not None and v not in self._choices]
        if bad:
            raise ValueError(f"takes {', '.join(map(str, self._choices))} or several of them "
                             f"joined by commas, got {','.join(map(str, bad))}")
        return values

    def flag_type(self):
        """What --helpxml calls the flag's type."""
        return f"comma separated list of {self._item.__name__}"


def _make_flag(field):
    """The absl flag of one declared setting."""
    name, default, help = field.name, field.default, help_text(field)
    kind, item = value_type(field)
    choices = choices_of(field)
    if kind is bool:
        return flags.BooleanFlag(name, default, help)
    if kind is tuple and field.metadata["repeatable"]:
        return flags.MultiFlag(flags.ArgumentParser(), flags.ArgumentSerializer(), name,
                               list(default), help)
    if kind is tuple:
        return flags.Flag(_TupleParser(item, choices), flags.CsvListSerializer(","), name,
                          list(default), help)
    if choices is not None and kind is str:
        return flags.EnumFlag(name, default, help, [str(c) for c in choices])
    parsers = {int: flags.IntegerParser, float: flags.FloatParser, str: flags.ArgumentParser}
    return flags.Flag(parsers[kind](), flags.ArgumentSerializer(), name, default, help)


def define_flags(config_class, flag_values=FLAGS):
    """Defines one absl flag per setting of `config_class`, typed by its declaration.

    `--helpfull` lists them by group (in the order of config.GROUPS), and `--help` lists all of
    them as the main program's flags. A flag already defined (by an earlier call in this
    process) is kept.
    """
    fields = [f for f in settings(config_class) if f.name not in flag_values]
    present = [g for g in GROUPS if any(f.metadata["group"] == g for f in fields)]
    for field in fields:
        section = f"{present.index(field.metadata['group']) + 1}. {field.metadata['group']}"
        flags.DEFINE_flag(_make_flag(field), flag_values, module_name=section)
        flag_values.register_key_flag_for_module(sys.argv[0], flag_values[field.name])
        for alias in field.metadata["aliases"]:  # a former name: sets the same value
            flags.DEFINE_alias(alias, field.name, flag_values=flag_values, module_name=section)


def config_from_flags(config_class=TrainConfig, flag_values=FLAGS, warn=True):
    """Freezes the parsed flags naming settings of `config_class` into a validated config
    (resolved against the model defaults when the class has `resolved`). An empty path
    (PATH_SETTINGS) and output folders (OUTPUT_FOLDERS, or the class's own `output_folders`)
    that cannot be written raise UserError; nothing is created.

    With `warn`, prints one `warning:` line per flag given explicitly that has no effect.
    """
    values = {}
    for field in dataclasses.fields(config_class):
        if field.name in flag_values:
            value = flag_values[field.name].value
            values[field.name] = tuple(value) if isinstance(value, list) else value
            if field.name in PATH_SETTINGS and isinstance(value, str) and not value.strip():
                raise UserError(f"--{field.name}= is empty: pass a path, or leave the flag out "
                                "for its default")
    if config_class is TrainConfig:
        config = _continuing(values, flag_values)
    else:
        config = config_class(**values)
    if hasattr(config, "resolved"):
        config = config.resolved()
    else:
        config.validate()
    for name in getattr(config_class, "output_folders", OUTPUT_FOLDERS):
        if getattr(config, name, None):
            paths.check_writable(getattr(config, name), name)
    if warn:
        for message in _ineffective_flags(config, flag_values):
            print(f"warning: {message}", file=sys.stderr, flush=True)
    return config


def _continuing(values, flag_values):
    """The TrainConfig of the flags: when its --workdir (default logs/<model>) holds a started
    run, that run's recorded settings with the flags typed applied (`config.continued_run`)."""
    config = TrainConfig(**values)
    run = RunDir(config.workdir or config.resolved().workdir)
    recorded = run.read_config() if run.started() else None
    if recorded is None:
        return config
    workdir = run.path
    given = {name: value for name, value in values.items() if flag_values[name].present}
    previous = dataclasses.replace(TrainConfig.from_json(json.dumps(recorded)), workdir=workdir)
    return continued_run(previous, given)


def _ineffective_flags(config, flag_values):
    """Says which explicitly given flags the config ignores."""
    for field in settings(type(config)):
        needs = field.metadata["requires"]
        if (needs and field.name in flag_values and flag_values[field.name].present
                and not getattr(config, needs)):
            yield f"--{field.name} has no effect without --{needs}"
    if not isinstance(config, TrainConfig):
        return
    import keras

    backend = keras.backend.backend()
    if backend == "jax" and config.jit_compile:
        yield ("--jit_compile has no effect with KERAS_BACKEND=jax: JAX always compiles the "
               "training step")
    if backend == "jax" and config.run_eagerly:
        yield ("--run_eagerly has no effect with KERAS_BACKEND=jax: set JAX_DISABLE_JIT=1 to "
               "run JAX op by op")
    if backend == "tensorflow" and config.run_eagerly and config.jit_compile:
        yield "--jit_compile has no effect with --run_eagerly: nothing is compiled"
    if backend == "jax" and config.sync_bn:
        yield ("--sync_bn has no effect with KERAS_BACKEND=jax: a sharded step's batch "
               "statistics are always those of the global batch")
    if backend == "tensorflow" and (config.coordinator_address or config.num_processes
                                    or config.process_id is not None):
        yield ("--coordinator_address, --num_processes and --process_id have no effect with "
               "KERAS_BACKEND=tensorflow: TF_CONFIG or Slurm describes the cluster")


PRESETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def presets():
    """The names of the preset flagfiles shipped in tfgan_cifar/configs (`--preset=NAME`)."""
    return sorted(name[:-len(".cfg")] for name in os.listdir(PRESETS) if name.endswith(".cfg"))


def expand_arguments(argv):
    """argv with `-h` as `--help` and `--preset=NAME` as `--flagfile=<its .cfg file>` (the
    presets are found wherever the package is installed); raises UserError for an unknown
    preset. Arguments after `--` are left alone."""
    expanded = list(argv[:1])
    for index, argument in enumerate(argv[1:], 1):
        if argument == "--":
            return expanded + list(argv[index:])
        if argument == "-h":
            argument = "--help"
        elif argument.startswith("--preset="):
            name = argument.partition("=")[2]
            if name not in presets():
                raise UserError(f"--preset={name} is not a preset; choose one of "
                                f"{', '.join(presets())} (or pass --flagfile=PATH)")
            argument = f"--flagfile={os.path.join(PRESETS, name + '.cfg')}"
        expanded.append(argument)
    return expanded


def parse_flags(argv, flag_values=FLAGS, known_only=False):
    """Parses argv (after `expand_arguments`) into `flag_values`; returns the arguments left
    (with `known_only`, also the flags `flag_values` does not define). A bad flag raises
    UserError with absl's message on one line."""
    argv = expand_arguments(argv)
    try:
        return flag_values(argv, known_only=known_only)
    except flags.Error as error:
        raise UserError(one_line(error, limit=None)) from None


def run(command, options_class, argv=None, positional=False, parse=parse_flags, usage=None):
    """Runs an entry point: defines one flag per setting of `options_class`, parses the
    arguments into them with `parse` (argv, flag_values -> argv left) and calls
    `command(argv left, flag_values)`. Positional arguments are refused unless `positional`. A
    UserError, from the flags or from `command`, becomes one `error: ...` line on stderr and
    exit code 2 (see `call`).

    With `argv` None the command line is parsed into absl's FLAGS under `app.run` (which adds
    --help, -h and --helpfull, printing `usage` first) and the process exits with command's
    return value. An `argv` list (program name first) is parsed into flags of its own, so that
    entry points called one after another from Python each keep their own flags and defaults,
    and command's return value is returned.
    """
    flag_values = FLAGS if argv is None else flags.FlagValues()
    define_flags(options_class, flag_values)

    def checked_command(args):
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
        if len(args) > 1 and not positional:
            raise UserError(f"unexpected arguments: {' '.join(args[1:])}")
        return command(args, flag_values)

    def parsed(args):
        return parse(args, flag_values)

    if argv is None:
        if usage:  # absl's --help prints the main module's docstring
            sys.modules["__main__"].__doc__ = usage
        app.run(lambda args: call(checked_command, args),
                flags_parser=lambda args: call(parsed, args))
    return call(checked_command, call(parsed, list(argv)))


def call(function, *args):
    """Returns `function(*args)`; a UserError becomes one `error: ...` line on stderr and exit
    code 2. Every entry point reports bad input through here."""
    try:
        return function(*args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
