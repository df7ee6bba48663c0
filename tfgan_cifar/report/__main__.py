"""A comparison report of training runs, as Markdown and LaTeX (and a PDF when pdflatex exists).

The command line of `build_report`:
  python -m tfgan_cifar.report RUN_DIR [RUN_DIR ...] --out=report [--save_dir=DIR]
"""

import argparse
import sys

from tfgan_cifar.errors import UserError
from tfgan_cifar.report import build_report


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"error: {message} (see --help)", file=sys.stderr, flush=True)
        sys.exit(2)


def main(argv=None):
    """Command line: `python -m tfgan_cifar.report RUN_DIR [RUN_DIR ...] --out=report`."""
    parser = _Parser(prog="python -m tfgan_cifar.report", description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories (train.py --workdir)")
    parser.add_argument("--out", default="report", help="output folder (default: report)")
    parser.add_argument("--save_dir", default=None, help="where the best models were exported "
                        "(default: each run's --save_dir, relative to where it was trained)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample figures' noise")
    parser.add_argument("--per_class", type=int, default=10,
                        help="samples per row of the per-class figure")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error(f"--per_class must be at least 1, got {args.per_class}")
    # As cli.run_or_exit, without importing Keras just to report a bad argument.
    try:
        written = build_report(args.run_dirs, args.out, args.save_dir, args.seed, args.per_class)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    print("wrote " + ", ".join(p for p in written.values() if p), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
