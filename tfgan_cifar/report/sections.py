"""The sections of the report, in its order, each added to a `document.Document`."""

from tfgan_cifar.metric_schema import FID_NAME
from tfgan_cifar.report import figures
from tfgan_cifar.report.tables import (NOT_AVAILABLE, attention_groups, attention_table,
                                       format_value, model_default_fields, quality_columns,
                                       results_table, shared_fields)


def title(runs):
    """The report's title: the models and the number of runs."""
    models = sorted({run.config.model for run in runs})
    compared = f"{len(runs)} run{'s' * (len(runs) != 1)} compared"
    return f"{' and '.join(m.upper() for m in models)} on CIFAR-10: {compared}"


def introduction(doc, runs):
    """What is compared and what the scores mean, and the run directories."""
    doc.paragraph(
        f"This report compares {len(runs)} training run{'s' * (len(runs) > 1)}: "
        f"{', '.join(run.name for run in runs)}. Scores are {FID_NAME} and KID against "
        f"{_reference_text(runs)}, lower is better; each is computed on the number of "
        f"generated images given in the table, in the features of {_network_text(runs)}. "
        f"{_weights_text(runs)}")
    doc.bullets([f"{run.name}: {run.path}" for run in runs])


def _network_text(runs):
    networks = {r.get("fid_network") or "keras" for run in runs for r in run.records
                if r.get("kind") == "eval" and "fid" in r}
    texts = {"standard": "the standard InceptionV3 of 2015-12-05 that papers use (comparable "
                         "with published FIDs at the same sample count and reference split)",
             "keras": "Keras's InceptionV3, whose FIDs are not comparable with published ones"}
    return " and ".join(texts.get(n, n) for n in sorted(networks)) or texts["standard"]


def _reference_text(runs):
    refs = {r.get("reference") for run in runs for r in run.records
            if r.get("kind") == "eval" and r.get("reference")}
    if not refs:
        return "the CIFAR-10 test split"
    texts = []
    for ref in sorted(refs):
        kind, _, where = ref.partition(":")
        texts.append("the CIFAR-10 test split (tensorflow-datasets)" if kind == "tfds"
                     else f"the image folder {where}" if kind == "folder" else ref)
    return " and ".join(texts)


def _weights_text(runs):
    """Which InceptionV3 weights the scores come from: they decide what an FID means."""
    runs = [run for run in runs if run.best is not None]  # a run without FID used none
    if not runs:
        return "No run has an FID evaluation."
    files = sorted({run.config.inception_weights for run in runs if run.config.inception_weights})
    sentence = ("InceptionV3 weights: the ImageNet release downloaded by Keras"
                if not files else "InceptionV3 weights: " + ", ".join(files))
    if files and any(run.config.inception_weights is None for run in runs):
        sentence += " (and the Keras ImageNet download for the other runs)"
    return sentence + "."


def why_no_fid(run):
    """Why a run has no FID in its metrics.jsonl: evaluations were off, the InceptionV3
    weights were missing, or it stopped before its first evaluation."""
    every = run.config.eval_every
    if not every:
        return "trained with --eval_every=0 (no evaluation)"
    evaluated = any(r.get("kind") == "eval" for r in run.records)
    last = max((r["step"] for r in run.records if r.get("kind") == "train"), default=0)
    if evaluated or last >= every:
        return ("it was evaluated without InceptionV3 weights (train with "
                "--inception_weights=PATH to get FID)")
    return f"it stopped at step {last}, before its first evaluation at step {every}"


def results(doc, runs):
    """The results table, with notes on what it leaves out."""
    doc.section("Results")
    header, rows = results_table(runs)
    quality = len(quality_columns(runs))
    doc.table(header, rows, align="llrrrrll" + "r" * quality + "l" * (len(header) - 8 - quality))
    notes = [f"best FID: the lowest {FID_NAME} of the run's evaluations; KID is the one "
             "measured at that step"]
    if quality:
        notes.append("quality metrics (docs/evaluation.md): precision / recall "
                     "(k = 5) in Inception features at the best-FID step; FD_classifier, "
                     "class accuracy of conditional samples, KL of the predicted classes from "
                     "uniform and precision / recall in the reference classifier's features, "
                     "at the step of the lowest FD_classifier")
    for run in runs:
        if run.best is None:
            notes.append(f"{NOT_AVAILABLE} for {run.name}: {why_no_fid(run)}")
    by_model = model_default_fields(runs)
    if by_model:
        notes.append("each model's default recipe (so not in the table): " + "; ".join(
            f"{model}: " + ", ".join(f"{k}={format_value(v)}" for k, v in values.items())
            for model, values in by_model.items()))
    shared = {k: v for k, v in shared_fields(runs).items() if v is not None}
    if shared:
        notes.append("settings shared by all runs: " + ", ".join(
            f"{k}={format_value(v)}" for k, v in shared.items()))
    doc.bullets(notes)


