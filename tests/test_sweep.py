"""The sweep expands its grid exactly, checks every run before the first, and passes every
other flag through."""

import os

import pytest

from tfgan_cifar import sweep


def test_grid_expands_to_the_cartesian_product_with_sibling_workdirs():
    grid, dry_run, rest = sweep.parse_arguments([
        "--flagfile=configs/sagan.cfg", "--arch=cnn", "--grid", "batch_size=64,128",
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
    grid, _, rest = sweep.parse_arguments(["--workdir=runs/x", "--grid", "loss=hinge,lsgan"])
    assert [c[-1] for c in sweep.expand(grid, rest)] == [
        "--workdir=runs/x_losshinge", "--workdir=runs/x_losslsgan"]
    assert not any(a == "--workdir=runs/x" for c in sweep.expand(grid, rest) for a in c)


@pytest.mark.parametrize("argv", [[], ["--grid", "batch_size"], ["--grid=a=1", "--grid=a=2"]])
def test_bad_grids_are_refused(argv):
    with pytest.raises(sweep.SweepError):
        sweep.parse_arguments(argv)


@pytest.mark.parametrize("spec,message", [
    ("batchsize=64", "--grid batchsize: train.py has no --batchsize; did you mean --batch_size?"),
    ("workdir=a,b", "the sweep names the run directories itself"),
    ("batch_size=64,big", "--grid batch_size=big: "),
    ("loss=hinge,l1", "--grid loss=l1: value should be one of"),
    ("attention_res=16,64", "--grid attention_res=64: takes 8, 16, 32"),
    ("flip=true,maybe", "--grid flip=maybe: "),
])
def test_grid_names_and_values_are_checked_by_the_flags_of_train_py(spec, message):
    with pytest.raises(sweep.SweepError) as error:
        sweep.parse_arguments(["--grid", spec, "--dry_run"])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_every_run_is_checked_before_the_first_starts():
    grid, _, rest = sweep.parse_arguments(["--model=sagan", "--gp_weight=10", "--grid",
                                           "loss=wasserstein,hinge"])
    with pytest.raises(sweep.SweepError, match=r"^run 2 \(--loss=hinge\): --gp_weight is the "):
        sweep.expand(grid, rest)
    grid, _, rest = sweep.parse_arguments(["--grid", "seed=0,-1"])
    with pytest.raises(sweep.SweepError, match="--seed must be >= 0"):
        sweep.expand(grid, rest)


def test_own_flags_are_split_from_train_py_arguments_in_order():
    own, rest = sweep.split_arguments(["--flagfile=x.cfg", "--grid", "seed=1,2", "--dry-run",
                                       "--steps=3", "--grid=loss=bce", "--helpfull", "--nofid"])
    assert own == ["--grid", "seed=1,2", "--dry_run", "--grid=loss=bce", "--helpfull"]
    assert rest == ["--flagfile=x.cfg", "--steps=3", "--nofid"]
    assert sweep.parse_arguments(["--grid=seed=1", "--dry-run"])[1] is True


def test_dry_run_from_the_command_line_prints_every_command(capfd):
    code = sweep.main(["sweep", "--model=dcgan", "--grid", "seed=1,2,3", "--dry_run"])
    out, err = capfd.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split("]")[0] for line in lines] == ["[1/3", "[2/3", "[3/3"]
    assert all("train.py --model=dcgan --seed=" in line for line in lines)


@pytest.mark.parametrize("grid,message", [("bogus=1,2", "--grid bogus: train.py has no --bogus"),
                                          ("batch_size=64,x", "--grid batch_size=x: ")])
def test_bad_grids_on_the_command_line_give_one_error_line_and_exit_code_2(grid, message, capfd):
    with pytest.raises(SystemExit) as stop:
        sweep.main(["sweep", "--model=dcgan", "--grid", grid, "--dry_run"])
    out, err = capfd.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and out == "", err[-2000:]
    assert len(errors) == 1 and message in errors[0], err[-2000:]
