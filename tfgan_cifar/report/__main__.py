"""A comparison report of training runs, as Markdown and LaTeX (and a PDF when pdflatex exists).

  tfgan-report RUN_DIR [RUN_DIR ...] --out=report
  python -m tfgan_cifar.report RUN_DIR [RUN_DIR ...] --out=report

Each RUN_DIR is a train.py --workdir. Writes <out>/report.md, <out>/report.tex (and
report.pdf) and the figures under <out>/images/.
"""

import dataclasses
import sys

from tfgan_cifar import cli
from tfgan_cifar.config import check_settings, setting
from tfgan_cifar.errors import UserError
from tfgan_cifar.report import build_report


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    """The report's settings; the run directories are its positional arguments."""

    out: str = setting("report", "Output folder.", "paths")
    seed: int = setting(0, "Seed of the sample figures' noise.", "run", minimum=0)
    per_class: int = setting(10, "Samples per row of the per-class figure.", "outputs",
                             minimum=1)

    def validate(self):
        """Raises UserError with one line naming the flag when a value cannot work."""
        check_settings(self)


def report(argv, flag_values):
    """Writes the report of the run directories argv[1:] as the flags say."""
    options = cli.config_from_flags(ReportOptions, flag_values)
    if len(argv) < 2:
        raise UserError("name at least one RUN_DIR (a train.py --workdir)")
    written = build_report(argv[1:], options.out, options.seed, options.per_class)
    print("wrote " + ", ".join(p for p in written.values() if p), flush=True)
    return 0


def main(argv=None):
    """`tfgan-report RUN_DIR [RUN_DIR ...] --out=report` (`python -m tfgan_cifar.report`).

    `argv` holds the arguments without the program name (default: the command line). Returns
    the exit code; bad input exits with code 2 after one `error: ...` line.
    """
    if argv is not None:
        argv = ["python -m tfgan_cifar.report", *argv]
    return cli.run(report, ReportOptions, argv, positional=True, usage=__doc__)


if __name__ == "__main__":
    sys.exit(main())
