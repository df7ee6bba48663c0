"""The sweep expands its grid exactly and passes every other flag through."""

import os
import subprocess
import sys

import pytest

from tfgan_cifar import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_grid_expands_to_the_cartesian_product_with_sibling_workdirs():
    grid, dry_run, rest = sweep.parse_arguments([
        "--flagfile=configs/sagan.cfg", "--grid", "batch_size=64,128",
        "--grid=attention_res=16,32,16+32", "--steps=10", "--dry_run"])
    assert dry_run and grid == {"batch_size": ["64", "128"],
                                "attention_res": ["16", "32", "16,32"]}
    commands = sweep.expand(grid, rest, python="python")
    assert len(commands) == 6
    points = [tuple(a for a in c if a.startswith(("--batch_size", "--attention_res")))
              for c in commands]
    assert points == [(f"--batch_size={b}", f"--attention_res={a}")
                      for b in ("64", "128") for a in ("16", "32", "16,32")]
    workdirs = [c[-1] for c in commands]
    assert len(set(workdirs)) == 6
    assert workdirs[0] == "--workdir=" + os.path.join("logs", "sagan") + "_batch_size64_attention_res16"
    assert workdirs[5].endswith("_batch_size128_attention_res16-32")
    for command in commands:
        assert command[1].endswith("train.py")
        assert "--flagfile=configs/sagan.cfg" in command and "--steps=10" in command


def test_an_explicit_workdir_is_the_base_of_the_run_directories():
    grid, _, rest = sweep.parse_arguments(["--workdir=runs/x", "--grid", "loss=hinge,wasserstein"])
    assert [c[-1] for c in sweep.expand(grid, rest)] == [
        "--workdir=runs/x_losshinge", "--workdir=runs/x_losswasserstein"]
    assert not any(a == "--workdir=runs/x" for c in sweep.expand(grid, rest) for a in c)


@pytest.mark.parametrize("argv", [[], ["--grid", "batch_size"], ["--grid=a=1", "--grid=a=2"]])
def test_bad_grids_are_refused(argv):
    with pytest.raises(sweep.SweepError):
        sweep.parse_arguments(argv)


def test_dry_run_from_the_command_line_prints_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "tfgan_cifar.sweep", "--model=dcgan", "--grid", "seed=1,2,3",
         "--dry_run"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("]")[0] for line in lines] == ["[1/3", "[2/3", "[3/3"]
    assert all("train.py --model=dcgan --seed=" in line for line in lines)
