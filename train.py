"""`python train.py` is `tfgan-train` (tfgan_cifar/commands/train.py) run from the checkout."""

import sys

from tfgan_cifar.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
