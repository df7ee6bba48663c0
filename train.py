"""Train a DCGAN or a conditional SAGAN on CIFAR-10.

  python train.py --model=dcgan --batch_size=128
  python train.py --flagfile=configs/sagan.cfg --image_dir=PATH/cifar10/train

Run `python train.py --helpfull` for every flag. Rerunning with the same --workdir resumes.
"""

from tfgan_cifar import cli  # first: it quiets TensorFlow's C++ logging (tfgan_cifar.tf_log_filter)
from tfgan_cifar.config import TrainConfig

cli.define_flags(TrainConfig)


def main(argv):
    """Trains with the configuration the flags describe. A run stopped by a signal (after its
    checkpoint) exits with the conventional status 128 + the signal's number."""
    config = cli.config_from_flags(TrainConfig)
    # Imported once the flags are known to be good: a bad flag is reported in well under a
    # second instead of after the 6 s it takes to load TensorFlow and Keras.
    from tfgan_cifar.training import loop

    try:
        loop.train(config)
    except loop.StoppedBySignal as stop:
        return 128 + stop.signum
    return 0


if __name__ == "__main__":
    cli.run(main)
