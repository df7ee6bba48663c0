"""The installed package, outside the checkout: `pip install .`, its commands (a tiny training
run, then sampling and a report), `import tfgan_cifar` and its public API."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("tfgan-train", "tfgan-evaluate", "tfgan-sample", "tfgan-report", "tfgan-classifier",
            "tfgan-fid-weights")


def _pins(path):
    """The requirement lines of a requirements file, without comments and `-r` includes."""
    with open(path) as f:
        lines = (line.split("#")[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith("-r")]


def _source_copy(target):
    """The files of the checkout (tracked, and new ones git does not ignore) copied to
    `target`: pip builds there, so the checkout gets no build/ or .egg-info."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = os.path.join(ROOT, name)
        if os.path.isfile(source) and not os.path.islink(source):
            os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
            shutil.copy2(source, os.path.join(target, name))
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory, cifar_like_dir):
    """A fresh venv with the package installed by `pip install .` (its dependencies are this
    interpreter's, reached through a .pth file, so pip finds them installed), and a tiny run
    trained by its `tfgan-train`. Every command runs in a folder outside the checkout."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(purelib, "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    source = _source_copy(root / "source")
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-build-isolation",
         "--no-input", "--disable-pip-version-check", str(source)],
        capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    work = root / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"

    def run(*argv, check=True):
        result = subprocess.run(list(argv), cwd=work, env=env, capture_output=True, text=True,
                                timeout=600)
        if check:
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    run_dir = work / "run"
    run("tfgan-train", "--model=dcgan", "--width=4", "--z_dim=8", "--batch_size=4", "--steps=2",
        "--num_classes=3", f"--image_dir={cifar_like_dir / 'train'}", "--log_every=1",
        "--sample_every=0", "--checkpoint_every=0", "--eval_every=0", f"--workdir={run_dir}",
        f"--save_dir={work / 'saved_models'}")
    return dict(venv=venv, purelib=purelib, work=work, run=run, run_dir=run_dir,
                python=str(venv / "bin" / "python"))


def test_the_declared_dependencies_are_the_pins_of_the_requirements_files(installed):
    script = "import importlib.metadata as m; print('\\n'.join(m.requires('tfgan-cifar')))"
    declared = installed["run"](installed["python"], "-c", script).stdout.splitlines()
    normal = lambda pin: re.sub(r"[-_.]+", "-", pin.lower().replace(" ", ""))  # noqa: E731
    runtime = [normal(d) for d in declared if "extra" not in d]
    dev = [normal(d.split(";")[0]) for d in declared if 'extra == "dev"' in d]
    assert runtime == [normal(p) for p in _pins(os.path.join(ROOT, "requirements.txt"))]
    assert dev == [normal(p) for p in _pins(os.path.join(ROOT, "requirements-dev.txt"))]
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert set(COMMANDS) | {"tfgan-fid-weights"} == set(scripts)


def test_every_command_is_installed_and_answers_help(installed):
    for command in COMMANDS:
        assert os.path.exists(installed["venv"] / "bin" / command), command
    result = installed["run"]("tfgan-train", "--help", check=False)
    assert "--steps" in result.stdout and "tfgan-train --preset=sagan" in result.stdout
    for command in ("tfgan-sample", "tfgan-evaluate"):
        result = installed["run"](command, "-h", check=False)
        assert "--out" in result.stdout or "--output_dir" in result.stdout, result.stderr
        assert "error:" not in result.stderr


def test_the_presets_are_found_where_the_package_is_installed(installed):
    result = installed["run"]("tfgan-train", "--preset=sngan", "--steps=0", check=False)
    assert result.returncode == 2 and "error: --steps must be at least 1" in result.stderr
    result = installed["run"]("tfgan-train", "--preset=biggan", check=False)
    assert result.returncode == 2
    assert "--preset=biggan is not a preset; choose one of dcgan, dcgan_large, quick, sagan, " \
        "sngan" in result.stderr


def test_a_tiny_run_is_sampled_and_reported_by_the_installed_commands(installed):
    run_dir, work = installed["run_dir"], installed["work"]
    assert os.path.isfile(run_dir / "export" / "final" / "README.md")
    installed["run"]("tfgan-sample", str(run_dir), "--num=5", f"--out={work / 'pngs'}")
    assert sorted(os.listdir(work / "pngs")) == [f"{i:05d}.png" for i in range(5)]
    result = installed["run"]("tfgan-report", str(run_dir), f"--out={work / 'report'}")
    assert os.path.isfile(work / "report" / "report.md"), result.stdout
    result = installed["run"](installed["python"], "-m", "tfgan_cifar.report", str(run_dir),
                              f"--out={work / 'report2'}")
    assert os.path.isfile(work / "report2" / "report.md")


def test_the_public_api_and_load_model_work_outside_the_checkout(installed):
    script = (
        "import sys, keras, numpy as np, tfgan_cifar\n"
        "generator = tfgan_cifar.load_generator(sys.argv[1])\n"
        "images = generator.sample(6, seed=1)\n"
        "again = generator.sample(6, seed=1)\n"
        "z = generator.noise(6, seed=1)\n"
        "model = keras.models.load_model(sys.argv[1] + '/export/final/generator.keras')\n"
        "direct = np.asarray(keras.ops.convert_to_numpy(model(z, None, training=False)))\n"
        "direct = np.clip(np.rint((direct + 1) * 127.5), 0, 255).astype(np.uint8)\n"
        "print(tfgan_cifar.__file__)\n"
        "print(images.shape, images.dtype, generator.z_dim, generator.num_classes,\n"
        "      generator.conditional, (images == again).all(),\n"
        "      int(np.abs(direct.astype(int) - images).max()) <= 1)\n")
    result = installed["run"](installed["python"], "-c", script, str(installed["run_dir"]))
    location, values = result.stdout.strip().splitlines()[-2:]
    assert location.startswith(installed["purelib"])
    assert values == "(6, 32, 32, 3) uint8 8 3 False True True"
