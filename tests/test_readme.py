"""The README's commands and the documentation's links: every command of the package that the
README shows parses with the package's own flag definitions (nothing runs), its two top
commands are the ones CI runs, and every relative link of README.md, ARCHITECTURE.md and
docs/*.md names a file (and a heading) that exists."""

import ast
import glob
import os
import re
import shlex

import pytest
from absl import flags

from tfgan_cifar import cli
from tfgan_cifar.classifier import ClassifierOptions
from tfgan_cifar.commands.evaluate import EvaluateOptions
from tfgan_cifar.commands.sample import SampleOptions
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.fid_weights import FidWeightsOptions
from tfgan_cifar.report.__main__ import ReportOptions
from tfgan_cifar.sweep import SweepOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DOCUMENTS = [README, os.path.join(ROOT, "ARCHITECTURE.md"),
             *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]

# A command's program (after `python`/`python -m`, as typed) -> the settings it takes.
PROGRAMS = {
    "tfgan-train": TrainConfig, "train.py": TrainConfig,
    "tfgan-evaluate": EvaluateOptions, "evaluate.py": EvaluateOptions,
    "tfgan-sample": SampleOptions,
    "tfgan-report": ReportOptions, "tfgan_cifar.report": ReportOptions,
    "tfgan-classifier": ClassifierOptions, "tfgan_cifar.classifier": ClassifierOptions,
    "tfgan-fid-weights": FidWeightsOptions, "tfgan_cifar.fid_weights": FidWeightsOptions,
    "tfgan_cifar.sweep": SweepOptions,
}
HELP = {"-h", "--help", "--helpfull", "--helpshort"}


def code_blocks(path, language):
    """The bodies of the ```language blocks of a Markdown file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def shell_commands(block):
    """The commands of a shell block: continuation lines joined, comments dropped, `&&`
    chains split; each a list of words."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        command = []
        for word in words + ["&&"]:
            if word == "&&":
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(word)
    return commands


def package_command(words):
    """(program, arguments) when `words` runs a command of this package, else None.
    Environment assignments in front (KERAS_BACKEND=jax) are skipped."""
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    if words[:1] in (["python"], ["python3"]):
        words = words[2:] if words[1:2] == ["-m"] else words[1:]
        program = words[0] if words else ""
        if program.startswith("tfgan_cifar") or program in ("train.py", "evaluate.py"):
            return program, words[1:]
        return None
    if words and words[0].startswith("tfgan-"):
        return words[0], words[1:]
    return None


def readme_commands():
    return [command for block in code_blocks(README, "bash") for command in shell_commands(block)]


def test_readme_shows_the_package_commands():
    programs = {package_command(c)[0] for c in readme_commands() if package_command(c)}
    assert {"tfgan-train", "tfgan-evaluate", "tfgan-sample", "tfgan-report",
            "tfgan-classifier", "tfgan-fid-weights"} <= programs


@pytest.mark.parametrize("words", [c for c in readme_commands() if package_command(c)],
                         ids=lambda words: " ".join(words)[:60])
def test_readme_command_parses_with_the_package_flags(words, monkeypatch):
    program, arguments = package_command(words)
    assert program in PROGRAMS, f"{program} is not a command of the package"
    settings = PROGRAMS[program]
    flag_values = flags.FlagValues()
    cli.define_flags(settings, flag_values)
    monkeypatch.chdir(ROOT)  # --flagfile=configs/... is relative to the checkout
    given = [a for a in arguments if a not in HELP]
    if settings is SweepOptions:  # the sweep's own flags, then train.py's
        from tfgan_cifar import sweep

        own, given = sweep.split_arguments(given)
        cli.parse_flags([program, *own], flag_values)
        flag_values = flags.FlagValues()
        cli.define_flags(TrainConfig, flag_values)
    # Raises UserError for a flag the command does not define or a value it refuses.
    left = cli.parse_flags([program, *given], flag_values)
    assert all(not a.startswith("-") for a in left[1:]), left


def test_the_top_commands_install_the_package_and_the_test_command_is_what_ci_runs():
    first = code_blocks(README, "bash")[0]
    lines = [line for line in first.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2, "the README opens with two commands: install and train, and test"
    install_and_train, install_and_test = lines
    assert "python -m pip install . &&" in install_and_train
    assert package_command(shell_commands(install_and_train)[-1])[0] == "tfgan-train"
    assert 'python -m pip install -e ".[dev]" &&' in install_and_test
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = [line for line in f.read().splitlines()
              if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [install_and_test]


def test_readme_python_uses_the_public_api():
    import tfgan_cifar

    blocks = code_blocks(README, "python")
    assert blocks
    for block in blocks:
        tree = ast.parse(block)
        used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name) and node.value.id == "tfgan_cifar"}
        assert used <= set(tfgan_cifar.__all__), used - set(tfgan_cifar.__all__)


def test_readme_is_short():
    with open(README, encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 200


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"^```.*?^```", "", f.read(), flags=re.M | re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def relative_links(path):
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"^```.*?^```", "", f.read(), flags=re.M | re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_resolve(document):
    links = list(relative_links(document))
    for target in links:
        file, _, anchor = target.partition("#")
        resolved = (os.path.normpath(os.path.join(os.path.dirname(document), file)) if file
                    else document)
        assert os.path.exists(resolved), f"{target}: no {os.path.relpath(resolved, ROOT)}"
        if anchor and resolved.endswith(".md"):
            assert anchor in anchors(resolved), f"{target}: no heading #{anchor}"


def test_readme_links_every_document_of_docs():
    linked = {os.path.normpath(os.path.join(ROOT, t.partition("#")[0]))
              for t in relative_links(README)}
    assert set(DOCUMENTS[2:]) <= linked
