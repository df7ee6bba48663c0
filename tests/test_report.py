"""The comparison report: from tiny real runs, from hand-written run directories, and its CLI."""

import json
import os
import re
import shutil
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from tfgan_cifar import report
from tfgan_cifar.config import TrainConfig
from tfgan_cifar.errors import UserError
from tfgan_cifar.report import document, figures, sections, tables
from tfgan_cifar.report.__main__ import main
from tfgan_cifar.report.runs import find_best_model, read_run, unique_names
from tfgan_cifar.run_dir import MetricsLog, RunDir
from tiny_runs import train_eagerly


def _images_referenced(out):
    """Every image path named in report.md and report.tex."""
    markdown = (out / "report.md").read_text()
    latex = (out / "report.tex").read_text()
    return (re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown),
            re.findall(r"\\includegraphics\[[^\]]*\]\{([^}]+)\}", latex))


def _assert_images_exist(out):
    in_markdown, in_latex = _images_referenced(out)
    assert in_markdown and sorted(in_markdown) == sorted(in_latex)
    for path in in_markdown:
        assert not os.path.isabs(path)
        with Image.open(out / path) as image:
            assert image.format == "PNG"
            image.verify()
    return in_markdown


def _table_row(markdown, name):
    """The cells of the Markdown table row of run `name` (the first row that starts with it)."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("|") and cells[0] == name:
            return cells
    raise AssertionError(f"no table row for {name}")


def _section(markdown, title):
    start = markdown.index(f"## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:end if end >= 0 else None]


# Two tiny real runs: an unconditional DCGAN and a conditional SAGAN. (A third, SAGAN at
# 32x32, would cost another minute of FID on two CPU cores; the attention table is checked on
# hand-written runs below.)

REAL_RUNS = ("dcgan", "sagan")


@pytest.fixture(scope="module")
def real_report(cifar_like_dir, inception_weights_file, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report_runs")
    for model in REAL_RUNS:
        train_eagerly(TrainConfig(
            model=model, workdir=str(tmp / "logs" / model), image_dir=str(cifar_like_dir / "train"),
            save_dir=str(tmp / "saved"), fid_cache_dir=str(tmp / "cache"),
            inception_weights=inception_weights_file, width=4, z_dim=8, batch_size=4,
            num_classes=3, steps=2, log_every=1, sample_every=1, checkpoint_every=0,
            eval_every=2, fid_samples=4).resolved())
    out = tmp / "report"
    with mock.patch.object(document.shutil, "which", return_value=None):
        code = main([str(tmp / "logs" / model) for model in REAL_RUNS] + [f"--out={out}"])
    assert code == 0
    return tmp, out


def test_results_table_has_each_runs_best_fid_and_step(real_report, inception_weights_file):
    tmp, out = real_report
    markdown = (out / "report.md").read_text()
    header = _table_row(markdown, "run")
    assert header[:8] == ["run", "model", "best FID", "at step", "KID ± std at that step",
                          "FID samples", "FID network", "reference split"]
    assert "attention_res" in header and "workdir" not in header  # paths only if all else is equal
    assert "conditional" not in header  # it differs as the models' defaults do: in a note
    assert re.search(r"default recipe.*dcgan: .*conditional=False.*; sagan: .*conditional=True",
                     markdown)
    for name in REAL_RUNS:
        evals = MetricsLog(str(tmp / "logs" / name / "metrics.jsonl")).records("eval")
        best = min(evals, key=lambda r: r["fid"])
        row = dict(zip(header, _table_row(markdown, name)))
        assert row["best FID"] == tables.format_fid(best["fid"])
        assert row["at step"] == str(best["step"]) == "2"
        assert row["KID ± std at that step"] == tables.format_kid(best["kid"], best["kid_std"])
        assert row["FID samples"] == "4" and row["model"] == name
        assert row["FID network"] == "keras" and row["reference split"] == "test"
        assert row["attention_res"] == {"dcgan": "–", "sagan": "16"}[name]
    assert "Keras's InceptionV3" in markdown.split("## ")[0]  # named in the introduction
    assert "not comparable" in markdown
    assert f"InceptionV3 weights: {inception_weights_file}." in markdown  # what the FIDs mean
    section = _section(markdown, "Attention at 32×32 against 16×16")
    assert "|" not in section and "cannot be compared" in section  # one SAGAN run only


def test_every_image_exists_and_samples_come_from_the_best_models(real_report):
    tmp, out = real_report
    images = _assert_images_exist(out)
    assert "images/fid-curves.png" in images
    for slug in ("run01-dcgan", "run02-sagan"):
        for kind in ("losses", "grid"):
            assert f"images/{slug}-{kind}.png" in images
    # Per-class rows for the conditional SAGAN only: the DCGAN's samples have no class.
    assert "images/run02-sagan-classes.png" in images
    assert "images/run01-dcgan-classes.png" not in images
    with Image.open(out / "images" / "run02-sagan-classes.png") as picture:
        assert picture.size[1] == 2 * (3 * 34 + 2)  # one row per class, 3 classes
    markdown = (out / "report.md").read_text()
    samples = _section(markdown, "Samples")
    for model in REAL_RUNS:
        best = RunDir(str(tmp / "logs" / model)).export_dir("best")
        assert f"best generator {best}, step 2, FID" in samples
    per_class = _section(markdown, "Samples per class")
    assert ("| unconditional, without a classifier head: its samples have no class to sort them "
            "by | one row per label |") in per_class
    assert "Classifier head" not in markdown  # no run logs cls_* fields


def test_latex_matches_the_markdown(real_report):
    _, out = real_report
    latex = (out / "report.tex").read_text()
    assert latex.startswith(r"\documentclass") and latex.rstrip().endswith(r"\end{document}")
    assert r"best FID & at step & KID $\pm$ std at that step" in latex
    assert latex.count(r"\begin{") == latex.count(r"\end{")
    unescaped = latex.replace(r"\{", "").replace(r"\}", "")
    assert unescaped.count("{") == unescaped.count("}")
    assert not (out / "report.pdf").exists()


# Hand-written run directories: cheap, and exact numbers.


def _fake_run(root, name, evals=(), cls=False, sample_steps=(), **values):
    workdir = root / name
    config = TrainConfig(workdir=str(workdir), num_classes=3, steps=100, **values).resolved()
    os.makedirs(workdir)
    (workdir / "config.json").write_text(config.to_json())
    log = MetricsLog(str(workdir / "metrics.jsonl"))
    for step in (10, 20, 30):
        log.append("train", step, {"g_loss": 1.0 / step, "d_loss": 0.5, "d_real_acc": 0.6,
                                   "d_fake_acc": 0.7})
    for step, value in evals:
        extra = {"cls_train_loss": 1.0, "cls_train_acc": 0.5, "cls_test_loss": 1.2,
                 "cls_test_acc": 0.4} if cls else {}
        log.append("eval", step, {"fid": value, "kid": value / 1000, "kid_std": 0.001,
                                  "num_samples": 500, "reference": "tfds:cifar10:test", **extra})
    for step in sample_steps:
        rng = np.random.default_rng(step)
        os.makedirs(workdir / "samples", exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            workdir / "samples" / f"step_{step:06d}.png")
    return str(workdir)


def _build(run_dirs, out, **kwargs):
    with mock.patch.object(document.shutil, "which", return_value=None):
        report.build_report(run_dirs, str(out), **kwargs)
    return (out / "report.md").read_text()


def test_attention_means_groups_na_rows_and_classifier_section(tmp_path):
    root = tmp_path / "logs"
    cnn = dict(model="sagan", arch="cnn")  # the architecture with attention at 32x32
    runs = [
        _fake_run(root, "s32_seed0", [(10, 30.0), (20, 10.0)], attention_res=(32,), **cnn),
        _fake_run(root, "s32_seed1", [(10, 20.0), (20, 25.0)], attention_res=(32,), seed=1,
                  **cnn),
        _fake_run(root, "s16_seed0", [(10, 12.0)], sample_steps=(10, 30), **cnn),
        _fake_run(root, "s16_lr", [(10, 5.0)], lr_g=1e-3, **cnn),  # no 32x32 partner
        _fake_run(root, "dcgan_aux", [(10, 40.0)], cls=True, model="dcgan"),
        _fake_run(root, "dcgan_no_eval", model="dcgan"),
    ]
    out = tmp_path / "out"
    markdown = _build(runs, out)
    header = _table_row(markdown, "run")
    assert "seed" in header and "lr_g" in header
    row = dict(zip(header, _table_row(markdown, "s32_seed1")))
    assert row["best FID"] == "20.00" and row["at step"] == "10"
    assert row["KID ± std at that step"] == "0.0200 ± 0.0010" and row["FID samples"] == "500"
    row = dict(zip(header, _table_row(markdown, "dcgan_no_eval")))
    assert [row[k] for k in header[2:6]] == ["n/a"] * 4
    assert ("n/a for dcgan_no_eval: it stopped at step 30, before its first evaluation at "
            "step 1000") in markdown

    section = _section(markdown, "Attention at 32×32 against 16×16")
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 2  # header and the one qualifying group: s16_lr has no 32x32 run
    cells = _table_row(section, "all other settings equal")
    assert cells[1:4] == ["15.00 (n=2)", "12.00 (n=1)", "+3.00"]
    assert cells[4] == "s32_seed0, s32_seed1, s16_seed0"

    classifier = _section(markdown, "Classifier head")
    assert "dcgan_aux" in classifier and "s32_seed0" not in classifier
    samples = _section(markdown, "Samples")
    assert "training grid of step 30 (no best model found)" in samples
    assert "no best model found and no sample grid" in samples
    images = _assert_images_exist(out)
    assert "images/run05-dcgan-aux-classifier.png" in images


def test_a_run_recorded_with_a_former_setting_name_reads_under_the_current_one(tmp_path):
    workdir = _fake_run(tmp_path, "old", model="dcgan", class_head=True, aux_weight=0.5)
    path = os.path.join(workdir, "config.json")
    recorded = json.load(open(path))
    recorded["aux_classifier"] = recorded.pop("class_head")  # written before the rename
    with open(path, "w") as f:
        json.dump(recorded, f)
    run = read_run(workdir)
    assert run.config.class_head and run.values["class_head"] is True
    assert "aux_classifier" not in run.values
    header, rows = tables.results_table([run, read_run(_fake_run(tmp_path, "new",
                                                                 model="dcgan"))])
    assert "aux_weight" in header and "aux_classifier" not in header


def test_without_evaluations_the_sections_say_so(tmp_path):
    runs = [_fake_run(tmp_path, "a", model="dcgan"), _fake_run(tmp_path, "b", model="sagan")]
    markdown = _build(runs, tmp_path / "out")
    assert "No run has an FID evaluation" in markdown and "ImageNet" not in markdown
    section = _section(markdown, "Attention at 32×32 against 16×16")
    assert "|" not in section and "cannot be compared" in section


def test_one_dcgan_run_without_fid_is_reported_without_noise(tmp_path):
    run = _fake_run(tmp_path, "a", model="dcgan", eval_every=10)
    markdown = _build([run], tmp_path / "out")
    assert markdown.startswith("# DCGAN on CIFAR-10: 1 run compared\n")
    assert ("No run has an FID evaluation: a: it was evaluated without InceptionV3 weights "
            "(train with --inception_weights=PATH to get FID).") in markdown
    shared = [line for line in markdown.splitlines() if "settings shared by all runs" in line]
    assert shared and "None" not in shared[0] and "eval_every=10" in shared[0]
    assert "Attention" not in markdown  # no SAGAN run
    off = read_run(_fake_run(tmp_path, "b", model="dcgan", eval_every=0))
    assert sections.why_no_fid(off) == "trained with --eval_every=0 (no evaluation)"


def test_the_inception_weights_named_are_those_of_the_runs_with_fid(tmp_path):
    scored = read_run(_fake_run(tmp_path, "a", [(10, 5.0)], model="dcgan",
                                inception_weights="/w/inception.weights.h5"))
    unscored = read_run(_fake_run(tmp_path, "b", model="dcgan"))
    assert sections._weights_text([scored, unscored]) == (
        "InceptionV3 weights: /w/inception.weights.h5.")
    imagenet = read_run(_fake_run(tmp_path, "c", [(10, 6.0)], model="dcgan"))
    assert sections._weights_text([scored, imagenet]).endswith(
        "(and the Keras ImageNet download for the other runs).")


def test_runs_of_the_same_name_are_told_apart(tmp_path):
    runs = [_fake_run(tmp_path / "x", "run", [(10, 50.0)], model="dcgan"),
            _fake_run(tmp_path / "y", "run", [(10, 60.0)], model="dcgan", seed=1)]
    assert unique_names(runs) == ["x/run", "y/run"]
    assert unique_names(runs + [runs[0] + "/"]) == ["x/run #1", "y/run", "x/run #2"]
    markdown = _build(runs, tmp_path / "out")
    assert _table_row(markdown, "x/run")[2] == "50.00"
    assert _table_row(markdown, "y/run")[2] == "60.00"
    header = _table_row(markdown, "run")
    assert header[8:] == ["seed"]  # the differing workdir is a path: left out
    twins = [read_run(_fake_run(tmp_path / "z", name, model="dcgan")) for name in "ab"]
    header, _ = tables.results_table(twins)
    assert header[8:] == ["workdir"]  # unless it is all that differs


def test_best_model_is_the_runs_own_export_wherever_the_run_moved(tmp_path):
    run = read_run(_fake_run(tmp_path / "logs", "sagan", [(20, 9.0)], model="sagan"))
    best = RunDir(run.path).export_dir("best")
    os.makedirs(best)
    with open(os.path.join(best, "best.json"), "w") as f:
        json.dump({"step": 20, "fid": 9.0, "workdir": run.path}, f)
    found, info = find_best_model(run)
    assert found == best and info["step"] == 20
    moved = tmp_path / "archive" / "sagan"
    os.renames(run.path, moved)
    found, info = find_best_model(read_run(str(moved)))
    assert found == RunDir(str(moved)).export_dir("best") and info["fid"] == 9.0
    assert find_best_model(read_run(_fake_run(tmp_path / "logs", "other", [(20, 9.0)],
                                              model="sagan"))) == (None, None)


def test_a_run_trained_without_fid_is_sampled_from_its_final_generator(tmp_path):
    run = read_run(_fake_run(tmp_path / "logs", "dcgan", [], model="dcgan"))
    exports = RunDir(run.path)
    os.makedirs(exports.export_dir("final"))
    with open(os.path.join(exports.export_dir("final"), "best.json"), "w") as f:
        json.dump({"step": 5, "final": True, "workdir": run.path}, f)
    found, info = find_best_model(run)
    assert found == exports.export_dir("final") and info["final"]
    run.best_dir, run.best_info = found, info
    assert figures._describe_best(run).startswith("final generator ")
    os.makedirs(exports.export_dir("best"))  # a best model of the run wins over its final one
    with open(os.path.join(exports.export_dir("best"), "best.json"), "w") as f:
        json.dump({"step": 3, "fid": 9.0, "workdir": run.path}, f)
    assert find_best_model(run)[0] == exports.export_dir("best")


def test_a_best_model_that_does_not_load_falls_back_to_the_training_grid(tmp_path, capsys):
    run = _fake_run(tmp_path / "logs", "dcgan", [(10, 50.0)], model="dcgan", sample_steps=(10,))
    best = RunDir(run).export_dir("best")
    os.makedirs(best)  # best.json without a SavedModel
    with open(os.path.join(best, "best.json"), "w") as f:
        json.dump({"step": 10, "fid": 50.0, "workdir": run}, f)
    markdown = _build([run], tmp_path / "out")
    assert "training grid of step 10 (the best model could not be sampled)" in markdown
    assert "could not sample the best model of dcgan" in capsys.readouterr().err
    _assert_images_exist(tmp_path / "out")


def test_escaping():
    assert document.latex_escape("a_b & 50% #1 {x} ~ ^ \\ $ ±") == (
        r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{} \$ $\pm$")
    assert document.latex_escape("--flag – x") == "-{}-flag -- x"
    assert document.latex_escape("/a/b") == r"/\allowbreak{}a/\allowbreak{}b"
    assert document.markdown_escape("a|b") == "a\\|b"
    assert tables.format_value((16, 32)) == "16,32" and tables.format_value(2e-4) == "0.0002"
    assert tables.format_fid(None) == "n/a" and tables.format_fid(12.345) == "12.35"


def test_a_folder_that_is_not_a_run_gives_one_error_line_and_exit_code_2(tmp_path, capfd):
    (tmp_path / "logs" / "run_a").mkdir(parents=True)
    (tmp_path / "logs" / "run_a" / "config.json").write_text("{}")
    for argument, expected in ((tmp_path / "logs", "pass those"),
                               (tmp_path / "missing", "does not exist")):
        capfd.readouterr()
        with pytest.raises(SystemExit) as stop:
            main([str(argument), f"--out={tmp_path}/o"])
        assert stop.value.code == 2
        lines = capfd.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert not (tmp_path / "o").exists()
    with pytest.raises(UserError, match="not a run directory"):
        read_run(str(tmp_path))


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_pdflatex_compiles_the_report(tmp_path):
    runs = [_fake_run(tmp_path, "a_&_b", [(10, 50.0)], model="dcgan", sample_steps=(10,)),
            _fake_run(tmp_path, "c%d", [(10, 40.0)], model="sagan")]
    written = report.build_report(runs, str(tmp_path / "out"))
    assert written["pdf"] and os.path.getsize(written["pdf"]) > 1000
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith((".aux", ".log"))]


def test_latex_rows_of_images_are_separate_figures_that_fit_a_page():
    items = [(f"run{i}", f"images/run{i}.png", "caption") for i in range(3)]
    latex = "\n".join(document._tex_images(items, per_row=2))
    figures = latex.split(r"\begin{figure}")[1:]
    assert [f.count(r"\includegraphics") for f in figures] == [2, 1]  # a row may start a page
    assert latex.count("height=0.4\\textheight,keepaspectratio") == 3  # a tall plot is shrunk