def fid_curves(doc, runs, images_dir):
    """The FID curves of all runs in one figure."""
    doc.section("FID during training")
    path = figures.fid_curves(runs, images_dir)
    if path:
        doc.images([("all runs", path, "FID against training step; dots mark each run's best")],
                   per_row=1)
    else:
        doc.paragraph("No run has an FID evaluation: " + "; ".join(
            f"{run.name}: {why_no_fid(run)}" for run in runs) + ".")


def losses(doc, runs, images_dir):
    """The loss curves of each run."""
    doc.section("Losses")
    items = []
    for run in runs:
        path = figures.loss_curves(run, images_dir)
        items.append((run.name, path, "G and D loss, D accuracy on real and fake" if path
                      else "no training records"))
    doc.images(items, per_row=2)


def sample_grids(doc, runs, samples):
    """An 8x8 grid per run; `samples` maps run names to their `figures.sample_figures`."""
    doc.section("Samples")
    doc.paragraph("An 8×8 grid per run: from its best generator (the final one for a run "
                  "trained without FID; labels cycling through the classes) when it was found, "
                  "else the newest grid written during training.")
    doc.images([(run.name, *samples[run.name]["grid"]) for run in runs], per_row=3)


def class_rows(doc, runs, samples, per_class):
    """The per-class rows of each run; `samples` as in `sample_grids`."""
    doc.section("Samples per class")
    doc.paragraph(f"{per_class} samples per row from each run's best (or final) generator. "
                  "Conditional models get one row per label; unconditional ones are sorted "
                  "into rows by their classifier head when they have one, and have no rows "
                  "without it.")
    doc.images([(run.name, *samples[run.name]["classes"]) for run in runs], per_row=3)


def attention(doc, runs):
    """Mean best FID of SAGAN with attention at 32x32 against 16x16, where runs allow it (no
    section without a SAGAN run)."""
    if not any(run.config.model == "sagan" for run in runs):
        return
    doc.section("Attention at 32×32 against 16×16")
    groups = attention_groups(runs)
    if groups:
        doc.paragraph("Mean best FID of SAGAN runs that differ only in attention_res (and "
                      "seed); n is the number of runs averaged.")
        header, rows = attention_table(groups)
        doc.table(header, rows, align="lrrrl")
    else:
        doc.paragraph("No SAGAN runs with an FID evaluation differ only in attention_res "
                      "(16 against 32), so attention positions cannot be compared here.")


def _per_run_figures(doc, runs, draw, caption, title, text):
    """A section of one figure per run (`draw(run)` -> path or None), only when
    some run has one."""
    items = [(run.name, path, caption) for run, path in ((run, draw(run)) for run in runs)
             if path]
    if items:
        doc.section(title)
        doc.paragraph(text)
        doc.images(items, per_row=2)


def classifier_curves(doc, runs, images_dir):
    """The classifier-head curves of the runs that log them; no section when none does."""
    _per_run_figures(
        doc, runs, lambda run: figures.classifier_curves(run, images_dir),
        "loss and accuracy on training images and the test split", "Classifier head",
        "Loss and accuracy of the discriminator's class head (--class_head) at each "
        "evaluation, on training images and on the test split (both scored in inference "
        "mode), for the runs that have one.")


def quality_curves(doc, runs, images_dir):
    """The quality-metric curves of the runs that log them; no section when none does."""
    _per_run_figures(
        doc, runs, lambda run: figures.quality_curves(run, images_dir),
        "FD_classifier, class accuracy and KL, precision/recall/density/coverage at each "
        "evaluation", "Quality metrics",
        "The reference classifier's metrics (--reference_classifier) and precision, recall, density and "
        "coverage (k = 5) at each evaluation, for the runs that log them.")
