"""Train a DCGAN or a conditional SAGAN on CIFAR-10.

  python train.py --model=dcgan --batch_size=128
  python train.py --flagfile=configs/sagan.cfg --image_dir=PATH/cifar10/train

Run `python train.py --helpfull` for every flag. Rerunning with the same --workdir resumes.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, logging  # noqa: E402

from tfgan_cifar import cli  # noqa: E402
from tfgan_cifar.training import loop  # noqa: E402

cli.define_train_flags()


def main(argv):
    logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress output
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = cli.run_or_exit(cli.config_from_flags)
    cli.run_or_exit(loop.train, config)


if __name__ == "__main__":
    app.run(main)
