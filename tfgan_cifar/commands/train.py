"""Train a DCGAN or a conditional SAGAN on CIFAR-10.

  tfgan-train --model=dcgan --image_dir=PATH/cifar10/train
  tfgan-train --preset=sagan --image_dir=PATH/cifar10/train --steps=50000
  tfgan-train --workdir=logs/sagan            # continues the run recorded there

Presets (--preset=NAME): the paper recipes of tfgan_cifar/configs (dcgan, dcgan_large, sagan,
sngan); later flags override them. Run with --helpfull for every flag by group.
"""

import signal
import sys

from tfgan_cifar import cli  # first: it quiets TensorFlow's C++ logging (tf_log_filter)
from tfgan_cifar.config import TrainConfig


def train(argv, flag_values):
    """Trains with the configuration the flags describe. A run stopped by a signal (after its
    checkpoint) exits with the conventional status 128 + the signal's number."""
    config = cli.config_from_flags(TrainConfig, flag_values)
    # Imported once the flags are known to be good: a bad flag is reported before the seconds
    # it takes to load TensorFlow and Keras.
    from tfgan_cifar.training import loop

    try:
        loop.train(config)
    except loop.StoppedBySignal as stop:
        return 128 + stop.signum
    except KeyboardInterrupt:  # Ctrl-C before training started
        print("\nSIGINT: stopped before training; run the same command to start (or resume) it",
              file=sys.stderr, flush=True)
        return 128 + signal.SIGINT
    return 0


def main(argv=None):
    """`tfgan-train`: trains as the command line (or `argv`, program name first) says."""
    return cli.run(train, TrainConfig, argv, usage=__doc__)
