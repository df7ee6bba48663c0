"""A comparison report of training runs, as Markdown and LaTeX (and a PDF when pdflatex exists).

  python -m tfgan_cifar.report logs/dcgan logs/sagan [...] --out=report

Writes `<out>/report.md`, `<out>/report.tex` (compiled to `<out>/report.pdf` by `pdflatex` when
it is installed) and the figures they show under `<out>/images/`:

1. results: per run its best FID (Keras InceptionV3) with the step, KID at that step, the FID
   sample count, the quality metrics when runs log them (precision/recall, FD_classifier,
   class accuracy and KL) and the configuration values that differ between the runs;
2. the FID curves of all runs in one figure;
3. the loss curves of each run;
4. an 8x8 grid per run, from the run's best generator (its final one when it was trained
   without FID), else from its newest training grid;
5. one row of samples per class per run, side by side;
6. mean best FID of SAGAN with attention at 32x32 against 16x16, over runs differing only there;
7. the classifier-head curves of the runs that log them;
8. the quality-metric curves (FD_classifier, class accuracy, precision/recall) of the runs
   that log them.

A run directory is what `train.py --workdir` writes (see `run_dir.RunDir`): `config.json`,
`metrics.jsonl`, `samples/` and its exported generators `export/best` and `export/final`.

Modules: `runs` (reading run directories, finding their exported models), `tables`, `figures`,
`document` (the Markdown/LaTeX writer), `sections` (one function per section) and `__main__`
(the command line).
"""

import os

from tfgan_cifar import paths, tf_log_filter
from tfgan_cifar.report import figures, sections
from tfgan_cifar.report.document import Document, compile_pdf
from tfgan_cifar.report.runs import read_runs

tf_log_filter.quiet_tensorflow()  # the sample figures import TensorFlow later

IMAGES = "images"


def build_report(run_dirs, out, seed=0, per_class=10):
    """Writes `<out>/report.md`, `<out>/report.tex` and `<out>/images/`; returns their paths.

    Args:
      run_dirs: run directories (train.py --workdir).
      out: the output folder (created).
      seed: seed of the noise of the sample figures.
      per_class: samples per row in the per-class figure.

    Returns:
      {"markdown": path, "latex": path, "pdf": path or None}.

    Raises:
      UserError: a folder is not a run directory, or `out` is not a folder that can be
        written (checked before anything is read or written).
    """
    paths.check_writable(out, "--out")
    runs = read_runs(run_dirs)
    images_dir = os.path.join(out, IMAGES)
    os.makedirs(images_dir, exist_ok=True)
    doc = Document(out)
    sections.introduction(doc, runs)
    sections.results(doc, runs)
    sections.fid_curves(doc, runs, images_dir)
    sections.losses(doc, runs, images_dir)
    samples = {run.name: figures.sample_figures(run, images_dir, seed=seed, per_class=per_class)
               for run in runs}
    sections.sample_grids(doc, runs, samples)
    sections.class_rows(doc, runs, samples, per_class)
    sections.attention(doc, runs)
    sections.classifier_curves(doc, runs, images_dir)
    sections.quality_curves(doc, runs, images_dir)
    markdown, latex = doc.write(sections.title(runs))
    return {"markdown": markdown, "latex": latex, "pdf": compile_pdf(latex)}
