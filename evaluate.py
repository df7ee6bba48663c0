"""`python evaluate.py` is `tfgan-evaluate` (tfgan_cifar/commands/evaluate.py) run from the
checkout."""

import sys

from tfgan_cifar.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
